"""All SQL of conversations."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from reachout.conversations.models import Conversation, ConversationStatus
from reachout.conversations.schemas import SessionKey
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
            update(table_of(Conversation))
            .where(table_of(Conversation).c.id.in_(ids))
            .values(status=ConversationStatus.ENDED, end_reason=reason, ended_at=now)
        )


async def insert_many(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Insert conversations given as rows keyed by column name (Core executemany, no ORM bookkeeping)."""
    if rows:
        await session.execute(insert(table_of(Conversation)), list(rows))


async def find_open(session: AsyncSession, key: SessionKey) -> str | None:
    """The open conversation for a key, if any."""
    result = await session.execute(
        select(Conversation.id)
        .where(Conversation.status == ConversationStatus.OPEN, _key_columns() == _key_values(key))
        .order_by(Conversation.opened_at.desc())
        .limit(1)
    )
    return result.scalar_one_or_none()


async def touch(session: AsyncSession, conversation_id: str, now: datetime) -> None:
    await session.execute(
        update(Conversation)
        .where(Conversation.id == conversation_id)
        .values(last_activity_at=now)
        .execution_options(synchronize_session=False)
    )
