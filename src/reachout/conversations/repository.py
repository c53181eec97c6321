"""All SQL of conversations."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from reachout.conversations.models import Conversation, ConversationStatus
from reachout.conversations.schemas import SessionKey
from reachout.db.base import table_of


def _key_columns() -> Any:
    return tuple_(
        Conversation.project_id, Conversation.channel, Conversation.agent_number, Conversation.user_number
    )


def _key_values(key: SessionKey) -> tuple[str, str, str, str]:
    return (key.project_id, key.channel, key.agent_number, key.user_number)


async def latest_agent_numbers(
    session: AsyncSession, project_id: str, users: Iterable[str]
) -> dict[str, str]:
    """For each user, the agent number of their most recent conversation in the project."""
    wanted = set(users)
    if not wanted:
        return {}
    rows = await session.execute(
        select(Conversation.user_number, Conversation.agent_number)
        .where(Conversation.project_id == project_id, Conversation.user_number.in_(wanted))
        .order_by(Conversation.opened_at)
    )
    return {user: agent for user, agent in rows}  # later rows win: the most recent


async def end_open(session: AsyncSession, keys: Sequence[SessionKey], now: datetime, reason: str) -> None:
    """End every open conversation with one of these keys."""
    by_project: dict[str, list[SessionKey]] = {}
    for key in keys:
        by_project.setdefault(key.project_id, []).append(key)
    for project_id, project_keys in by_project.items():
        # The project and user terms let the database walk uq_conversations_open_session; a row-value IN
        # alone makes SQLite scan the whole table.
        await session.execute(
            update(Conversation)
            .where(
                Conversation.status == ConversationStatus.OPEN,
                Conversation.project_id == project_id,
                Conversation.user_number.in_(sorted({k.user_number for k in project_keys})),
                _key_columns().in_([_key_values(k) for k in project_keys]),
            )
            .values(status=ConversationStatus.ENDED, end_reason=reason, ended_at=now)
            .execution_options(synchronize_session=False)
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
