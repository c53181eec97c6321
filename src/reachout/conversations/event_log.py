"""Conversations' events, recorded through the one event log with a view of each conversation as it stands."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from reachout.conversations import repository
from reachout.conversations.schemas import ConversationChange, ConversationSnapshot
from reachout.events import service as events
from reachout.events.schemas import NewEvent
from reachout.kit.clock import iso_utc, iso_utc_or_none


async def record(session: AsyncSession, changes: Sequence[ConversationChange], now: datetime) -> None:
    """Record what happened to these conversations, once their rows say so (in this transaction)."""
    if not changes:
        return
    views = await repository.snapshots(session, [change.conversation_id for change in changes])
    await events.record(
        session,
        [
            NewEvent(
                change.type,
                change.occurred_at,
                view.project_id,
                conversation_data(view),
                conversation_id=view.id,
                details=change.details,
            )
            for change in changes
            if (view := views.get(change.conversation_id)) is not None
        ],
        now,
    )


def conversation_data(view: ConversationSnapshot) -> dict[str, Any]:
    """A conversation as its events' payloads show it."""
    return {
        "id": view.id,
        "project_id": view.project_id,
        "channel": view.channel,
        "agent_number": view.agent_number,
        "user_number": view.user_number,
        "status": view.status,
        "end_reason": view.end_reason,
        "answered_by": view.answered_by,
        "use_case_id": view.use_case_id,
        "metadata": dict(view.metadata or {}),
        "variables": dict(view.variables or {}),
        "opened_at": iso_utc(view.opened_at),
        "last_activity_at": iso_utc(view.last_activity_at),
        "ended_at": iso_utc_or_none(view.ended_at),
    }
