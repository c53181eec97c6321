"""The shapes of reachout's own API, as its OpenAPI document tells them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from reachout.events.reading import AttemptView, EndpointView
from reachout.events.schemas import EventView
from reachout.kit.clock import iso_utc, iso_utc_or_none


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ApiErrorBody(_Shape):
    code: str = Field(
        description="A machine code: UNAUTHENTICATED, NOT_FOUND, INVALID_REQUEST, INTERNAL_ERROR."
    )
    message: str


class ApiError(_Shape):
    """Every refusal: `{"error": {"code", "message"}}`."""

    error: ApiErrorBody


class EventOut(_Shape):
    id: str = Field(description="A UUIDv7: the `webhook-id` of every delivery of the event.")
    type: str
    occurred_at: str
    project_id: str | None
    message_id: str | None
    conversation_id: str | None
    source: str | None = Field(description="Who reported it: a carrier, the dispatcher, a keyword…")
    details: dict[str, Any]
    data: dict[str, Any] = Field(description="The subject as the change left it, as the webhook's `data`.")


class EventList(_Shape):
    data: list[EventOut]
    has_more: bool
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


class AttemptOut(_Shape):
    id: int
    delivery_id: int
    event_id: str
    endpoint_id: str
    url: str
    attempted_at: str
    status_code: int | None
    latency_ms: int
    error: str | None
    response_body: str | None = Field(description="The first 2 KB of the answer.")


class AttemptList(_Shape):
    data: list[AttemptOut]


class EndpointOut(_Shape):
    id: str
    project_id: str
    url: str
    events: list[str] = Field(description="The types or families it takes; empty: every event.")
    enabled: bool
    disabled_reason: str | None
    disabled_at: str | None
    failing_since: str | None = Field(description="Since when every attempt has failed.")
    pending_deliveries: int
    created_at: str


class EndpointList(_Shape):
    data: list[EndpointOut]


class ReplayBody(_Shape):
    endpoint_id: str | None = Field(default=None, description="Only to this endpoint; else to every one.")


class Replayed(_Shape):
    event_id: str
    endpoints: list[str]


class RecoverBody(_Shape):
    endpoint_id: str
    since: datetime = Field(description="ISO 8601 with a zone: what failed or was missed since then.")


class Recovered(_Shape):
    endpoint_id: str
    queued: int


def event_out(event: EventView) -> dict[str, Any]:
    return {
        "id": event.id,
        "type": event.type.value,
        "occurred_at": iso_utc(event.occurred_at),
        "project_id": event.project_id,
        "message_id": event.message_id,
        "conversation_id": event.conversation_id,
        "source": event.source,
        "details": dict(event.details),
        "data": dict(event.data),
    }


def attempt_out(attempt: AttemptView) -> dict[str, Any]:
    return {
        "id": attempt.id,
        "delivery_id": attempt.delivery_id,
        "event_id": attempt.event_id,
        "endpoint_id": attempt.endpoint_id,
        "url": attempt.url,
        "attempted_at": iso_utc(attempt.attempted_at),
        "status_code": attempt.status_code,
        "latency_ms": attempt.latency_ms,
        "error": attempt.error,
        "response_body": attempt.response_body,
    }


def endpoint_out(endpoint: EndpointView) -> dict[str, Any]:
    return {
        "id": endpoint.id,
        "project_id": endpoint.project_id,
        "url": endpoint.url,
        "events": list(endpoint.event_types),
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
        "disabled_at": iso_utc_or_none(endpoint.disabled_at),
        "failing_since": iso_utc_or_none(endpoint.failing_since),
        "pending_deliveries": endpoint.pending,
        "created_at": iso_utc(endpoint.created_at),
    }
