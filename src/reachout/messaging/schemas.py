"""Messaging shapes shared with the dialects and the dispatcher."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import uuid_utils

from reachout.carriers.base import Accepted, CarrierUnavailable, InboundText, Rejected
from reachout.delivery.channels import Channel
from reachout.delivery.status import MessageStatus
from reachout.events.types import EventType
from reachout.kit.gcra import Rate
from reachout.kit.records import EMPTY_MAPPING
from reachout.messaging.models import SendPriority

# As Twilio: a message still queued this long after it was accepted is canceled (30036), not sent late.
DEFAULT_VALIDITY_SECONDS = 36_000.0


def new_message_id() -> str:
    """A UUIDv7: time-ordered, so each new row lands at the end of the primary-key index.

    Random (v4) keys put every insert on a different index page; under load that was a sixth of the
    accept path's time (bench/README.md).
    """
    return str(uuid_utils.uuid7())


# The records of a batch's messages are NamedTuples (reachout.kit.records).
class OutboundRequest(NamedTuple):
    """A validated first message: sent from `sender`, or from one of `candidates` chosen at accept time; one
    through a use case (`use_case_id`) has its sender chosen from the pool when it is dispatched, and opens no
    conversation until the person replies."""

    project_id: str
    rate_limit: Rate
    channel: Channel
    to_number: str
    body: str
    sender: str | None
    candidates: tuple[str, ...]
    metadata: Mapping[str, Any] = EMPTY_MAPPING
    agent: Mapping[str, Any] = EMPTY_MAPPING  # the project's agent, which the conversation keeps
    validity_seconds: float = DEFAULT_VALIDITY_SECONDS
    content_sid: str | None = None
    content_variables: dict[str, str] | None = None
    use_case_id: str | None = None
    quiet_hours: bool = False  # held until the recipient's sending window opens


class ConversationText(NamedTuple):
    """A text reachout sends within a conversation: an agent's reply, a keyword answer, a warning."""

    project_id: str
    conversation_id: str | None
    channel: Channel
    from_number: str | None  # None until the dispatcher picks it from a use case's pool
    to_number: str
    body: str
    content_sid: str | None = None
    content_variables: dict[str, str] | None = None


class AcceptedMessage(NamedTuple):
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
class UseCaseSend:
    """A message a use case sent a person, as their reply needs it: in a conversation yet, and since when
    they have it."""

    id: str
    use_case_id: str
    conversation_id: str | None
    handed_off_at: datetime


class DueMessage(NamedTuple):
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


class ClaimedMessage(NamedTuple):
    """A message a dispatcher holds a lease on, to hand to its carrier at `send_at`."""

    id: str
    project_id: str | None
    channel: Channel
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
    conversation_id: str | None = None


class MessageState(NamedTuple):
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
    lease_owner: str | None = None
    conversation_id: str | None = None
    carrier: str | None = None


@dataclass(frozen=True)
class OutboxGauges:
    """The outbox at one instant: queued messages (counted up to a cap), those due, the earliest due time of
    each priority that has a due message."""

    queued: int
    due: int
    oldest_due: dict[SendPriority, datetime]


@dataclass(frozen=True)
class FailedMessage:
    """A message of a conversation that a report has just ended badly (failed, undelivered or canceled)."""

    id: str
    conversation_id: str
    status: MessageStatus
    error_code: int | None
    occurred_at: datetime


class NewOutbound(NamedTuple):
    """A message to queue: a first message or a reply, when it may go and until when it may."""

    id: str
    text: ConversationText
    send_after: datetime
    priority: SendPriority
    expires_at: datetime
    created_at: datetime
    use_case_id: str | None = None
    quiet_hours: bool = False


@dataclass(frozen=True)
class NewInbound:
    """A text a person sent, to store: to a project's number (in a conversation or not), or an orphan."""

    id: str
    text: InboundText
    project_id: str | None
    conversation_id: str | None


class MessageEvent(NamedTuple):
    """Something that happened to a message, to record in the event log (`messaging.event_log`)."""

    type: EventType
    message_id: str
    occurred_at: datetime
    source: str | None = None
    error_code: int | None = None  # as reported, which may differ from the message's (a late report)
    details: Mapping[str, Any] = EMPTY_MAPPING


class Snapshot(NamedTuple):
    """A message's columns as its events show it, and its conversation's metadata (None: in none)."""

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
    error_code: int | None
    error_message: str | None
    num_segments: int
    encoding: str
    carrier: str | None
    carrier_sid: str | None
    created_at: datetime
    handed_off_at: datetime | None
    delivered_at: datetime | None
    errored_at: datetime | None
    updated_at: datetime
    metadata: Mapping[str, Any] | None


class MessageChange(NamedTuple):
    """What a status report or a send result changes on one message; a None leaves its column alone.

    `settled`: the dispatcher is done with it (no next attempt, no lease); `next_attempt_at` (with no lease
    either) when it is to be tried again or held."""

    id: str
    updated_at: datetime | None = None
    status: MessageStatus | None = None
    carrier: str | None = None
    carrier_sid: str | None = None
    num_segments: int | None = None
    from_number: str | None = None
    handed_off_at: datetime | None = None
    delivered_at: datetime | None = None
    errored_at: datetime | None = None
    error_code: int | None = None
    error_message: str | None = None
    next_attempt_at: datetime | None = None
    settled: bool = False


@dataclass(frozen=True)
class SendOutcome:
    """What one carrier call came to: `result` is None when no configured carrier can send it."""

    message: ClaimedMessage
    carrier: str | None
    result: Accepted | Rejected | CarrierUnavailable | None
