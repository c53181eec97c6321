"""All SQL of conversations."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from reachout.conversations.models import Conversation, ConversationStatus
from reachout.conversations.schemas import SessionKey


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
    if not keys:
        return
    await session.execute(
        update(Conversation)
        .where(
            Conversation.status == ConversationStatus.OPEN,
            _key_columns().in_([_key_values(k) for k in keys]),
        )
        .values(status=ConversationStatus.ENDED, end_reason=reason, ended_at=now)
        .execution_options(synchronize_session=False)
    )


async def insert_many(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await session.execute(insert(Conversation), list(rows))


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
