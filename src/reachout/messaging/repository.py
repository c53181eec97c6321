"""All SQL of messaging."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String, bindparam, column, exists, func, insert, or_, select, table
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from reachout.db import bulk
from reachout.db.base import table_of
from reachout.delivery.channels import Channel
from reachout.delivery.status import MessageStatus
from reachout.kit.jobs import repository as jobs
from reachout.kit.jobs.leases import Lease
from reachout.messaging.models import Direction, Message
from reachout.messaging.schemas import (
    ClaimedMessage,
    DueMessage,
    MessageChange,
    MessageState,
    MessageView,
    NewInbound,
    NewOutbound,
    Snapshot,
    UseCaseSend,
)
from reachout.messaging.segments import count_segments

# The outbox is leased work: `next_attempt_at` is when a queued message is next due.
OUTBOX = jobs.JobTable(
    Message,
    Message.id,
    Message.next_attempt_at,
    Message.attempts,
    Message.lease_owner,
    Message.lease_expires_at,
)


async def insert_outbound(session: AsyncSession, messages: Sequence[NewOutbound]) -> None:
    """Queue outbound messages (one executemany, no ORM bookkeeping)."""
    await bulk.insert_rows(session, table_of(Message), [_outbound_row(m) for m in messages])


def _outbound_row(message: NewOutbound) -> dict[str, Any]:
    text, segments = message.text, count_segments(message.text.body)
    return {
        "id": message.id,
        "project_id": text.project_id,
        "conversation_id": text.conversation_id,
        "direction": Direction.OUTBOUND,
        "channel": text.channel,
        "from_number": text.from_number,
        "to_number": text.to_number,
        "body": text.body,
        "status": MessageStatus.QUEUED,
        "num_segments": segments.segments,
        "encoding": segments.encoding,
        "attempts": 0,
        "next_attempt_at": message.send_after,
        "priority": message.priority,
        "expires_at": message.expires_at,
        "content_sid": text.content_sid,
        "content_variables": text.content_variables,
        "use_case_id": message.use_case_id,
        "quiet_hours": message.quiet_hours,
        "created_at": message.created_at,
        "updated_at": message.created_at,
    }


async def insert_inbound(session: AsyncSession, message: NewInbound) -> None:
    """Store a text a person sent, as received."""
    text, segments = message.text, count_segments(message.text.body)
    await session.execute(
        insert(table_of(Message)),
        [
            {
                "id": message.id,
                "project_id": message.project_id,
                "conversation_id": message.conversation_id,
                "direction": Direction.INBOUND,
                "channel": text.channel,
                "from_number": text.from_number,
                "to_number": text.to_number,
                "body": text.body,
                "status": MessageStatus.RECEIVED,
                "carrier": text.carrier,
                "carrier_sid": text.sid,
                "num_segments": segments.segments,
                "encoding": segments.encoding,
                "attempts": 0,
                "created_at": text.received_at,
                "updated_at": text.received_at,
            }
        ],
    )


# The conversation a message is in, as far as its events' views need it; the conversations domain sits above
# this one and owns the table, so it is named here rather than imported.
_CONVERSATIONS = table("conversations", column("id", String), column("metadata", JSON))
_SNAPSHOT_COLUMNS = (
    Message.id,
    Message.project_id,
    Message.conversation_id,
    Message.use_case_id,
    Message.direction,
    Message.channel,
    Message.from_number,
    Message.to_number,
    Message.body,
    Message.status,
    Message.error_code,
    Message.error_message,
    Message.num_segments,
    Message.encoding,
    Message.carrier,
    Message.carrier_sid,
    Message.created_at,
    Message.handed_off_at,
    Message.delivered_at,
    Message.errored_at,
    Message.updated_at,
)
# Built once: every batch that records message events runs it.
_SNAPSHOTS = (
    select(*_SNAPSHOT_COLUMNS, _CONVERSATIONS.c.metadata)
    .outerjoin(_CONVERSATIONS, _CONVERSATIONS.c.id == Message.conversation_id)
    .where(Message.id.in_(bindparam("ids", expanding=True)))
)


async def snapshots(session: AsyncSession, ids: Iterable[str]) -> dict[str, Snapshot]:
    """Each message as it stands in this transaction, with its conversation's metadata, by id."""
    wanted = list(set(ids))
    if not wanted:
        return {}
    result = await session.execute(_SNAPSHOTS, {"ids": wanted})
    return {row[0]: Snapshot._make(row) for row in result}


async def due_for_dispatch(session: AsyncSession, now: datetime, limit: int) -> list[DueMessage]:
    """Lock queued outbound messages that are due, replies first, then oldest first.

    Rows another worker holds are skipped, not waited on. A lease (or a deferral) is `next_attempt_at`
    pushed forward, so a crashed worker's messages come due again by themselves, through the same index.
    """
    result = await jobs.lock_due(
        session,
        OUTBOX.due,
        now,
        limit,
        columns=(
            Message.id,
            Message.project_id,
            Message.from_number,
            Message.to_number,
            Message.use_case_id,
            Message.num_segments,
            Message.expires_at,
            Message.priority,
            Message.quiet_hours,
        ),
        where=(Message.status == MessageStatus.QUEUED, Message.direction == Direction.OUTBOUND),
        order_by=(Message.priority, Message.next_attempt_at, Message.id),  # ids are time-ordered
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


async def lease(session: AsyncSession, send_at: Mapping[str, datetime], lease: Lease) -> list[ClaimedMessage]:
    """Lease locked messages, each to be sent at its `send_at`."""
    result = await jobs.lease(
        session,
        OUTBOX,
        send_at,
        lease,
        returning=(
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
            Message.conversation_id,
        ),
    )
    claimed = [
        ClaimedMessage(
            id=row.id,
            project_id=row.project_id,
            channel=Channel(row.channel),
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
            conversation_id=row.conversation_id,
        )
        for row in result
    ]
    return sorted(claimed, key=lambda m: (m.send_at, m.id))  # RETURNING has no order


async def lock_many(session: AsyncSession, *, sids: Iterable[str], ids: Iterable[str]) -> list[MessageState]:
    """The delivery state of messages matched by carrier sid or by id, locked until the transaction ends."""
    sid_set, id_set = set(sids), set(ids)
    if not sid_set and not id_set:
        return []
    result = await session.execute(_LOCK_MANY, {"sids": list(sid_set), "ids": list(id_set)})
    # Positional, in the fields' order: a status batch builds hundreds of these inside the write lock.
    return [
        MessageState(id_, project_id, to_number, MessageStatus(status), *rest)
        for id_, project_id, to_number, status, *rest in result
    ]


_STATE_COLUMNS = tuple(getattr(Message, name) for name in MessageState._fields)
# Built once, its lists bound whole: a status batch names hundreds of sids and ids, which `in_` of a list
# would coerce one by one each time.
_LOCK_MANY = (
    select(*_STATE_COLUMNS)
    .where(
        or_(
            Message.carrier_sid.in_(bindparam("sids", expanding=True)),
            Message.id.in_(bindparam("ids", expanding=True)),
        )
    )
    .order_by(Message.id)  # one lock order for every worker, so two batches cannot deadlock
    .with_for_update()
)


async def apply_changes(session: AsyncSession, changes: Sequence[MessageChange]) -> None:
    """Write what reports and send results changed, one executemany per shape of change."""
    await bulk.update_rows(session, table_of(Message), [_columns(change) for change in changes])


_CHANGED = (
    "updated_at",
    "status",
    "carrier",
    "carrier_sid",
    "num_segments",
    "from_number",
    "handed_off_at",
    "delivered_at",
    "errored_at",
    "error_code",
    "error_message",
    "next_attempt_at",
)


def _columns(change: MessageChange) -> dict[str, Any]:
    columns: dict[str, Any] = {"id": change.id}
    columns.update({name: value for name in _CHANGED if (value := getattr(change, name)) is not None})
    if change.errored_at is not None:
        columns["error_code"] = change.error_code  # a failure without a code clears none: there was none
    if change.settled or change.next_attempt_at is not None:
        columns.update(jobs.unleased(OUTBOX))
        columns.setdefault("next_attempt_at", None)
    return columns


async def held(session: AsyncSession, ids: Iterable[str], token: str) -> set[str]:
    """Which of these messages `token`'s lease still holds, locked (see `kit.jobs.repository.held`)."""
    return await jobs.held(session, OUTBOX, ids, token)


async def defer(session: AsyncSession, until: Mapping[str, datetime]) -> None:
    """Make queued messages due later (their turn comes then), with no lease on them."""
    await apply_changes(session, [MessageChange(id=i, next_attempt_at=at) for i, at in until.items()])


async def hold(session: AsyncSession, held_until: Sequence[tuple[str, datetime, datetime | None]]) -> None:
    """Hold queued messages until an instant, each with its validity moved to (id, until, expires_at)."""
    if held_until:
        await bulk.update_rows(
            session,
            table_of(Message),
            [{"id": i, "next_attempt_at": at, "expires_at": expires} for i, at, expires in held_until],
        )


async def set_senders(session: AsyncSession, senders: Mapping[str, str]) -> None:
    """Record the pool sender chosen for each message."""
    if senders:
        await bulk.update_rows(
            session, table_of(Message), [{"id": i, "from_number": s} for i, s in senders.items()]
        )


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


# A use-case message the carrier took: the person may have it, and may be answering it.
_REACHED = (MessageStatus.SENDING, MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ)


async def last_use_case_send(
    session: AsyncSession, project_id: str, sender: str, recipient: str
) -> UseCaseSend | None:
    """The use-case message last handed off from `sender` to `recipient`, locked until the transaction ends
    (so two replies racing to answer it take turns)."""
    row = (
        await session.execute(
            select(Message.id, Message.use_case_id, Message.conversation_id, Message.handed_off_at)
            .where(
                Message.to_number == recipient,
                Message.from_number == sender,
                Message.use_case_id.is_not(None),  # the partial index's own condition, so it serves this
                Message.handed_off_at.is_not(None),
                Message.project_id == project_id,
                Message.direction == Direction.OUTBOUND,
                Message.status.in_(_REACHED),
            )
            .order_by(Message.handed_off_at.desc(), Message.id.desc())
            .limit(1)
            .with_for_update()
        )
    ).first()
    if row is None or row.use_case_id is None or row.handed_off_at is None:
        return None
    return UseCaseSend(row.id, row.use_case_id, row.conversation_id, row.handed_off_at)


async def attach(session: AsyncSession, message_id: str, conversation_id: str) -> None:
    """Put a message into a conversation."""
    rows = [{"id": message_id, "conversation_id": conversation_id}]
    await bulk.update_rows(session, table_of(Message), rows)


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


async def unanswered_openers(session: AsyncSession, conversation_ids: Iterable[str]) -> dict[str, str]:
    """The first outbound message of each of these conversations to which the person has sent no text."""
    wanted = sorted(set(conversation_ids))
    if not wanted:
        return {}
    reply = aliased(Message)
    rows = await session.execute(
        select(Message.conversation_id, Message.id)
        .where(
            Message.conversation_id.in_(wanted),
            Message.direction == Direction.OUTBOUND,
            ~exists().where(
                reply.conversation_id == Message.conversation_id, reply.direction == Direction.INBOUND
            ),
        )
        .order_by(Message.conversation_id, Message.created_at, Message.id)
    )
    first: dict[str, str] = {}
    for conversation_id, message_id in rows:
        if conversation_id is not None:  # the IN above leaves none; said for the type checker
            first.setdefault(conversation_id, message_id)
    return first


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
