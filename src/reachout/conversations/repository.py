"""All SQL of conversations."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, tuple_
from sqlalchemy import update as sa_update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from reachout.conversations.models import Conversation, ConversationJob, ConversationStatus, JobKind
from reachout.conversations.schemas import LeasedJob, SessionKey
from reachout.db.base import table_of


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


# --- jobs -----------------------------------------------------------------------------------------------


async def schedule(
    session: AsyncSession, conversation_id: str, kind: JobKind, due_at: datetime, now: datetime
) -> None:
    """Make a conversation's job of this kind fire at `due_at`: created, or moved with a fresh count."""
    dialect = session.get_bind().dialect.name
    insert_statement = (postgresql_insert if dialect == "postgresql" else sqlite_insert)(
        table_of(ConversationJob)
    )
    statement = insert_statement.values(
        conversation_id=conversation_id, kind=kind, due_at=due_at, attempts=0, created_at=now
    ).on_conflict_do_update(
        index_elements=["conversation_id", "kind"], set_={"due_at": due_at, "attempts": 0}
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
