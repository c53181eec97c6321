"""The closed catalogue of carrier failures, as data: Twilio's error codes, which reachout's sandbox shares.

Each entry says whether trying again can help (`retryable`) and which terminal status a permanent failure
leaves the message in. Codes not in the catalogue are treated as permanent failures, never retried blindly.
"""

from __future__ import annotations

from dataclasses import dataclass

from reachout.messaging.status import MessageStatus


@dataclass(frozen=True)
class CarrierFailure:
    code: int
    description: str
    retryable: bool
    status: MessageStatus = MessageStatus.FAILED
    opts_out: bool = False


_FAILED, _UNDELIVERED = MessageStatus.FAILED, MessageStatus.UNDELIVERED

CATALOGUE: dict[int, CarrierFailure] = {
    f.code: f
    for f in (
        CarrierFailure(20429, "Too many requests", retryable=True),
        CarrierFailure(20500, "Carrier internal error", retryable=True),
        CarrierFailure(20503, "Carrier service unavailable", retryable=True),
        CarrierFailure(21211, "Invalid 'To' phone number", retryable=False),
        CarrierFailure(21408, "Permission to send to this region is not enabled", retryable=False),
        CarrierFailure(21606, "The 'From' number is not a valid message-capable number", retryable=False),
        CarrierFailure(21610, "Recipient has unsubscribed (replied STOP)", retryable=False, opts_out=True),
        CarrierFailure(21703, "No number in the sender pool can send this message", retryable=False),
        CarrierFailure(21612, "The 'To' number is not reachable from this sender", retryable=False),
        CarrierFailure(21614, "'To' number is not a valid mobile number", retryable=False),
        CarrierFailure(30001, "Queue overflow", retryable=True, status=_FAILED),
        CarrierFailure(30003, "Unreachable destination handset", retryable=False, status=_UNDELIVERED),
        CarrierFailure(30004, "Message blocked", retryable=False, status=_UNDELIVERED),
        CarrierFailure(30005, "Unknown destination handset", retryable=False, status=_UNDELIVERED),
        CarrierFailure(30006, "Landline or unreachable carrier", retryable=False, status=_UNDELIVERED),
        CarrierFailure(30007, "Message filtered by the carrier", retryable=False, status=_UNDELIVERED),
        CarrierFailure(30008, "Unknown error", retryable=False, status=_UNDELIVERED),
        CarrierFailure(30034, "Message from an unregistered number (A2P 10DLC)", retryable=False),
        CarrierFailure(30036, "Validity period expired", retryable=False, status=MessageStatus.CANCELED),
        CarrierFailure(63018, "Rate limit exceeded for the WhatsApp sender", retryable=True),
    )
}


def failure_for(code: int) -> CarrierFailure:
    """The catalogue entry for a code; an unknown code is a permanent failure."""
    return CATALOGUE.get(code) or CarrierFailure(code, f"Carrier error {code}", retryable=False)
