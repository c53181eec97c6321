"""The event log's records: what a domain hands `events.service.record`, and what reads give back."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from reachout.events.attempts import Verdict
from reachout.events.types import EventType
from reachout.kit.records import EMPTY_MAPPING

# The ids reachout gives events (UUIDv7) and endpoints (UUIDv7); anything else names none of them.
_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def could_be_id(text: str) -> bool:
    """Whether `text` has the shape of an event's or an endpoint's id (a text no database need be asked of:
    PostgreSQL cannot even bind a NUL)."""
    return _ID.fullmatch(text) is not None


class NewEvent(NamedTuple):
    """A state change to record: its type, when it happened, its project, what it is about, and `data`, the
    view of its subject as the change left it (a message's, a conversation's, a contact's)."""

    type: EventType
    occurred_at: datetime
    project_id: str | None
    data: Mapping[str, Any]
    message_id: str | None = None
    conversation_id: str | None = None
    source: str | None = None  # who reported it: a carrier, the dispatcher, a keyword…
    details: Mapping[str, Any] = EMPTY_MAPPING  # for audit, beyond the subject's view


@dataclass(frozen=True)
class EventView:
    """A recorded event, as the API and deliveries see it."""

    id: str
    type: EventType
    occurred_at: datetime
    project_id: str | None
    message_id: str | None
    conversation_id: str | None
    source: str | None
    details: Mapping[str, Any]
    data: Mapping[str, Any]


@dataclass(frozen=True)
class EndpointRoute:
    """What fan-out needs of an enabled endpoint: which project's events it takes, and which types."""

    id: str
    project_id: str
    event_types: tuple[str, ...]


@dataclass(frozen=True)
class EndpointConfig:
    """An endpoint as the provisioning file declares it."""

    url: str
    secrets: tuple[str, ...]
    event_types: tuple[str, ...] = ()


class LeasedDelivery(NamedTuple):
    """A delivery a worker holds under its lease, with everything its request needs."""

    id: int
    event_id: str
    endpoint_id: str
    attempts: int  # counting the one this lease is for
    type: str
    occurred_at: datetime
    data: Mapping[str, Any]
    url: str
    secrets: tuple[str, ...]


class AttemptResult(NamedTuple):
    """What one attempt got, and what follows: the delivery next due at `retry_at` (None: it is done, or
    failed for good), the endpoint disabled if `disable` says why."""

    delivery: LeasedDelivery
    attempted_at: datetime
    status_code: int | None
    latency_ms: int
    error: str | None
    response_body: str | None
    verdict: Verdict
    retry_at: datetime | None
