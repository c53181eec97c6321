"""Messaging shapes shared with the dialects and the dispatcher."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import uuid_utils

from reachout.carriers.base import Accepted, CarrierUnavailable, Rejected
from reachout.kit.gcra import Rate
from reachout.messaging.status import MessageStatus

# As Twilio: a message still queued this long after it was accepted is canceled (30036), not sent late.
DEFAULT_VALIDITY_SECONDS = 36_000.0


def new_message_id() -> str:
    """A UUIDv7: time-ordered, so each new row lands at the end of the primary-key index.

    Random (v4) keys put every insert on a different index page; under load that was a sixth of the
    accept path's time (bench/README.md).
    """
    return str(uuid_utils.uuid7())


@dataclass(frozen=True)
class OutboundRequest:
    """A validated first message: sent from `sender`, or from one of `candidates` chosen at accept time; one
    through a use case (`use_case_id`) has its sender chosen from the pool when it is dispatched, and opens no
    conversation until the person replies."""

    project_id: str
    rate_limit: Rate
    channel: str
    to_number: str
    body: str
    sender: str | None
    candidates: tuple[str, ...]
    metadata: dict[str, Any] = field(default_factory=dict)
    agent: dict[str, Any] = field(default_factory=dict)  # the project's agent, which the conversation keeps
    validity_seconds: float = DEFAULT_VALIDITY_SECONDS
    content_sid: str | None = None
    content_variables: dict[str, str] | None = None
    use_case_id: str | None = None
    quiet_hours: bool = False  # held until the recipient's sending window opens


@dataclass(frozen=True)
class ConversationText:
    """A text reachout sends within a conversation: an agent's reply, a keyword answer, a warning."""

    project_id: str
    conversation_id: str | None
    channel: str
    from_number: str | None  # None until the dispatcher picks it from a use case's pool
    to_number: str
    body: str
    content_sid: str | None = None
    content_variables: dict[str, str] | None = None


@dataclass(frozen=True)
class AcceptedMessage:
    """What the caller learns once a message is durably accepted: its sender and conversation are None until
    the dispatcher picks the sender (a send through a use case)."""

    message_id: str
    conversation_id: str | None
    from_number: str | None
    created_at: datetime


@dataclass(frozen=True)
class MessageView:
    """A message as it stands."""

    id: str
    project_id: str | None
    conversation_id: str | None
    use_case_id: str | None
    direction: str
    channel: str
    from_number: str | None
    to_number: str
    body: str
    status: str
    carrier_sid: str | None
    num_segments: int
    error_code: int | None
    handed_off_at: datetime | None
    delivered_at: datetime | None
    errored_at: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class DueMessage:
    """A queued message whose time has come, as sender choice, quiet hours and pacing need to see it.

    `from_number` is None for a send through a use case whose sender is not chosen yet."""

    id: str
    project_id: str | None
    from_number: str | None
    to_number: str
    use_case_id: str | None
    num_segments: int
    expires_at: datetime | None
    priority: int
    quiet_hours: bool = False


@dataclass(frozen=True)
class ClaimedMessage:
    """A message a dispatcher holds a lease on, to hand to its carrier at `send_at`."""

    id: str
    project_id: str | None
    channel: str
    from_number: str
    to_number: str
    body: str
    num_segments: int
    attempts: int
    created_at: datetime
    send_at: datetime
    content_sid: str | None = None
    content_variables: dict[str, str] | None = None
    use_case_id: str | None = None


@dataclass(frozen=True)
class MessageState:
    """The delivery-relevant columns of a message, as applying a status report needs them."""

    id: str
    project_id: str | None
    to_number: str
    status: MessageStatus
    carrier_sid: str | None
    from_number: str | None
    num_segments: int
    handed_off_at: datetime | None
    delivered_at: datetime | None


@dataclass(frozen=True)
class SendOutcome:
    """What one carrier call came to: `result` is None when no configured carrier can send it."""

    message: ClaimedMessage
    carrier: str | None
    result: Accepted | Rejected | CarrierUnavailable | None
