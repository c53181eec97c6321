"""The outbox as `/metrics` sees it: bounded queries the dispatch index serves, read at scrape time."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from reachout.delivery.status import MessageStatus
from reachout.messaging.models import Message, SendPriority
from reachout.messaging.schemas import OutboxGauges


async def outbox_gauges(session: AsyncSession, now: datetime, cap: int) -> OutboxGauges:
    """Queued messages (up to `cap`), those of them due, and the earliest due time of each priority."""
    # Only outbound messages are ever queued, so `status` alone picks them and the dispatch index (status,
    # priority, next_attempt_at, id) answers every query here without reading a row.
    queued = (
        select(Message.next_attempt_at.label("due"))
        .where(Message.status == MessageStatus.QUEUED)
        .limit(cap)
        .subquery()
    )
    counts = (
        await session.execute(
            select(
                func.count(), func.coalesce(func.sum(case((queued.c.due <= now, 1), else_=0)), 0)
            ).select_from(queued)
        )
    ).one()
    oldest: dict[SendPriority, datetime] = {}
    for priority in SendPriority:
        earliest = await session.scalar(
            select(Message.next_attempt_at)
            .where(
                Message.status == MessageStatus.QUEUED,
                Message.priority == priority,
                Message.next_attempt_at <= now,
            )
            .order_by(Message.next_attempt_at)
            .limit(1)
        )
        if earliest is not None:
            oldest[priority] = earliest
    return OutboxGauges(queued=int(counts[0]), due=int(counts[1]), oldest_due=oldest)
