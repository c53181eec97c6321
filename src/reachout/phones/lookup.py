"""The line-type port: mobile, landline or VoIP line, where libphonenumber cannot tell which.

libphonenumber knows the type of most numbers from their prefix, but in the North American plan a number of
any area code may be a mobile or a landline (FIXED_LINE_OR_MOBILE). There a lookup answers: the sandbox from
its own rules, Twilio through Lookup v2 `line_type_intelligence`. Answers are kept per number (`cached`), as
lookups cost money and a line's type rarely changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from reachout.phones.numbers import NumberType, PhoneNumber


class LineType(StrEnum):
    """A line's type, in the vocabulary of Twilio Lookup v2's `line_type_intelligence.type`."""

    MOBILE = "mobile"
    LANDLINE = "landline"
    FIXED_VOIP = "fixedVoip"
    NON_FIXED_VOIP = "nonFixedVoip"
    PERSONAL = "personal"
    TOLL_FREE = "tollFree"
    PREMIUM = "premium"
    SHARED_COST = "sharedCost"
    UAN = "uan"
    VOICEMAIL = "voicemail"
    PAGER = "pager"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class LineFacts:
    """What a lookup learned about one number: `valid` is False when the network says no such number."""

    number: str
    valid: bool
    line_type: LineType
    carrier_name: str | None = None


class LineTypeLookup(Protocol):
    """Answers what kind of line a number is; may call a paid network service."""

    name: str

    async def look_up(self, number: PhoneNumber) -> LineFacts:
        """The facts about `number`; raises LookupUnavailable when the service cannot answer now."""
        ...

    async def close(self) -> None:
        """Release its connections (at shutdown)."""
        ...


class LookupUnavailable(Exception):
    """The lookup service could not answer (timeout, outage); the send should be retried later."""


_BY_NUMBER_TYPE: dict[NumberType, LineType] = {
    NumberType.MOBILE: LineType.MOBILE,
    NumberType.FIXED_LINE: LineType.LANDLINE,
    NumberType.TOLL_FREE: LineType.TOLL_FREE,
    NumberType.PREMIUM_RATE: LineType.PREMIUM,
    NumberType.SHARED_COST: LineType.SHARED_COST,
    NumberType.VOIP: LineType.NON_FIXED_VOIP,
    NumberType.PAGER: LineType.PAGER,
    NumberType.UAN: LineType.UAN,
    NumberType.VOICEMAIL: LineType.VOICEMAIL,
}


def known_line_type(number: PhoneNumber) -> LineType | None:
    """The line type libphonenumber is sure of; None where only a lookup can tell: FIXED_LINE_OR_MOBILE, and
    personal numbers (NANP 5XX, UK 070), which may be forwarded to any line."""
    return _BY_NUMBER_TYPE.get(number.number_type)
