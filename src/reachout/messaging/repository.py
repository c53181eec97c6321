"""All SQL of messaging."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from reachout.db.base import table_of
from reachout.messaging.models import Direction, Message, MessageStatusEvent
from reachout.messaging.schemas import ClaimedMessage, DueMessage, MessageState, MessageView
from reachout.messaging.status import MessageStatus


async def insert_messages(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Insert messages given as rows keyed by column name (Core executemany, no ORM bookkeeping)."""
    if rows:
        await session.execute(insert(table_of(Message)), list(rows))


async def insert_events(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Insert status events given as rows keyed by column name."""
    if rows:
        await session.execute(insert(table_of(MessageStatusEvent)), list(rows))


async def due_for_dispatch(session: AsyncSession, now: datetime, limit: int) -> list[DueMessage]:
    """Lock queued outbound messages that are due, replies first, then oldest first.

    Rows another worker holds are skipped, not waited on. A lease (or a deferral) is `next_attempt_at`
    pushed forward, so a crashed worker's messages come due again by themselves, through the same index.
    """
    result = await session.execute(
        select(
            Message.id,
            Message.project_id,
            Message.from_number,
            Message.to_number,
            Message.use_case_id,
            Message.num_segments,
            Message.expires_at,
            Message.priority,
            Message.quiet_hours,
        )
        .where(
            Message.status == MessageStatus.QUEUED,
            Message.next_attempt_at <= now,
            Message.direction == Direction.OUTBOUND,
        )
        .order_by(Message.priority, Message.next_attempt_at, Message.id)  # ids are time-ordered
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [
        DueMessage(
            id=row.id,
            project_id=row.project_id,
            from_number=row.from_number,
            to_number=row.to_number,
            use_case_id=row.use_case_id,
            num_segments=row.num_segments,
            expires_at=row.expires_at,
            priority=row.priority,
            quiet_hours=row.quiet_hours,
        )
        for row in result
    ]


async def lease(
    session: AsyncSession, send_at: Mapping[str, datetime], owner: str, lease_until: datetime
) -> list[ClaimedMessage]:
    """Lease locked messages to `owner` until `lease_until`, each to be sent at its `send_at`."""
    if not send_at:
        return []
    result = await session.execute(
        update(Message)
        .where(Message.id.in_(list(send_at)))
        .values(
            lease_owner=owner,
            next_attempt_at=lease_until,
            lease_expires_at=lease_until,
            attempts=Message.attempts + 1,
        )
        .returning(
            Message.id,
            Message.project_id,
            Message.channel,
            Message.from_number,
            Message.to_number,
            Message.body,
            Message.num_segments,
            Message.attempts,
            Message.created_at,
            Message.content_sid,
            Message.content_variables,
            Message.use_case_id,
        )
        .execution_options(synchronize_session=False)
    )
    claimed = [
        ClaimedMessage(
            id=row.id,
            project_id=row.project_id,
            channel=row.channel,
            from_number=row.from_number or "",
            to_number=row.to_number,
            body=row.body,
            num_segments=row.num_segments,
            attempts=row.attempts,
            created_at=row.created_at,
            send_at=send_at[row.id],
            content_sid=row.content_sid,
            content_variables=row.content_variables,
            use_case_id=row.use_case_id,
        )
        for row in result
    ]
    return sorted(claimed, key=lambda m: (m.send_at, m.id))  # RETURNING has no order


async def lock_many(session: AsyncSession, *, sids: Iterable[str], ids: Iterable[str]) -> list[MessageState]:
    """The delivery state of messages matched by carrier sid or by id, locked until the transaction ends."""
    sid_set, id_set = set(sids), set(ids)
    if not sid_set and not id_set:
        return []
    result = await session.execute(
        select(
            Message.id,
            Message.project_id,
            Message.to_number,
            Message.status,
            Message.carrier_sid,
            Message.from_number,
            Message.num_segments,
            Message.handed_off_at,
            Message.delivered_at,
        )
        .where(or_(Message.carrier_sid.in_(sid_set), Message.id.in_(id_set)))
        .order_by(Message.id)  # one lock order for every worker, so two batches cannot deadlock
        .with_for_update()
    )
    return [
        MessageState(
            id=row.id,
            project_id=row.project_id,
            to_number=row.to_number,
            status=MessageStatus(row.status),
            carrier_sid=row.carrier_sid,
            from_number=row.from_number,
            num_segments=row.num_segments,
            handed_off_at=row.handed_off_at,
            delivered_at=row.delivered_at,
        )
        for row in result
    ]


async def update_many(session: AsyncSession, changes: Sequence[dict[str, Any]]) -> None:
    """Update messages by id: each dict holds `id` and the columns to set (run as executemany batches)."""
    if changes:
        await session.execute(update(Message), list(changes))


async def backlog(session: AsyncSession, senders: Iterable[str]) -> dict[str, int]:
    """How many outbound messages wait to be sent from each of these senders (those with none left out)."""
    wanted = set(senders)
    if not wanted:
        return {}
    rows = await session.execute(
        select(Message.from_number, func.count())
        .where(
            Message.status == MessageStatus.QUEUED,
            Message.direction == Direction.OUTBOUND,
            Message.from_number.in_(wanted),
        )
        .group_by(Message.from_number)
    )
    return {sender: count for sender, count in rows if sender is not None}


async def sids_held_by_others(session: AsyncSession, sids: Iterable[str], message_id: str) -> set[str]:
    """Which of these carrier sids are already recorded for a message other than `message_id`."""
    wanted = set(sids)
    if not wanted:
        return set()
    result = await session.execute(
        select(Message.carrier_sid).where(Message.carrier_sid.in_(wanted), Message.id != message_id)
    )
    return {sid for sid in result.scalars() if sid is not None}


async def inbound_exists(session: AsyncSession, sid: str) -> bool:
    result = await session.execute(select(Message.id).where(Message.carrier_sid == sid))
    return result.first() is not None


async def get_view(session: AsyncSession, message_id: str) -> MessageView | None:
    row = await session.get(Message, message_id)
    return None if row is None else to_view(row)


async def conversation_messages(session: AsyncSession, conversation_id: str) -> list[MessageView]:
    """A conversation's messages, oldest first."""
    rows = await session.execute(
        select(Message)
        .where(Message.conversation_id == conversation_id)
        .order_by(Message.created_at, Message.id)
    )
    return [to_view(row) for row in rows.scalars()]


async def count_by_status(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(select(Message.status, func.count()).group_by(Message.status))
    return {status: count for status, count in rows}


def to_view(row: Message) -> MessageView:
    return MessageView(
        id=row.id,
        project_id=row.project_id,
        conversation_id=row.conversation_id,
        use_case_id=row.use_case_id,
        direction=row.direction,
        channel=row.channel,
        from_number=row.from_number,
        to_number=row.to_number,
        body=row.body,
        status=row.status,
        carrier_sid=row.carrier_sid,
        num_segments=row.num_segments,
        error_code=row.error_code,
        handed_off_at=row.handed_off_at,
        delivered_at=row.delivered_at,
        errored_at=row.errored_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
