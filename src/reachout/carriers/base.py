"""The carrier port: what reachout needs from anything that can put a text on a phone.

    SendResult = Accepted (the carrier took it; here is its sid)
               | Rejected (the carrier refused it; a `CarrierFailure` from the catalogue says why)
    CarrierUnavailable (raised): the outcome is unknown — the carrier may or may not have taken it.

Status and inbound reports flow the other way, as `StatusReport` and `InboundText`, into the one path
every carrier shares (`messaging.delivery.apply_statuses`, the inbound handler).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple, Protocol

from reachout.delivery.channels import Channel
from reachout.delivery.failures import CarrierFailure
from reachout.delivery.status import MessageStatus
from reachout.kit.records import EMPTY_MAPPING


class CarrierKind(StrEnum):
    """The carriers reachout can send through; the key of the registry."""

    SANDBOX = "sandbox"
    TWILIO = "twilio"


@dataclass(frozen=True)
class OutboundText:
    """One message to hand to a carrier. `reference` is reachout's message id, the idempotency key."""

    reference: str
    channel: Channel
    from_number: str
    to_number: str
    body: str
    num_segments: int
    # Twilio's way of sending: through a Messaging Service's pool, and a content template instead of a body.
    messaging_service_sid: str | None = None
    content_sid: str | None = None
    content_variables: dict[str, str] | None = None


@dataclass(frozen=True)
class Accepted:
    sid: str


@dataclass(frozen=True)
class Rejected:
    failure: CarrierFailure
    retry_after: float | None = None  # seconds the carrier asked us to wait (its Retry-After), if any


SendResult = Accepted | Rejected


class CarrierUnavailable(Exception):
    """The carrier could not be reached or did not answer: whether it took the message is unknown."""

    def __init__(self, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after  # seconds the carrier asked us to wait (its Retry-After), if any


# A NamedTuple, as every record built per message of a batch (reachout.kit.records).
class StatusReport(NamedTuple):
    """A carrier's word on where a message stands. `reference` is reachout's id when the carrier echoes it."""

    sid: str
    status: MessageStatus
    occurred_at: datetime
    reference: str | None = None
    error_code: int | None = None
    num_segments: int | None = None
    from_number: str | None = None
    source: str = "carrier"
    details: Mapping[str, Any] = EMPTY_MAPPING


@dataclass(frozen=True)
class InboundText:
    """A text a person sent to one of reachout's numbers."""

    sid: str
    channel: Channel
    from_number: str
    to_number: str
    body: str
    received_at: datetime
    carrier: str


class TextCarrier(Protocol):
    """Sends texts. Implementations must treat a repeated `reference` as the same send, not a new one."""

    kind: CarrierKind

    async def send(self, text: OutboundText) -> SendResult:
        """Hand one message over; raise `CarrierUnavailable` when the outcome is unknown."""
        ...

    async def find(self, text: OutboundText, since: datetime) -> Sequence[Accepted]:
        """Sends the carrier took since `since` that may be this text's, likeliest first (none: never sent).

        Asked before any re-send; the caller skips those already recorded for other messages. Raise
        `CarrierUnavailable` when the carrier cannot tell: then nothing is re-sent yet.
        """
        ...


class CarrierEvents(Protocol):
    """Where carriers deliver what they hear: the status and inbound paths shared by every carrier."""

    async def statuses(self, session: Any, reports: Sequence[StatusReport]) -> None:
        """Apply status reports, in order, inside the caller's transaction."""
        ...

    async def inbound(self, session: Any, text: InboundText) -> None:
        """Take in a text from a person inside the caller's transaction."""
        ...
