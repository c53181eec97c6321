"""The forward-only message delivery status machine.

Carrier callbacks arrive late, twice, and out of order. A reported status is applied only if it moves the
message forward in rank; a terminal status is never left, except ``delivered`` -> ``read`` because WhatsApp
sends read receipts after delivery receipts.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Final


class MessageStatus(StrEnum):
    """Where a message is in its life.

    - ``queued``: accepted by us, not yet handed to a carrier.
    - ``sending``: handed to the carrier, which took it and gave it a sid.
    - ``sent``: the carrier reports it sent it on to the network (Twilio's ``sent``).
    - ``delivered``: the carrier confirmed delivery to the handset.
    - ``undelivered``: the carrier gave up delivering it.
    - ``failed``: it could not be sent at all.
    - ``received``: an inbound message we received.
    - ``read``: the recipient opened it (WhatsApp read receipts).
    - ``canceled``: withdrawn before it was sent.
    """

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    RECEIVED = "received"
    READ = "read"
    CANCELED = "canceled"


class TransitionOutcome(StrEnum):
    """What to do with a reported status.

    ``applied``: store it. ``duplicate``: it is the current status. ``stale``: it would move the message
    backwards or out of a terminal status, so ignore it.
    """

    APPLIED = "applied"
    DUPLICATE = "duplicate"
    STALE = "stale"


TERMINAL_STATUSES: Final[frozenset[MessageStatus]] = frozenset(
    {
        MessageStatus.DELIVERED,
        MessageStatus.UNDELIVERED,
        MessageStatus.FAILED,
        MessageStatus.RECEIVED,
        MessageStatus.READ,
        MessageStatus.CANCELED,
    }
)

_RANK: Final[Mapping[MessageStatus, int]] = MappingProxyType(
    {
        MessageStatus.QUEUED: 0,
        MessageStatus.SENDING: 1,
        MessageStatus.SENT: 2,
        MessageStatus.DELIVERED: 3,
        MessageStatus.UNDELIVERED: 3,
        MessageStatus.FAILED: 3,
        MessageStatus.CANCELED: 3,
        MessageStatus.RECEIVED: 3,
        MessageStatus.READ: 4,
    }
)

# The only ways out of a terminal status.
_TERMINAL_EXITS: Final[frozenset[tuple[MessageStatus, MessageStatus]]] = frozenset(
    {(MessageStatus.DELIVERED, MessageStatus.READ)}
)


def is_terminal(status: MessageStatus) -> bool:
    """True if no ordinary callback can move a message out of this status."""
    return status in TERMINAL_STATUSES


def decide(current: MessageStatus, reported: MessageStatus) -> TransitionOutcome:
    """Decide whether a reported status replaces the current one."""
    if reported == current:
        return TransitionOutcome.DUPLICATE
    if current in TERMINAL_STATUSES:
        return (
            TransitionOutcome.APPLIED if (current, reported) in _TERMINAL_EXITS else TransitionOutcome.STALE
        )
    return TransitionOutcome.APPLIED if _RANK[reported] > _RANK[current] else TransitionOutcome.STALE
