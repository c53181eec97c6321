"""Conversation use cases: open sessions for outbound greetings, and find the session a reply joins."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from reachout.conversations import repository
from reachout.conversations.models import ConversationStatus
from reachout.conversations.schemas import Opening, SessionKey, UsersSessions

SUPERSEDED = "superseded"


async def users_sessions(session: AsyncSession, project_id: str, users: Iterable[str]) -> UsersSessions:
    """Each user's most recent agent number, and the open sessions a greeting to them would supersede."""
    latest_agent: dict[str, str] = {}
    open_ids: dict[SessionKey, str] = {}
    for conversation_id, user, agent, channel, status in await repository.open_or_latest(
        session, project_id, users
    ):
        latest_agent[user] = agent  # rows come oldest first, so the most recent wins
        if status == ConversationStatus.OPEN:
            open_ids[SessionKey(project_id, channel, agent, user)] = conversation_id
    return UsersSessions(latest_agent, open_ids)


async def open_sessions(
    session: AsyncSession, openings: Sequence[Opening], now: datetime, known: Mapping[str, UsersSessions]
) -> None:
    """Open new conversations; each ends the open one with its key (a new greeting starts a new session).

    `known` holds `users_sessions` for every project and user of the openings, read in this transaction.
    """
    if not openings:
        return
    superseded = {
        known[o.key.project_id].open_ids[o.key] for o in openings if o.key in known[o.key.project_id].open_ids
    }
    await repository.end_many(session, sorted(superseded), now, SUPERSEDED)
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
                "agent": dict(o.agent),
                "opened_at": now,
                "last_activity_at": now,
                "ended_at": None if latest_for_key[o.key] == o.id else now,
            }
            for o in openings
        ],
    )
