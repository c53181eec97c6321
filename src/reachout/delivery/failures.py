"""The closed catalogue of carrier failures, as data: Twilio's error codes, which reachout's sandbox shares.

Each entry is named, so code says `UNSUBSCRIBED`, never 21610. An entry says whether trying again can help
(`retryable`) and which terminal status a permanent failure leaves the message in. Codes not in the catalogue
are permanent failures, never retried blindly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from reachout.delivery.status import MessageStatus


@dataclass(frozen=True)
class CarrierFailure:
    code: int
    description: str
    retryable: bool
    status: MessageStatus = MessageStatus.FAILED
    opts_out: bool = False


_FAILED, _UNDELIVERED = MessageStatus.FAILED, MessageStatus.UNDELIVERED

TOO_MANY_REQUESTS: Final = CarrierFailure(20429, "Too many requests", retryable=True)
CARRIER_INTERNAL_ERROR: Final = CarrierFailure(20500, "Carrier internal error", retryable=True)
# Also what reachout records when a carrier could not be reached: whether it took the message is unknown.
CARRIER_UNAVAILABLE: Final = CarrierFailure(20503, "Carrier service unavailable", retryable=True)
INVALID_TO_NUMBER: Final = CarrierFailure(21211, "Invalid 'To' phone number", retryable=False)
REGION_NOT_ENABLED: Final = CarrierFailure(
    21408, "Permission to send to this region is not enabled", retryable=False
)
SENDER_NOT_CAPABLE: Final = CarrierFailure(
    21606, "The 'From' number is not a valid message-capable number", retryable=False
)
UNREACHABLE_FROM_SENDER: Final = CarrierFailure(
    21612, "The 'To' number is not reachable from this sender", retryable=False
)
NOT_MOBILE: Final = CarrierFailure(21614, "'To' number is not a valid mobile number", retryable=False)
UNSUBSCRIBED: Final = CarrierFailure(
    21610, "Recipient has unsubscribed (replied STOP)", retryable=False, opts_out=True
)
NO_POOL_SENDER: Final = CarrierFailure(
    21703, "No number in the sender pool can send this message", retryable=False
)
QUEUE_OVERFLOW: Final = CarrierFailure(30001, "Queue overflow", retryable=True)
UNREACHABLE_HANDSET: Final = CarrierFailure(
    30003, "Unreachable destination handset", retryable=False, status=_UNDELIVERED
)
BLOCKED: Final = CarrierFailure(30004, "Message blocked", retryable=False, status=_UNDELIVERED)
UNKNOWN_HANDSET: Final = CarrierFailure(
    30005, "Unknown destination handset", retryable=False, status=_UNDELIVERED
)
LANDLINE: Final = CarrierFailure(
    30006, "Landline or unreachable carrier", retryable=False, status=_UNDELIVERED
)
FILTERED: Final = CarrierFailure(
    30007, "Message filtered by the carrier", retryable=False, status=_UNDELIVERED
)
# Twilio's own "unknown error" from the handset's network, after the hand-off: permanent.
UNKNOWN_ERROR: Final = CarrierFailure(30008, "Unknown error", retryable=False, status=_UNDELIVERED)
UNREGISTERED_SENDER: Final = CarrierFailure(
    30034, "Message from an unregistered number (A2P 10DLC)", retryable=False
)
VALIDITY_EXPIRED: Final = CarrierFailure(
    30036, "Validity period expired", retryable=False, status=MessageStatus.CANCELED
)
WHATSAPP_RATE_LIMITED: Final = CarrierFailure(
    63018, "Rate limit exceeded for the WhatsApp sender", retryable=True
)

CATALOGUE: Final[Mapping[int, CarrierFailure]] = MappingProxyType(
    {
        f.code: f
        for f in (
            TOO_MANY_REQUESTS,
            CARRIER_INTERNAL_ERROR,
            CARRIER_UNAVAILABLE,
            INVALID_TO_NUMBER,
            REGION_NOT_ENABLED,
            SENDER_NOT_CAPABLE,
            UNREACHABLE_FROM_SENDER,
            NOT_MOBILE,
            UNSUBSCRIBED,
            NO_POOL_SENDER,
            QUEUE_OVERFLOW,
            UNREACHABLE_HANDSET,
            BLOCKED,
            UNKNOWN_HANDSET,
            LANDLINE,
            FILTERED,
            UNKNOWN_ERROR,
            UNREGISTERED_SENDER,
            VALIDITY_EXPIRED,
            WHATSAPP_RATE_LIMITED,
        )
    }
)


def failure_for(code: int) -> CarrierFailure:
    """The catalogue entry for a code; an unknown code is a permanent failure."""
    return CATALOGUE.get(code) or CarrierFailure(code, f"Carrier error {code}", retryable=False)
