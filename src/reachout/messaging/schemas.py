"""Messaging shapes shared with the dialects and the dispatcher."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import uuid_utils

from reachout.carriers.base import Accepted, CarrierUnavailable, Rejected
from reachout.kit.gcra import Rate
from reachout.messaging.status import MessageStatus


def new_message_id() -> str:
    """A UUIDv7: time-ordered, so each new row lands at the end of the primary-key index.

    Random (v4) keys put every insert on a different index page; under load that was a sixth of the
    accept path's time (bench/README.md).
    """
    return str(uuid_utils.uuid7())


@dataclass(frozen=True)
class OutboundRequest:
    """A validated greeting: sent from `sender`, or from one of `candidates` chosen at accept time."""

    project_id: str
    rate_limit: Rate
    channel: str
    to_number: str
    body: str
    sender: str | None
    candidates: tuple[str, ...]
    metadata: dict[str, Any] = field(default_factory=dict)
    agent: dict[str, Any] = field(default_factory=dict)  # the project's agent, which the conversation keeps


@dataclass(frozen=True)
class ConversationText:
    """A text reachout sends within a conversation: an agent's reply, a keyword answer, a warning."""

    project_id: str
    conversation_id: str | None
    channel: str
    from_number: str
    to_number: str
    body: str


@dataclass(frozen=True)
class AcceptedMessage:
    """What the caller learns once a message is durably accepted."""

    message_id: str
    conversation_id: str
    from_number: str


@dataclass(frozen=True)
class MessageView:
    """A message as it stands."""

    id: str
    project_id: str | None
    conversation_id: str | None
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
class ClaimedMessage:
    """A message a dispatcher holds a lease on."""

    id: str
    channel: str
    from_number: str
    to_number: str
    body: str
    num_segments: int
    attempts: int
    created_at: datetime


@dataclass(frozen=True)
class MessageState:
    """The delivery-relevant columns of a message, as applying a status report needs them."""

    id: str
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
