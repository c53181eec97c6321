"""Classify an inbound SMS body as an opt-out, opt-in or help keyword, the way Twilio's defaults do.

An opted-out recipient is never messaged, so what counts as STOP is decided in one place, exactly and
narrowly: a keyword is the whole message, never a word inside a sentence. The sets mirror Twilio's defaults
so that our opt-out record agrees with the block Twilio applies on its side.

What Twilio documents:

- Opt-out: STOP, UNSUBSCRIBE, END, QUIT, STOPALL, REVOKE, OPTOUT, CANCEL
  (https://www.twilio.com/docs/messaging/tutorials/advanced-opt-out). Opt-in: START, YES, UNSTOP. Help:
  HELP, INFO (https://help.twilio.com/hc/en-us/articles/223134027-Twilio-support-for-opt-out-keywords-SMS-STOP-filtering-).
- "Only single-word messages will trigger the block": "STOP" opts out, "STOP PLEASE" or "PLEASE CANCEL"
  does not (same article).
- Case is not stated as a rule, but Twilio shows mixed-case replies ("Start", "Unstop") being acted on
  (https://support.twilio.com/hc/en-us/articles/360058144374), so case is ignored here.

Where the docs are silent we read them narrowly. Whitespace (anything ``str.split`` splits on) around the
words is ignored; punctuation is not, so "STOP." and "Stop!" are not keywords. Nothing is Unicode-normalised
and only ASCII letters are case-folded, so look-alikes (fullwidth or Cyrillic letters, U+017F long s, a
zero-width space) are not keywords. "OPT OUT" is the project's addition (the FCC's wording; Twilio lists
only OPTOUT): its two words may be separated by any run of whitespace, but "OPT-OUT" is not a keyword.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Final


class KeywordKind(StrEnum):
    """What a keyword asks for."""

    OPT_OUT = "opt-out"
    OPT_IN = "opt-in"
    HELP = "help"


@dataclass(frozen=True)
class Keyword:
    """A keyword message: its kind and the canonical keyword matched (e.g. "STOP", "OPT OUT").

    OPT_IN includes YES, which is also an ordinary answer, so callers apply it only to an opted-out number.
    """

    kind: KeywordKind
    word: str


_WORDS: Final[Mapping[KeywordKind, frozenset[str]]] = MappingProxyType(
    {
        KeywordKind.OPT_OUT: frozenset(
            {"STOP", "STOPALL", "UNSUBSCRIBE", "END", "QUIT", "REVOKE", "OPTOUT", "CANCEL", "OPT OUT"}
        ),
        KeywordKind.OPT_IN: frozenset({"START", "YES", "UNSTOP"}),
        KeywordKind.HELP: frozenset({"HELP", "INFO"}),
    }
)

# Canonical form (upper case, words joined by one space) -> the keyword.
_KEYWORDS: Final[Mapping[str, Keyword]] = MappingProxyType(
    {word: Keyword(kind, word) for kind, words in _WORDS.items() for word in words}
)


def classify(body: str) -> Keyword | None:
    """The keyword an inbound body is, or None if it is anything else (a sentence, punctuation, empty)."""
    # No-argument split drops whitespace (Unicode included) at the ends and between words.
    canonical = " ".join(body.split())
    # ASCII only, so str.upper cannot turn a look-alike (U+017F long s, U+0131 dotless i, U+FB06 "st"
    # ligature) into a keyword letter.
    if not canonical.isascii():
        return None
    return _KEYWORDS.get(canonical.upper())
