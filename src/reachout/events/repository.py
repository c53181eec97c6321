"""All SQL of the event log: writing events and their deliveries, and reading them back."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from reachout.db import bulk
from reachout.db.base import table_of
from reachout.events.models import DeliveryStatus, Event, WebhookDelivery, WebhookEndpoint
from reachout.events.schemas import EndpointRoute, EventView
from reachout.events.types import EventType

_EVENTS = table_of(Event)
_DELIVERIES = table_of(WebhookDelivery)

# Built once: every batch that records events runs it.
_ROUTES = select(WebhookEndpoint.id, WebhookEndpoint.project_id, WebhookEndpoint.event_types).where(
    WebhookEndpoint.project_id.in_(bindparam("projects", expanding=True)), WebhookEndpoint.enabled.is_(True)
)


async def insert_events(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Append events (one executemany)."""
    await bulk.insert_rows(session, _EVENTS, rows)


async def routes(session: AsyncSession, project_ids: Iterable[str]) -> list[EndpointRoute]:
    """The enabled endpoints of these projects."""
    wanted = sorted(set(project_ids))
    if not wanted:
        return []
    result = await session.execute(_ROUTES, {"projects": wanted})
    return [EndpointRoute(row.id, row.project_id, tuple(row.event_types or ())) for row in result]


async def insert_deliveries(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Queue deliveries (one executemany)."""
    await bulk.insert_rows(session, _DELIVERIES, rows)


def view_of(row: Event) -> EventView:
    """An event row as a view."""
    return EventView(
        row.id,
        EventType(row.type),
        row.occurred_at,
        row.project_id,
        row.message_id,
        row.conversation_id,
        row.source,
        dict(row.details or {}),
        dict(row.data or {}),
    )


async def project_endpoints(session: AsyncSession, project_id: str) -> list[WebhookEndpoint]:
    """A project's endpoints, enabled or not."""
    result = await session.execute(
        select(WebhookEndpoint).where(WebhookEndpoint.project_id == project_id).order_by(WebhookEndpoint.url)
    )
    return list(result.scalars())


def add_endpoint(session: AsyncSession, endpoint: WebhookEndpoint) -> None:
    """Stage a new endpoint (written at the next flush)."""
    session.add(endpoint)


async def pending_count(session: AsyncSession, endpoint_id: str) -> int:
    """How many of an endpoint's deliveries are still to be made."""
    result = await session.execute(
        select(func.count())
        .select_from(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.status == DeliveryStatus.PENDING)
    )
    return int(result.scalar_one())


async def delete_endpoint(session: AsyncSession, endpoint_id: str) -> None:
    """Remove an endpoint with its deliveries and their attempts."""
    await session.execute(delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id))
    await session.execute(delete(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id))
