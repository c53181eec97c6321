"""The one way a state change is recorded: `record`, in the change's own transaction, which also queues a
delivery of each event to every endpoint of its project that wants it (so none is lost to a crash)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import uuid_utils
from sqlalchemy.ext.asyncio import AsyncSession

from reachout.events import repository
from reachout.events.models import DeliveryStatus, WebhookEndpoint
from reachout.events.schemas import EndpointConfig, EndpointRoute, NewEvent
from reachout.events.types import wanted
from reachout.kit.after_commit import LogLine, log_after_commit
from reachout.logs import get_logger

log = get_logger("webhooks")


def new_event_id() -> str:
    """A new event id: a UUIDv7, so ids sort by creation."""
    return str(uuid_utils.uuid7())


async def record(session: AsyncSession, events: Sequence[NewEvent], now: datetime) -> list[str]:
    """Record events and queue their deliveries, due `now`; returns the events' ids, in order."""
    if not events:
        return []
    ids = [new_event_id() for _ in events]
    await repository.insert_events(
        session,
        [
            {
                "id": event_id,
                "type": event.type,
                "project_id": event.project_id,
                "message_id": event.message_id,
                "conversation_id": event.conversation_id,
                "occurred_at": event.occurred_at,
                "source": event.source,
                "details": _plain(event.details),
                "data": _plain(event.data),
            }
            for event_id, event in zip(ids, events, strict=True)
        ],
    )
    projects = {event.project_id for event in events if event.project_id is not None}
    routes = await repository.routes(session, projects) if projects else []
    if routes:
        deliveries = _fan_out(ids, events, routes, now)
        await repository.insert_deliveries(session, deliveries)
    return ids


def _plain(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """A mapping as its JSON column takes it (a shared empty one is a read-only proxy)."""
    return mapping if type(mapping) is dict else dict(mapping)


def _fan_out(
    ids: Sequence[str], events: Sequence[NewEvent], routes: Sequence[EndpointRoute], now: datetime
) -> list[dict[str, Any]]:
    by_project: dict[str, list[EndpointRoute]] = {}
    for route in routes:
        by_project.setdefault(route.project_id, []).append(route)
    return [
        delivery_row(event_id, route.id, now)
        for event_id, event in zip(ids, events, strict=True)
        for route in by_project.get(event.project_id or "", ())
        if wanted(route.event_types, event.type)
    ]


def delivery_row(event_id: str, endpoint_id: str, now: datetime) -> dict[str, Any]:
    """A new delivery of an event to an endpoint, due `now`."""
    return {
        "event_id": event_id,
        "endpoint_id": endpoint_id,
        "status": DeliveryStatus.PENDING,
        "attempts": 0,
        "due_at": now,
        "lease_owner": None,
        "lease_expires_at": None,
        "created_at": now,
        "updated_at": now,
    }


async def apply_endpoints(
    session: AsyncSession, project_id: str, endpoints: Sequence[EndpointConfig], now: datetime
) -> None:
    """Make a project's endpoints those given, by url: new ones created, listed ones updated (an endpoint
    disabled stays disabled), the rest removed with their pending deliveries."""
    existing = {row.url: row for row in await repository.project_endpoints(session, project_id)}
    listed = {endpoint.url for endpoint in endpoints}
    lines: list[LogLine] = []
    for url, gone in existing.items():
        if url not in listed:
            dropped = await repository.pending_count(session, gone.id)
            await repository.delete_endpoint(session, gone.id)
            fields = {"project_id": project_id, "endpoint_id": gone.id, "dropped_deliveries": dropped}
            lines.append((logging.WARNING if dropped else logging.INFO, "webhook endpoint removed", fields))
    for endpoint in endpoints:
        row = existing.get(endpoint.url)
        if row is None:
            repository.add_endpoint(
                session,
                WebhookEndpoint(
                    id=str(uuid_utils.uuid7()),
                    project_id=project_id,
                    url=endpoint.url,
                    secrets=list(endpoint.secrets),
                    event_types=list(endpoint.event_types),
                    enabled=True,
                    created_at=now,
                    updated_at=now,
                ),
            )
        elif row.secrets != list(endpoint.secrets) or row.event_types != list(endpoint.event_types):
            row.secrets, row.event_types, row.updated_at = (
                list(endpoint.secrets),
                list(endpoint.event_types),
                now,
            )
    await session.flush()
    log_after_commit(session, log, lines)
