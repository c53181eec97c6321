"""How the sandbox decides a send's fate: Twilio's magic test numbers, then landlines, else delivered."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from reachout.carriers.failures import CarrierFailure, failure_for
from reachout.messaging.status import MessageStatus
from reachout.phones.numbers import InvalidPhoneNumber, parse_e164

# Twilio's test credentials refuse these 'To' numbers at the API with these codes.
MAGIC_TO_NUMBERS: dict[str, int] = {
    "+15005550001": 21211,  # invalid number
    "+15005550002": 21612,  # cannot route to this number
    "+15005550003": 21408,  # no international permission
    "+15005550004": 21610,  # recipient has opted out
    "+15005550009": 21614,  # not SMS-capable
}

LANDLINE_FAILURE = 30006


@dataclass(frozen=True)
class Fate:
    """What the sandbox will do with a send: refuse it now, or accept it and later report `final_status`."""

    refusal: CarrierFailure | None
    final_status: MessageStatus
    final_error_code: int | None


@lru_cache(maxsize=65_536)  # parsing a number is most of a sandbox send's cost, and recipients repeat
def fate_of(to_number: str) -> Fate:
    """Decide, from the recipient alone, how a send to it ends."""
    magic = MAGIC_TO_NUMBERS.get(to_number)
    if magic is not None:
        failure = failure_for(magic)
        return Fate(refusal=failure, final_status=failure.status, final_error_code=failure.code)
    try:
        number = parse_e164(to_number.removeprefix("whatsapp:"))
    except InvalidPhoneNumber:
        failure = failure_for(21211)
        return Fate(refusal=failure, final_status=failure.status, final_error_code=failure.code)
    if number.is_landline:
        # Like Twilio, a landline is accepted at the API and fails later, on the carrier's side.
        return Fate(refusal=None, final_status=MessageStatus.UNDELIVERED, final_error_code=LANDLINE_FAILURE)
    return Fate(refusal=None, final_status=MessageStatus.DELIVERED, final_error_code=None)
