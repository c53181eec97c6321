"""Conversation use cases: open sessions for outbound greetings, and find the session a reply joins."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from reachout.conversations import repository
from reachout.conversations.models import ConversationStatus
from reachout.conversations.schemas import Opening, SessionKey

SUPERSEDED = "superseded"


async def last_agent_numbers(session: AsyncSession, project_id: str, users: Iterable[str]) -> dict[str, str]:
    """The agent number each user last talked to in this project."""
    return await repository.latest_agent_numbers(session, project_id, users)


async def open_sessions(session: AsyncSession, openings: Sequence[Opening], now: datetime) -> None:
    """Open new conversations; each ends any open one with its key (a new greeting starts a new session)."""
    if not openings:
        return
    await repository.end_open(session, list({o.key for o in openings}), now, SUPERSEDED)
    latest_for_key = {o.key: o.id for o in openings}  # within one batch, the last greeting wins too
    await repository.insert_many(
        session,
        [
            {
                "id": o.id,
                "project_id": o.key.project_id,
                "channel": o.key.channel,
                "agent_number": o.key.agent_number,
                "user_number": o.key.user_number,
                "status": ConversationStatus.OPEN
                if latest_for_key[o.key] == o.id
                else ConversationStatus.ENDED,
                "end_reason": None if latest_for_key[o.key] == o.id else SUPERSEDED,
                "metadata": dict(o.metadata),
                "opened_at": now,
                "last_activity_at": now,
                "ended_at": None if latest_for_key[o.key] == o.id else now,
            }
            for o in openings
        ],
    )


async def join_open(session: AsyncSession, key: SessionKey, now: datetime) -> str | None:
    """The open session a reply belongs to, marked active now; None when there is none."""
    conversation_id = await repository.find_open(session, key)
    if conversation_id is not None:
        await repository.touch(session, conversation_id, now)
    return conversation_id
