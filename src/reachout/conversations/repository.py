"""All SQL of conversations."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, delete, func, insert, or_, select, tuple_
from sqlalchemy import update as sa_update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from reachout.conversations.listing import (
    ConversationQuery,
    ConversationSummary,
    Filter,
    FilterField,
    Operator,
    SortField,
)
from reachout.conversations.models import (
    Conversation,
    ConversationEvent,
    ConversationJob,
    ConversationStatus,
    JobKind,
)
from reachout.conversations.schemas import LeasedJob, SessionKey
from reachout.db.base import table_of
from reachout.db.upsert import insert_for
from reachout.messaging.models import Message
from reachout.tenancy.models import Project


def _key_columns() -> Any:
    return tuple_(
        Conversation.project_id, Conversation.channel, Conversation.agent_number, Conversation.user_number
    )


def _key_values(key: SessionKey) -> tuple[str, str, str, str]:
    return (key.project_id, key.channel, key.agent_number, key.user_number)


async def open_or_latest(
    session: AsyncSession, project_id: str, users: Iterable[str]
) -> list[tuple[str, str, str, str, str]]:
    """(id, user, agent, channel, status) of each user's open sessions and of their most recent one.

    Both come from the (project, user, opened_at) index, however long a user's history is.
    """
    wanted = sorted(set(users))
    if not wanted:
        return []
    latest = aliased(Conversation)
    most_recent = (
        select(func.max(latest.opened_at))
        .where(latest.project_id == Conversation.project_id, latest.user_number == Conversation.user_number)
        .scalar_subquery()
    )
    rows = await session.execute(
        select(
            Conversation.id,
            Conversation.user_number,
            Conversation.agent_number,
            Conversation.channel,
            Conversation.status,
        )
        .where(
            Conversation.project_id == project_id,
            Conversation.user_number.in_(wanted),
            or_(Conversation.status == ConversationStatus.OPEN, Conversation.opened_at == most_recent),
        )
        .order_by(Conversation.opened_at, Conversation.id)
    )
    return [tuple(row) for row in rows]  # type: ignore[misc]


async def end_many(session: AsyncSession, ids: Sequence[str], now: datetime, reason: str) -> None:
    """End these conversations."""
    if ids:
        await session.execute(
            sa_update(table_of(Conversation))
            .where(table_of(Conversation).c.id.in_(ids))
            .values(status=ConversationStatus.ENDED, end_reason=reason, ended_at=now)
        )


async def insert_many(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Insert conversations given as rows keyed by column name (Core executemany, no ORM bookkeeping)."""
    if rows:
        await session.execute(insert(table_of(Conversation)), list(rows))


async def get(session: AsyncSession, conversation_id: str, *, lock: bool = False) -> Conversation | None:
    """One conversation; with `lock`, held until the transaction ends."""
    statement = select(Conversation).where(Conversation.id == conversation_id)
    if lock:
        statement = statement.with_for_update()
    return (await session.execute(statement)).scalar_one_or_none()


async def latest_for_key(session: AsyncSession, key: SessionKey) -> Conversation | None:
    """The most recent conversation with this key, open or not."""
    result = await session.execute(
        select(Conversation)
        .where(_key_columns() == _key_values(key))
        .order_by(Conversation.opened_at.desc(), Conversation.id.desc())
        .limit(1)
    )
    return result.scalar_one_or_none()


async def update(session: AsyncSession, conversation_id: str, values: dict[str, Any]) -> None:
    """Change columns of one conversation."""
    await session.execute(
        sa_update(Conversation)
        .where(Conversation.id == conversation_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


async def add_event(
    session: AsyncSession, conversation_id: str, kind: str, details: dict[str, Any], at: datetime
) -> None:
    """Record something that happened to a conversation."""
    await session.execute(
        insert(table_of(ConversationEvent)),
        [{"conversation_id": conversation_id, "kind": kind, "details": details, "at": at}],
    )


# --- jobs -----------------------------------------------------------------------------------------------


async def schedule(
    session: AsyncSession, conversation_id: str, kind: JobKind, due_at: datetime, now: datetime
) -> None:
    """Make a conversation's job of this kind fire at `due_at`: created, or moved with a fresh count."""
    statement = (
        insert_for(session, table_of(ConversationJob))
        .values(conversation_id=conversation_id, kind=kind, due_at=due_at, attempts=0, created_at=now)
        .on_conflict_do_update(
            index_elements=["conversation_id", "kind"], set_={"due_at": due_at, "attempts": 0}
        )
    )
    await session.execute(statement)


async def cancel(session: AsyncSession, conversation_id: str, kinds: Sequence[JobKind]) -> None:
    """Drop a conversation's pending jobs of these kinds."""
    await session.execute(
        delete(ConversationJob).where(
            ConversationJob.conversation_id == conversation_id, ConversationJob.kind.in_(list(kinds))
        )
    )


async def claim_jobs(
    session: AsyncSession, now: datetime, lease_until: datetime, limit: int
) -> list[LeasedJob]:
    """Lease due jobs: their `due_at` moves to `lease_until`, so no other worker takes them meanwhile."""
    due = (
        select(ConversationJob.id)
        .where(ConversationJob.due_at <= now)
        .order_by(ConversationJob.due_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list((await session.execute(due)).scalars())
    if not ids:
        return []
    rows = await session.execute(
        sa_update(ConversationJob)
        .where(ConversationJob.id.in_(ids))
        .values(due_at=lease_until, attempts=ConversationJob.attempts + 1)
        .returning(
            ConversationJob.id,
            ConversationJob.conversation_id,
            ConversationJob.kind,
            ConversationJob.attempts,
        )
        .execution_options(synchronize_session=False)
    )
    return [
        LeasedJob(id, conversation_id, JobKind(kind), attempts)
        for id, conversation_id, kind, attempts in rows
    ]


async def still_leased(session: AsyncSession, job: LeasedJob) -> bool:
    """Lock the job if it is still this lease's (not finished, moved or re-leased by another worker)."""
    result = await session.execute(
        select(ConversationJob.id)
        .where(ConversationJob.id == job.id, ConversationJob.attempts == job.attempts)
        .with_for_update()
    )
    return result.scalar_one_or_none() is not None


async def retry_job(session: AsyncSession, job_id: int, due_at: datetime) -> None:
    await session.execute(
        sa_update(ConversationJob)
        .where(ConversationJob.id == job_id)
        .values(due_at=due_at)
        .execution_options(synchronize_session=False)
    )


async def finish_job(session: AsyncSession, job_id: int) -> None:
    await session.execute(delete(ConversationJob).where(ConversationJob.id == job_id))


# --- reading --------------------------------------------------------------------------------------------


def _message_stats() -> Any:
    """Per conversation: how many messages, and when the last one was created."""
    return (
        select(
            Message.conversation_id.label("conversation_id"),
            func.count().label("message_count"),
            func.max(Message.created_at).label("last_message_at"),
        )
        .where(Message.conversation_id.is_not(None))
        .group_by(Message.conversation_id)
        .subquery()
    )


async def page_for_account(
    session: AsyncSession, account_id: str, query: ConversationQuery
) -> tuple[list[ConversationSummary], int]:
    """One page of an account's conversations and how many match in all."""
    stats = _message_stats()
    # BIGINT, as COUNT is: the filter's value is bound as a 64-bit integer on PostgreSQL, not a 32-bit one.
    message_count = func.coalesce(stats.c.message_count, 0, type_=BigInteger)
    columns: dict[Any, Any] = {
        SortField.CREATED_AT: Conversation.opened_at,
        SortField.UPDATED_AT: Conversation.last_activity_at,
        SortField.USER_NUMBER: Conversation.user_number,
        SortField.AGENT_NUMBER: Conversation.agent_number,
        SortField.IS_ACTIVE: Conversation.status == ConversationStatus.OPEN,
        SortField.MESSAGE_COUNT: message_count,
        FilterField.CURRENT_NODE_ID: Conversation.agent_state["node"].as_string(),
    }
    conditions = [Project.account_id == account_id, *(_condition(columns[f.field], f) for f in query.filters)]
    base = (
        select(Conversation, message_count.label("message_count"), stats.c.last_message_at)
        .join(Project, Project.id == Conversation.project_id)
        .outerjoin(stats, stats.c.conversation_id == Conversation.id)
        .where(*conditions)
    )
    total = (await session.execute(select(func.count()).select_from(base.subquery()))).scalar_one()
    if query.offset >= total:
        return [], total  # past the last page (an OFFSET beyond 64 bits could not even be bound)
    order = columns[query.sort_by]
    rows = await session.execute(
        base.order_by(order.desc() if query.descending else order.asc(), Conversation.id)
        .limit(query.page_size)
        .offset(query.offset)
    )
    found = rows.all()
    last_bodies = await _last_bodies(session, [conversation.id for conversation, _, _ in found])
    return [
        _summary(conversation, count, last_at, last_bodies.get(conversation.id))
        for conversation, count, last_at in found
    ], total


async def summary_for_account(
    session: AsyncSession, account_id: str, conversation_id: str
) -> ConversationSummary | None:
    """One of an account's conversations, or None (also when it belongs to another account)."""
    stats = _message_stats()
    row = (
        await session.execute(
            select(Conversation, func.coalesce(stats.c.message_count, 0), stats.c.last_message_at)
            .join(Project, Project.id == Conversation.project_id)
            .outerjoin(stats, stats.c.conversation_id == Conversation.id)
            .where(Project.account_id == account_id, Conversation.id == conversation_id)
        )
    ).first()
    if row is None:
        return None
    conversation, count, last_at = row
    last = await _last_bodies(session, [conversation.id])
    return _summary(conversation, count, last_at, last.get(conversation.id))


async def _last_bodies(session: AsyncSession, conversation_ids: Sequence[str]) -> dict[str, str]:
    if not conversation_ids:
        return {}
    rows = await session.execute(
        select(Message.conversation_id, Message.body)
        .where(Message.conversation_id.in_(list(conversation_ids)))
        .order_by(Message.created_at, Message.id)
    )
    # Later rows win: the most recent.
    return {conversation_id: body for conversation_id, body in rows if conversation_id is not None}


def _condition(column: Any, condition: Filter) -> Any:
    value = condition.value
    match condition.operator:
        case Operator.EQ:
            return column == value
        case Operator.CONTAINS:
            return column.contains(value, autoescape=True)
        case Operator.STARTS_WITH:
            return column.startswith(value, autoescape=True)
        case Operator.ENDS_WITH:
            return column.endswith(value, autoescape=True)
        case Operator.GT:
            return column > value
        case Operator.GTE:
            return column >= value
        case Operator.LT:
            return column < value
        case Operator.LTE:
            return column <= value


def _summary(
    conversation: Conversation, message_count: int, last_message_at: datetime | None, last_message: str | None
) -> ConversationSummary:
    agent = conversation.agent or {}
    return ConversationSummary(
        id=conversation.id,
        channel=conversation.channel,
        user_number=conversation.user_number,
        agent_number=conversation.agent_number,
        created_at=conversation.opened_at,
        updated_at=conversation.last_activity_at,
        is_active=conversation.status == ConversationStatus.OPEN,
        variables=dict(conversation.variables or {}),
        current_node_id=(conversation.agent_state or {}).get("node"),
        pathway_id=agent.get("pathway"),
        message_count=int(message_count),
        last_message=last_message,
        last_message_at=last_message_at,
        ended_at=conversation.ended_at,
        end_reason=conversation.end_reason,
    )
