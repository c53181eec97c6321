"""SMS segment counting as carriers bill it (GSM 03.38 / 3GPP TS 23.038, matching Twilio's counts).

A body is sent as GSM-7 when every character is in the GSM default alphabet or its extension table,
otherwise as UCS-2. A single segment carries 160 septets (GSM-7) or 70 UTF-16 code units (UCS-2);
longer bodies are split into concatenated segments of 153 septets or 67 code units, because each part
spends room on the concatenation header. Splitting never separates an escape from the extension
character it introduces, nor the two halves of a surrogate pair.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

MAX_BODY_CHARS: Final = 1600
"""Twilio's limit on a message body, counted in Python characters (code points)."""

# The GSM 03.38 default alphabet, row by row. 0x1B (ESC) is left out on purpose: it is the escape to the
# extension table, not a character a sender can put in a message.
_GSM_BASIC: Final = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
# Extension-table characters are sent as ESC + code, so each costs two septets.
_GSM_EXTENSION: Final = frozenset("\f^{}\\[~]|€")
_GSM_ALPHABET: Final = _GSM_BASIC | _GSM_EXTENSION

_GSM_SINGLE: Final = 160
_GSM_PART: Final = 153
_UCS2_SINGLE: Final = 70
_UCS2_PART: Final = 67


class Encoding(StrEnum):
    """The character encoding a message body is sent in."""

    GSM7 = "GSM-7"
    UCS2 = "UCS-2"


@dataclass(frozen=True)
class SegmentInfo:
    """How a body is encoded and billed.

    ``units`` is septets for GSM-7 and UTF-16 code units for UCS-2; ``segments`` is what the carrier bills.
    """

    encoding: Encoding
    units: int
    segments: int


def detect_encoding(text: str) -> Encoding:
    """GSM-7 if every character is in the GSM default alphabet or its extension table, else UCS-2."""
    if _GSM_ALPHABET.issuperset(text):
        return Encoding.GSM7
    return Encoding.UCS2


def count_segments(text: str) -> SegmentInfo:
    """Count the units and billed segments of a message body.

    An empty body is one segment of zero units: carriers still send (and bill) one empty message.
    """
    encoding = detect_encoding(text)
    # Units are counted with str methods (C loops); the per-character costs are only needed to split.
    if encoding is Encoding.GSM7:
        units = len(text) + sum(map(text.count, _GSM_EXTENSION.intersection(text)))
        single, part = _GSM_SINGLE, _GSM_PART
    else:
        # Characters outside the Basic Multilingual Plane (most emoji) take a surrogate pair in UTF-16.
        units = len(text.encode("utf-16-le", "surrogatepass")) // 2
        single, part = _UCS2_SINGLE, _UCS2_PART
    if units <= single:
        return SegmentInfo(encoding=encoding, units=units, segments=1)
    if encoding is Encoding.GSM7:
        costs = [2 if ch in _GSM_EXTENSION else 1 for ch in text]
    else:
        costs = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
    return SegmentInfo(encoding=encoding, units=units, segments=_pack(costs, part))


def body_too_long(text: str) -> bool:
    """True if the body exceeds MAX_BODY_CHARS characters."""
    return len(text) > MAX_BODY_CHARS


def _pack(costs: Iterable[int], capacity: int) -> int:
    """Count the segments needed to fill ``capacity``-unit segments greedily, never splitting a character."""
    segments, used = 1, 0
    for cost in costs:
        if used + cost > capacity:
            segments, used = segments + 1, 0
        used += cost
    return segments
