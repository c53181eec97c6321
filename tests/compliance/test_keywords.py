from dataclasses import FrozenInstanceError

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reachout.compliance.keywords import Keyword, KeywordKind, classify

# Written out independently of the module, from Twilio's default keywords plus the project's "OPT OUT".
OPT_OUT = ["STOP", "STOPALL", "UNSUBSCRIBE", "END", "QUIT", "REVOKE", "OPTOUT", "CANCEL", "OPT OUT"]
OPT_IN = ["START", "YES", "UNSTOP"]
HELP = ["HELP", "INFO"]
EXPECTED = (
    {word: KeywordKind.OPT_OUT for word in OPT_OUT}
    | {word: KeywordKind.OPT_IN for word in OPT_IN}
    | {word: KeywordKind.HELP for word in HELP}
)

# ASCII and Unicode whitespace, all of which str.split() drops.
WHITESPACE = " \t\n\r\x0b\x0c\x1c\x85\u00a0\u2003\u2028\u3000"


@pytest.mark.parametrize(("word", "kind"), EXPECTED.items())
def test_every_keyword_classifies_as_its_kind(word: str, kind: KeywordKind) -> None:
    assert classify(word) == Keyword(kind, word)


@pytest.mark.parametrize(
    ("body", "word"),
    [
        # Case is ignored.
        ("stop", "STOP"),
        ("Stop", "STOP"),
        ("sToP", "STOP"),
        ("unsubscribe", "UNSUBSCRIBE"),
        ("StopAll", "STOPALL"),
        ("optout", "OPTOUT"),
        ("revoke", "REVOKE"),
        ("yes", "YES"),
        ("Yes", "YES"),
        ("unStop", "UNSTOP"),
        ("help", "HELP"),
        ("Info", "INFO"),
        # Surrounding whitespace, including newlines, tabs and Unicode spaces, is ignored.
        ("  STOP  ", "STOP"),
        ("\nstop\n", "STOP"),
        ("\tStop\r\n", "STOP"),
        ("\u00a0STOP\u3000", "STOP"),
        (" \t\n yes \n", "YES"),
        # "OPT OUT": any case, one or more whitespace characters between the words.
        ("opt out", "OPT OUT"),
        ("Opt Out", "OPT OUT"),
        ("OPT    OUT", "OPT OUT"),
        ("opt\tout", "OPT OUT"),
        ("opt\n\nout", "OPT OUT"),
        ("opt\u00a0out", "OPT OUT"),
        ("  Opt \t Out\n", "OPT OUT"),
    ],
)
def test_variants_classify_as_the_canonical_keyword(body: str, word: str) -> None:
    assert classify(body) == Keyword(EXPECTED[word], word)


@pytest.mark.parametrize(
    "body",
    [
        # Empty or whitespace only.
        "",
        " ",
        "\n\t\r ",
        "\u00a0\u3000",
        # A keyword inside a sentence (Twilio: "STOP PLEASE" and "PLEASE CANCEL" do not opt out).
        "stop please",
        "STOP PLEASE",
        "PLEASE CANCEL",
        "please stop texting me",
        "I'll cancel later",
        "yes please",
        "yes, that works",
        "help me",
        "stop stop",
        "STOP\nThanks",
        # Punctuation is not stripped.
        "STOP.",
        "Stop!",
        "stop?",
        "'STOP'",
        '"stop"',
        "Yes.",
        "yes!",
        "HELP?",
        "opt out.",
        # Only Twilio's spelling of the words: no hyphen or underscore in "opt out", no split keywords.
        "OPT-OUT",
        "opt-out",
        "opt_out",
        "OPT",
        "OUT",
        "ST OP",
        "UN STOP",
        "STOP ALL",
        # Near misses.
        "stops",
        "stopp",
        "sto",
        "unsubscribed",
        "yess",
        "helpme",
        "ended",
        # Other providers' keywords that are not Twilio defaults.
        "REMOVE",
        "ARRET",
        "TD",
        "SUBSCRIBE",
        "JOIN",
        "OPTIN",
        "NO",
        "Y",
        # Unicode look-alikes are not normalised into keywords.
        "\uff33\uff34\uff2f\uff30",  # fullwidth STOP
        "\u0405\u0422\u041e\u0420",  # Cyrillic DZE, TE, O, ER
        "\u017ftop",  # long s, which upper-cases to S
        "\ufb06op",  # "st" ligature, which upper-cases to ST
        "\u0131nfo",  # dotless i, which upper-cases to I
        "qu\u0131t",
        "ST\u00d8P",  # O with stroke
        "STO\u0420",  # Cyrillic ER for P
        "STOP\u200b",  # zero-width space (not whitespace)
        "S\u200bTOP",
        "\ufeffSTOP",  # byte-order mark
        "STOP\u0301",  # combining acute accent
    ],
)
def test_is_not_a_keyword(body: str) -> None:
    assert classify(body) is None


def test_keyword_is_frozen() -> None:
    keyword = Keyword(KeywordKind.OPT_OUT, "STOP")
    with pytest.raises(FrozenInstanceError):
        keyword.word = "QUIT"  # type: ignore[misc]


def test_kinds_are_strings() -> None:
    assert [str(kind) for kind in KeywordKind] == ["opt-out", "opt-in", "help"]


# --- Properties ---

keywords = st.sampled_from(sorted(EXPECTED))
whitespace = st.text(alphabet=st.sampled_from(WHITESPACE), max_size=5)
# A word: no whitespace inside, at least one character.
words = st.text(min_size=1, max_size=12).map(lambda text: "".join(text.split())).filter(bool)


@st.composite
def any_case(draw: st.DrawFn, text: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return "".join(ch.swapcase() if flip else ch for ch, flip in zip(text, flips, strict=True))


@st.composite
def disguised(draw: st.DrawFn) -> tuple[str, str]:
    """A keyword in random case, with random whitespace around it and between its words."""
    word = draw(keywords)
    gaps = [draw(whitespace.filter(bool)) for _ in range(word.count(" "))]
    parts = [draw(any_case(part)) for part in word.split(" ")]
    body = parts[0] + "".join(gap + part for gap, part in zip(gaps, parts[1:], strict=True))
    return word, draw(whitespace) + body + draw(whitespace)


@given(st.text())
def test_classify_never_raises_and_returns_a_known_keyword(body: str) -> None:
    result = classify(body)
    assert result is None or EXPECTED[result.word] is result.kind


@given(disguised())
def test_case_and_whitespace_do_not_change_the_keyword(case: tuple[str, str]) -> None:
    word, body = case
    assert classify(body) == Keyword(EXPECTED[word], word)


@given(keywords, words, st.text(alphabet=st.sampled_from(WHITESPACE), min_size=1, max_size=3))
def test_a_keyword_with_another_word_is_not_a_keyword(word: str, other: str, gap: str) -> None:
    assert classify(word + gap + other) is None
    assert classify(other + gap + word) is None


@given(keywords, words)
def test_a_keyword_glued_to_other_text_counts_only_if_the_whole_is_a_keyword(word: str, other: str) -> None:
    for body in (word + other, other + word):
        assert classify(body) is None or body.upper() in EXPECTED  # e.g. "STOP" + "all"


@given(
    keywords,
    st.characters(codec="utf-8").filter(lambda ch: not ch.isascii() and not ch.isspace()),
    st.integers(min_value=0),
)
def test_a_non_ascii_character_anywhere_is_not_a_keyword(word: str, ch: str, at: int) -> None:
    at %= len(word) + 1
    assert classify(word[:at] + ch + word[at:]) is None


# Mostly keyword letters and spaces, so matches come up often.
keywordish = st.text(alphabet=st.sampled_from("STOPALUNBCRIEDQVYHFstopaluncbriedqvyhf \t\n-."), max_size=14)


@given(keywordish)
def test_ascii_case_never_matters(body: str) -> None:
    assert classify(body) == classify(body.lower()) == classify(body.upper()) == classify(body.swapcase())


@given(keywordish)
def test_a_match_is_the_body_in_canonical_form(body: str) -> None:
    result = classify(body)
    if result is not None:
        assert result.word == " ".join(body.split()).upper()
        assert classify(result.word) == result
