"""How the sandbox decides a send's fate (Twilio's magic test numbers, then landlines, else delivered),
and what its line-type lookup answers."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from reachout.delivery.failures import CarrierFailure, failure_for
from reachout.delivery.status import MessageStatus
from reachout.phones.lookup import LineFacts, LineType, known_line_type
from reachout.phones.numbers import InvalidPhoneNumber, PhoneNumber, parse_e164

# Twilio's test credentials refuse these 'To' numbers at the API with these codes.
MAGIC_TO_NUMBERS: dict[str, int] = {
    "+15005550001": 21211,  # invalid number
    "+15005550002": 21612,  # cannot route to this number
    "+15005550003": 21408,  # no international permission
    "+15005550004": 21610,  # recipient has opted out
    "+15005550009": 21614,  # not SMS-capable
}

# What the sandbox's line-type lookup knows of the magic numbers that are facts about the line, so the send
# gates refuse them at accept as they would a real invalid number or landline. The others (unroutable, no
# permission, unsubscribed) are the carrier's business, and fail at the hand-off with their codes.
NO_SUCH_NUMBER = 21211
NOT_SMS_CAPABLE = 21614
LANDLINE_FAILURE = 30006
# North American numbers say nothing of their line type, so the sandbox names some landlines: line numbers
# 0000-0099 of exchange 555 (+1 NPA 555 00xx), which no real subscriber holds.
_NANP_LANDLINE_EXCHANGE = "555"
_NANP_LANDLINE_LINES = "00"


def line_type_of(number: PhoneNumber) -> LineType:
    """The sandbox's answer to a line-type lookup: libphonenumber's type where it knows it, else mobile, but
    for Twilio's magic not-SMS-capable number and the reserved landlines +1 NPA 555 00xx."""
    known = known_line_type(number)
    if known is not None:
        return known
    e164 = number.e164
    magic = MAGIC_TO_NUMBERS.get(e164)
    if magic is not None:  # +1 500 555 00xx: test numbers, whose exchange is not the landlines'
        return LineType.LANDLINE if magic == NOT_SMS_CAPABLE else LineType.MOBILE
    if e164.startswith("+1") and e164[5:8] == _NANP_LANDLINE_EXCHANGE and e164[8:10] == _NANP_LANDLINE_LINES:
        return LineType.LANDLINE
    return LineType.MOBILE


class SandboxLookup:
    """The line-type port on the sandbox's rules: no network, nothing to pay, nothing to keep."""

    name = "sandbox"

    async def look_up(self, number: PhoneNumber) -> LineFacts:
        if MAGIC_TO_NUMBERS.get(number.e164) == NO_SUCH_NUMBER:
            return LineFacts(number.e164, valid=False, line_type=LineType.UNKNOWN)
        return LineFacts(
            number.e164, valid=True, line_type=line_type_of(number), carrier_name="Sandbox Mobile"
        )

    async def close(self) -> None:
        """Nothing to release."""


@dataclass(frozen=True)
class Fate:
    """What the sandbox will do with a send: refuse it now, or accept it and later report `final_status`."""

    refusal: CarrierFailure | None
    final_status: MessageStatus
    final_error_code: int | None


@lru_cache(maxsize=65_536)  # parsing a number is most of a sandbox send's cost, and recipients repeat
def fate_of(to_number: str, without_receipts: frozenset[str] = frozenset()) -> Fate:
    """Decide, from the recipient alone, how a send to it ends.

    A text to a country in `without_receipts` (ISO codes) reaches the handset, but its route sends no
    delivery receipt, as some international routes do not: the carrier reports it `sent` and then nothing.
    """
    magic = MAGIC_TO_NUMBERS.get(to_number)
    if magic is not None:
        failure = failure_for(magic)
        return Fate(refusal=failure, final_status=failure.status, final_error_code=failure.code)
    try:
        number = parse_e164(to_number.removeprefix("whatsapp:"))
    except InvalidPhoneNumber:
        failure = failure_for(21211)
        return Fate(refusal=failure, final_status=failure.status, final_error_code=failure.code)
    if line_type_of(number) is LineType.LANDLINE:
        # Like Twilio, a landline is accepted at the API and fails later, on the carrier's side.
        return Fate(refusal=None, final_status=MessageStatus.UNDELIVERED, final_error_code=LANDLINE_FAILURE)
    if without_receipts and number.region in without_receipts:  # the region costs another lookup
        return Fate(refusal=None, final_status=MessageStatus.SENT, final_error_code=None)
    return Fate(refusal=None, final_status=MessageStatus.DELIVERED, final_error_code=None)
