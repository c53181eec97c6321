"""What reachout's own API reads of the event log: a query of events, and views of attempts and endpoints."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from reachout.events.schemas import EventView

MAX_PAGE = 100


class Order(StrEnum):
    NEWEST_FIRST = "desc"
    OLDEST_FIRST = "asc"  # how `reachout events tail` follows the log


@dataclass(frozen=True)
class EventQuery:
    """Which of an account's events to list: filters, and a page after `cursor` (an event id) in `order`."""

    account_id: str
    types: tuple[str, ...] = ()  # exact types, or families such as `message.*`
    project_id: str | None = None
    message_id: str | None = None
    conversation_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    cursor: str | None = None
    order: Order = Order.NEWEST_FIRST
    limit: int = 20


@dataclass(frozen=True)
class EventPage:
    events: tuple[EventView, ...]
    has_more: bool

    @property
    def next_cursor(self) -> str | None:
        """The cursor of the next page, when there is one."""
        return self.events[-1].id if self.has_more and self.events else None


@dataclass(frozen=True)
class AttemptView:
    """One request to an endpoint, as the API shows it."""

    id: int
    delivery_id: int
    event_id: str
    endpoint_id: str
    url: str
    attempted_at: datetime
    status_code: int | None
    latency_ms: int
    error: str | None
    response_body: str | None


@dataclass(frozen=True)
class EndpointView:
    """An endpoint as the API shows it (never its secrets)."""

    id: str
    project_id: str
    url: str
    event_types: tuple[str, ...]
    enabled: bool
    disabled_reason: str | None
    disabled_at: datetime | None
    failing_since: datetime | None
    pending: int
    created_at: datetime
