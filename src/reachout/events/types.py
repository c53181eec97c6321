"""The event catalogue (pure): what each event type means, and which types an endpoint's filter takes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from reachout.delivery.status import MessageStatus


class EventType(StrEnum):
    """Every kind of event the log records, named `subject.what_happened` as Standard Webhooks suggests."""

    MESSAGE_QUEUED = "message.queued"
    MESSAGE_SENDING = "message.sending"
    MESSAGE_SENT = "message.sent"
    MESSAGE_DELIVERED = "message.delivered"
    MESSAGE_UNDELIVERED = "message.undelivered"
    MESSAGE_FAILED = "message.failed"
    MESSAGE_CANCELED = "message.canceled"
    MESSAGE_READ = "message.read"
    MESSAGE_RECEIVED = "message.received"
    CONVERSATION_STARTED = "conversation.started"
    CONVERSATION_WARNING_SENT = "conversation.warning_sent"
    CONVERSATION_AGENT_FAILED = "conversation.agent_failed"
    CONVERSATION_ENDED = "conversation.ended"
    CONTACT_OPTED_OUT = "contact.opted_out"
    CONTACT_OPTED_IN = "contact.opted_in"
    # Kept for audit (GET /api/v1/events shows them), never sent to an endpoint: nothing a customer acts on.
    MESSAGE_RETRY_SCHEDULED = "message.retry_scheduled"
    MESSAGE_REPORT_IGNORED = "message.report_ignored"


class Subject(StrEnum):
    """What an event is about, and so what its `data` is a view of."""

    MESSAGE = "message"
    CONVERSATION = "conversation"
    CONTACT = "contact"


AUDIT_ONLY: Final[frozenset[EventType]] = frozenset(
    {EventType.MESSAGE_RETRY_SCHEDULED, EventType.MESSAGE_REPORT_IGNORED}
)
DELIVERED_TYPES: Final[tuple[EventType, ...]] = tuple(t for t in EventType if t not in AUDIT_ONLY)

DESCRIPTIONS: Final[Mapping[EventType, str]] = MappingProxyType(
    {
        EventType.MESSAGE_QUEUED: "A message was accepted and waits to be handed to its carrier.",
        EventType.MESSAGE_SENDING: "The carrier took the message and gave it its sid.",
        EventType.MESSAGE_SENT: "The carrier reports it sent the message on to the network.",
        EventType.MESSAGE_DELIVERED: "The carrier confirmed delivery to the handset.",
        EventType.MESSAGE_UNDELIVERED: "The carrier gave up delivering the message (`error_code` says why).",
        EventType.MESSAGE_FAILED: "The message could not be sent at all (`error_code` says why).",
        EventType.MESSAGE_CANCELED: "The message was withdrawn before it was sent (its validity ran out).",
        EventType.MESSAGE_READ: "The person opened the message (WhatsApp read receipts).",
        EventType.MESSAGE_RECEIVED: "A person texted one of the project's numbers.",
        EventType.CONVERSATION_STARTED: "A conversation opened: a greeting was accepted, or a person texted.",
        EventType.CONVERSATION_WARNING_SENT: "The person went quiet; the inactivity warning was queued.",
        EventType.CONVERSATION_AGENT_FAILED: "The agent failed every try at a turn; the fallback was sent.",
        EventType.CONVERSATION_ENDED: "A conversation ended; `end_reason` says why.",
        EventType.CONTACT_OPTED_OUT: "A person opted out of the project's messages (keyword or carrier).",
        EventType.CONTACT_OPTED_IN: "A person who had opted out opted back in.",
        EventType.MESSAGE_RETRY_SCHEDULED: "A send failed and will be tried again (audit only).",
        EventType.MESSAGE_REPORT_IGNORED: "A status report changed nothing: duplicate or late (audit only).",
    }
)

_BY_STATUS: Final[Mapping[MessageStatus, EventType]] = MappingProxyType(
    {status: EventType(f"message.{status.value}") for status in MessageStatus}
)


def subject_of(event_type: EventType) -> Subject:
    """The kind of thing an event type is about."""
    return Subject(event_type.value.split(".", 1)[0])


def for_status(status: MessageStatus) -> EventType:
    """The event a message records when it moves to `status`."""
    return _BY_STATUS[status]


class UnknownEventFilter(ValueError):
    """An endpoint's filter names no event type and no family of them."""


WILDCARD = "*"
FAMILIES: Final[frozenset[str]] = frozenset(f"{subject.value}.*" for subject in Subject)


def check_filter(patterns: Iterable[str]) -> tuple[str, ...]:
    """An endpoint's `events` filter as given, once each pattern is known: a type, `family.*` or `*`."""
    checked: list[str] = []
    for pattern in patterns:
        if pattern != WILDCARD and pattern not in FAMILIES and pattern not in DELIVERED_TYPES:
            known = ", ".join([*sorted(FAMILIES), *DELIVERED_TYPES])
            raise UnknownEventFilter(f"'{pattern}' is no event type or family; known: {known}")
        if pattern not in checked:
            checked.append(pattern)
    return tuple(checked)


def wanted(patterns: Iterable[str], event_type: EventType) -> bool:
    """Whether an endpoint with this filter (empty: every event) is sent `event_type`."""
    if event_type in AUDIT_ONLY:
        return False
    family = f"{event_type.value.split('.', 1)[0]}.*"
    listed = False
    for pattern in patterns:
        listed = True
        if pattern in (WILDCARD, family, event_type.value):
            return True
    return not listed
