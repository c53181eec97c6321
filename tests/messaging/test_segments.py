import math
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reachout.messaging.segments import (
    MAX_BODY_CHARS,
    Encoding,
    SegmentInfo,
    body_too_long,
    count_segments,
    detect_encoding,
)

# Written out independently of the module, from the GSM 03.38 table.
GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = "\f^{}\\[~]|€"
GSM_ALL = GSM_BASIC + GSM_EXTENSION

gsm_chars = st.sampled_from(GSM_ALL)
non_gsm_chars = st.characters(codec="utf-8").filter(lambda ch: ch not in GSM_ALL)
gsm_text = st.text(alphabet=gsm_chars, max_size=700)
ucs2_text = st.builds(
    lambda before, ch, after: before + ch + after,
    st.text(max_size=200),
    st.one_of(non_gsm_chars, st.sampled_from("ж😀")),
    st.text(max_size=200),
)
# Mostly GSM with an occasional other character, so both encodings and all the boundaries come up.
any_text = st.text(alphabet=st.one_of(gsm_chars, gsm_chars, st.characters(codec="utf-8")), max_size=500)


def septets(ch: str) -> int:
    return 2 if ch in GSM_EXTENSION else 1


def utf16_units(ch: str) -> int:
    return len(ch.encode("utf-16-le")) // 2


def reference_segments(text: str, cost: Callable[[str], int], capacity: int) -> int:
    """Split by repeatedly taking the longest prefix that fits, and count the pieces."""
    pieces, rest = 0, text
    while rest:
        used, k = 0, 0
        while k < len(rest) and used + cost(rest[k]) <= capacity:
            used += cost(rest[k])
            k += 1
        pieces, rest = pieces + 1, rest[k:]
    return pieces


def test_the_alphabets_are_the_standard_sizes() -> None:
    assert len(GSM_BASIC) == len(set(GSM_BASIC)) == 127  # 128 code points less ESC
    assert len(GSM_EXTENSION) == len(set(GSM_EXTENSION)) == 10


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a" * 160, SegmentInfo(Encoding.GSM7, 160, 1)),
        ("a" * 161, SegmentInfo(Encoding.GSM7, 161, 2)),
        ("a" * 306, SegmentInfo(Encoding.GSM7, 306, 2)),
        ("a" * 307, SegmentInfo(Encoding.GSM7, 307, 3)),
        ("a" * 1530, SegmentInfo(Encoding.GSM7, 1530, 10)),
        ("Hello, world!", SegmentInfo(Encoding.GSM7, 13, 1)),
        ("€", SegmentInfo(Encoding.GSM7, 2, 1)),
        ("€" * 80, SegmentInfo(Encoding.GSM7, 160, 1)),
        ("€" * 81, SegmentInfo(Encoding.GSM7, 162, 2)),
        ("a" * 159 + "€", SegmentInfo(Encoding.GSM7, 161, 2)),
        ("é" * 160, SegmentInfo(Encoding.GSM7, 160, 1)),
        ("ж" * 70, SegmentInfo(Encoding.UCS2, 70, 1)),
        ("ж" * 71, SegmentInfo(Encoding.UCS2, 71, 2)),
        ("ж" * 134, SegmentInfo(Encoding.UCS2, 134, 2)),
        ("ж" * 135, SegmentInfo(Encoding.UCS2, 135, 3)),
        ("a" * 69 + "ж", SegmentInfo(Encoding.UCS2, 70, 1)),
        ("😀", SegmentInfo(Encoding.UCS2, 2, 1)),
        ("😀" * 35, SegmentInfo(Encoding.UCS2, 70, 1)),
        ("😀" * 36, SegmentInfo(Encoding.UCS2, 72, 2)),
    ],
)
def test_known_counts(text: str, expected: SegmentInfo) -> None:
    assert count_segments(text) == expected


def test_an_empty_body_is_billed_as_one_segment() -> None:
    assert count_segments("") == SegmentInfo(Encoding.GSM7, 0, 1)


def test_an_escape_is_never_split_from_its_character() -> None:
    # 152 + 2 + 152 = 306 septets would fit two parts if the € could straddle the boundary.
    assert count_segments("a" * 152 + "€" + "a" * 152) == SegmentInfo(Encoding.GSM7, 306, 3)
    assert count_segments("a" * 151 + "€" + "a" * 153) == SegmentInfo(Encoding.GSM7, 306, 2)


def test_a_surrogate_pair_is_never_split() -> None:
    assert count_segments("ж" * 66 + "😀" + "ж" * 66) == SegmentInfo(Encoding.UCS2, 134, 3)
    assert count_segments("ж" * 65 + "😀" + "ж" * 67) == SegmentInfo(Encoding.UCS2, 134, 2)
    assert count_segments("ж" * 68 + "😀") == SegmentInfo(Encoding.UCS2, 70, 1)


@pytest.mark.parametrize("ch", list(GSM_ALL))
def test_every_gsm_character_is_gsm7(ch: str) -> None:
    assert detect_encoding(ch) is Encoding.GSM7
    assert count_segments(ch).units == septets(ch)


@pytest.mark.parametrize(
    "ch",
    [
        "ç",  # only the capital Ç is in the table
        "\u0391",  # Greek capital alpha looks like A but is not in the table
        "\u2019",  # a typographic apostrophe, the usual way a body silently becomes UCS-2
        "\u201c",
        "`",
        "\t",
        "\x1b",
        "ж",
        "😀",
        "\u00a0",
    ],
)
def test_characters_outside_the_gsm_table_force_ucs2(ch: str) -> None:
    assert detect_encoding("plain text " + ch) is Encoding.UCS2


def test_body_length_limit_counts_code_points() -> None:
    assert MAX_BODY_CHARS == 1600
    assert not body_too_long("a" * 1600)
    assert body_too_long("a" * 1601)
    assert not body_too_long("😀" * 1600)
    assert body_too_long("😀" * 1601)
    assert not body_too_long("")


@given(any_text)
def test_there_is_always_at_least_one_segment(text: str) -> None:
    info = count_segments(text)
    assert info.segments >= 1
    assert info.units >= len(text)


@given(gsm_text)
def test_gsm_units_are_the_sum_of_septets(text: str) -> None:
    info = count_segments(text)
    assert info.encoding is Encoding.GSM7
    assert info.units == sum(septets(ch) for ch in text)


@given(ucs2_text)
def test_any_non_gsm_character_makes_the_body_ucs2(text: str) -> None:
    info = count_segments(text)
    assert info.encoding is Encoding.UCS2
    assert info.units == sum(utf16_units(ch) for ch in text)


@given(any_text)
def test_single_segment_exactly_when_it_fits(text: str) -> None:
    info = count_segments(text)
    single = 160 if info.encoding is Encoding.GSM7 else 70
    assert (info.segments == 1) == (info.units <= single)


@given(st.one_of(gsm_text, ucs2_text, any_text))
def test_multipart_is_greedy_packing_within_bounds(text: str) -> None:
    info = count_segments(text)
    if info.encoding is Encoding.GSM7:
        part, cost = 153, septets
    else:
        part, cost = 67, utf16_units
    if info.segments == 1:
        return
    assert info.segments == reference_segments(text, cost, part)
    # Every part but the last is short by at most one unit (the 2-unit character that did not fit).
    assert math.ceil(info.units / part) <= info.segments <= math.ceil(info.units / (part - 1))


@given(any_text, st.one_of(gsm_chars, st.characters(codec="utf-8")))
def test_appending_never_reduces_the_segment_count(text: str, ch: str) -> None:
    assert count_segments(text + ch).segments >= count_segments(text).segments
