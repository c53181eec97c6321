"""All SQL of deliveries: claiming due ones under leases (`kit.jobs`), recording attempts, and endpoint
health (failing since when, disabled and why)."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from reachout.db import bulk
from reachout.db.base import table_of
from reachout.events.attempts import Verdict
from reachout.events.models import DeliveryStatus, Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from reachout.events.schemas import AttemptResult, LeasedDelivery
from reachout.kit.jobs import repository as jobs
from reachout.kit.jobs.leases import Lease

DELIVERIES = jobs.JobTable(
    WebhookDelivery,
    WebhookDelivery.id,
    WebhookDelivery.due_at,
    WebhookDelivery.attempts,
    WebhookDelivery.lease_owner,
    WebhookDelivery.lease_expires_at,
)
_ENABLED = select(WebhookEndpoint.id).where(WebhookEndpoint.enabled.is_(True))
_LEASED = (
    select(
        WebhookDelivery.id,
        WebhookDelivery.event_id,
        WebhookDelivery.endpoint_id,
        WebhookDelivery.attempts,
        Event.type,
        Event.occurred_at,
        Event.data,
        WebhookEndpoint.url,
        WebhookEndpoint.secrets,
    )
    .join(Event, Event.id == WebhookDelivery.event_id)
    .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
    .where(WebhookDelivery.id.in_(bindparam("ids", expanding=True)))
)


async def claim(
    session: AsyncSession, now: datetime, lease: Lease, limit: int, room: Mapping[str, int], room_left: int
) -> list[LeasedDelivery]:
    """Lease due deliveries to enabled endpoints, at most `room[endpoint]` of an endpoint's (`room_left`
    for one not in `room`), up to `limit` in all."""
    full = [endpoint for endpoint, left in room.items() if left <= 0]
    where = [WebhookDelivery.endpoint_id.in_(_ENABLED)]
    if full:
        where.append(WebhookDelivery.endpoint_id.not_in(full))
    due = await jobs.lock_due(
        session,
        WebhookDelivery.due_at,
        now,
        limit,
        columns=(WebhookDelivery.id, WebhookDelivery.endpoint_id),
        where=where,
        order_by=(WebhookDelivery.due_at, WebhookDelivery.id),
    )
    taken: dict[str, int] = {}
    chosen: list[int] = []
    for row in due:  # a slow endpoint's backlog must not take the room of every other endpoint's
        if taken.get(row.endpoint_id, 0) < room.get(row.endpoint_id, room_left):
            taken[row.endpoint_id] = taken.get(row.endpoint_id, 0) + 1
            chosen.append(row.id)
    if not chosen:
        return []
    await jobs.lease(session, DELIVERIES, chosen, lease)
    result = await session.execute(_LEASED, {"ids": chosen})
    leased = [
        LeasedDelivery(
            row.id,
            row.event_id,
            row.endpoint_id,
            row.attempts,
            row.type,
            row.occurred_at,
            row.data,
            row.url,
            tuple(row.secrets),
        )
        for row in result
    ]
    return sorted(leased, key=lambda delivery: delivery.id)


async def record(session: AsyncSession, results: Sequence[AttemptResult], token: str) -> list[AttemptResult]:
    """Record attempts whose delivery `token`'s lease still holds, and move each delivery on; returns
    those recorded."""
    held = await jobs.held(session, DELIVERIES, [r.delivery.id for r in results], token)
    kept = [r for r in results if r.delivery.id in held]
    if not kept:
        return []
    await bulk.insert_rows(
        session,
        table_of(WebhookAttempt),
        [
            {
                "delivery_id": r.delivery.id,
                "attempted_at": r.attempted_at,
                "status_code": r.status_code,
                "latency_ms": r.latency_ms,
                "error": r.error,
                "response_body": r.response_body,
            }
            for r in kept
        ],
    )
    await bulk.update_rows(session, table_of(WebhookDelivery), [_moved(r) for r in kept])
    return kept


def _moved(result: AttemptResult) -> dict[str, Any]:
    if result.verdict is Verdict.SUCCEEDED:
        status = DeliveryStatus.SUCCEEDED
    elif result.retry_at is None:
        status = DeliveryStatus.FAILED
    else:
        status = DeliveryStatus.PENDING
    return {
        "id": result.delivery.id,
        "status": status,
        "due_at": result.retry_at,
        "lease_owner": None,
        "lease_expires_at": None,
        "updated_at": result.attempted_at,
    }


async def lock_endpoints(session: AsyncSession, ids: Iterable[str]) -> dict[str, WebhookEndpoint]:
    """These endpoints, locked (in id order) until the transaction ends."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    result = await session.execute(
        select(WebhookEndpoint)
        .where(WebhookEndpoint.id.in_(wanted))
        .order_by(WebhookEndpoint.id)
        .with_for_update()
    )
    return {row.id: row for row in result.scalars()}


async def set_endpoint(session: AsyncSession, endpoint_id: str, values: Mapping[str, Any]) -> None:
    """Change columns of one endpoint."""
    await session.execute(
        update(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


async def requeue(
    session: AsyncSession,
    endpoint_id: str,
    statuses: Collection[DeliveryStatus],
    since: datetime,
    now: datetime,
) -> int:
    """Make an endpoint's deliveries in these statuses, created since `since`, due now with a fresh count;
    returns how many."""
    result = await session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.endpoint_id == endpoint_id,
            WebhookDelivery.status.in_([s.value for s in statuses]),
            WebhookDelivery.created_at >= since,
        )
        .values(
            status=DeliveryStatus.PENDING,
            due_at=now,
            attempts=0,
            lease_owner=None,
            lease_expires_at=None,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
