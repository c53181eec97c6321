"""The SQL of what the API reads: an account's events, their attempts, its endpoints. An account's rows are
those of its projects (named here, not imported: tenancy sits above the event log)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import String, and_, column, func, or_, select, table
from sqlalchemy.ext.asyncio import AsyncSession

from reachout.events.models import DeliveryStatus, Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from reachout.events.reading import AttemptView, EndpointView, EventPage, EventQuery, Order
from reachout.events.repository import view_of
from reachout.events.schemas import EventView
from reachout.events.types import FAMILIES, WILDCARD

_PROJECTS = table("projects", column("id", String), column("account_id", String))


def _account_projects(account_id: str) -> Any:
    return select(_PROJECTS.c.id).where(_PROJECTS.c.account_id == account_id).scalar_subquery()


async def page(session: AsyncSession, query: EventQuery) -> EventPage:
    """A page of the account's events."""
    statement = select(Event).where(Event.project_id.in_(_account_projects(query.account_id)))
    if query.types and WILDCARD not in query.types:
        exact = [t for t in query.types if t not in FAMILIES]
        prefixes = [t.removesuffix("*") for t in query.types if t in FAMILIES]
        statement = statement.where(or_(Event.type.in_(exact), *(Event.type.startswith(p) for p in prefixes)))
    for value, col in (
        (query.project_id, Event.project_id),
        (query.message_id, Event.message_id),
        (query.conversation_id, Event.conversation_id),
    ):
        if value is not None:
            statement = statement.where(col == value)
    if query.since is not None:
        statement = statement.where(Event.occurred_at >= query.since)
    if query.until is not None:
        statement = statement.where(Event.occurred_at < query.until)
    newest_first = query.order is Order.NEWEST_FIRST
    if query.cursor is not None:
        statement = statement.where(Event.id < query.cursor if newest_first else Event.id > query.cursor)
    statement = statement.order_by(Event.id.desc() if newest_first else Event.id).limit(query.limit + 1)
    rows = [view_of(row) for row in (await session.execute(statement)).scalars()]
    return EventPage(tuple(rows[: query.limit]), len(rows) > query.limit)


async def account_event(session: AsyncSession, account_id: str, event_id: str) -> EventView | None:
    """One of the account's events."""
    row = (
        await session.execute(
            select(Event).where(Event.id == event_id, Event.project_id.in_(_account_projects(account_id)))
        )
    ).scalar_one_or_none()
    return None if row is None else view_of(row)


_ATTEMPT_COLUMNS = (
    WebhookAttempt.id,
    WebhookAttempt.delivery_id,
    WebhookDelivery.event_id,
    WebhookDelivery.endpoint_id,
    WebhookEndpoint.url,
    WebhookAttempt.attempted_at,
    WebhookAttempt.status_code,
    WebhookAttempt.latency_ms,
    WebhookAttempt.error,
    WebhookAttempt.response_body,
)


async def attempts(
    session: AsyncSession,
    *,
    event_id: str | None = None,
    endpoint_id: str | None = None,
    before: int | None = None,
    limit: int = 100,
) -> list[AttemptView]:
    """Attempts of an event or an endpoint, newest first, older than the attempt `before` if given."""
    statement = (
        select(*_ATTEMPT_COLUMNS)
        .join(WebhookDelivery, WebhookDelivery.id == WebhookAttempt.delivery_id)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
    )
    if event_id is not None:
        statement = statement.where(WebhookDelivery.event_id == event_id)
    if endpoint_id is not None:
        statement = statement.where(WebhookDelivery.endpoint_id == endpoint_id)
    if before is not None:
        statement = statement.where(WebhookAttempt.id < before)
    statement = statement.order_by(WebhookAttempt.id.desc()).limit(limit)
    return [AttemptView(**row._asdict()) for row in await session.execute(statement)]


async def endpoints(
    session: AsyncSession, account_id: str, endpoint_id: str | None = None
) -> list[EndpointView]:
    """The account's endpoints (or the one named), with how many deliveries each has pending."""
    pending = (
        select(WebhookDelivery.endpoint_id, func.count().label("n"))
        .where(WebhookDelivery.status == DeliveryStatus.PENDING)
        .group_by(WebhookDelivery.endpoint_id)
        .subquery()
    )
    statement = (
        select(WebhookEndpoint, func.coalesce(pending.c.n, 0))
        .outerjoin(pending, pending.c.endpoint_id == WebhookEndpoint.id)
        .where(WebhookEndpoint.project_id.in_(_account_projects(account_id)))
        .order_by(WebhookEndpoint.project_id, WebhookEndpoint.url)
    )
    if endpoint_id is not None:
        statement = statement.where(WebhookEndpoint.id == endpoint_id)
    return [_endpoint_view(row, int(n)) for row, n in await session.execute(statement)]


def _endpoint_view(row: WebhookEndpoint, pending: int) -> EndpointView:
    return EndpointView(
        row.id,
        row.project_id,
        row.url,
        tuple(row.event_types or ()),
        row.enabled,
        row.disabled_reason,
        row.disabled_at,
        row.failing_since,
        pending,
        row.created_at,
    )


async def events_missing_a_delivery(
    session: AsyncSession, endpoint: EndpointView, since: Any, limit: int
) -> Sequence[tuple[str, str]]:
    """(id, type) of the endpoint's project's events since `since` with no delivery to it, oldest first."""
    delivered = select(WebhookDelivery.id).where(
        and_(WebhookDelivery.event_id == Event.id, WebhookDelivery.endpoint_id == endpoint.id)
    )
    statement = (
        select(Event.id, Event.type)
        .where(Event.project_id == endpoint.project_id, Event.occurred_at >= since, ~delivered.exists())
        .order_by(Event.id)
        .limit(limit)
    )
    return [(row.id, row.type) for row in await session.execute(statement)]
