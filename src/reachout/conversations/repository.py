"""All SQL of conversation sessions: opening, finding, changing and ending them, and their views.

Jobs are in `jobs_repository`, the Bland listing's queries in `listing_repository`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, or_, select, tuple_
from sqlalchemy import update as sa_update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from reachout.agents.base import EndReason
from reachout.conversations.models import Conversation, ConversationStatus
from reachout.conversations.schemas import ConversationSnapshot, NewConversation, SessionKey
from reachout.db import bulk
from reachout.db.base import table_of


def _key_columns() -> Any:
    return tuple_(
        Conversation.project_id, Conversation.channel, Conversation.agent_number, Conversation.user_number
    )


def _key_values(key: SessionKey) -> tuple[str, str, str, str]:
    return (key.project_id, key.channel, key.agent_number, key.user_number)


# Built once: each accept batch runs it, and building it (an alias, a correlated subquery) cost more than
# running it. `project_id` and the expanding `users` are bound per call.
_LATEST = aliased(Conversation)
_OPEN_OR_LATEST = (
    select(
        Conversation.id,
        Conversation.user_number,
        Conversation.agent_number,
        Conversation.channel,
        Conversation.status,
    )
    .where(
        Conversation.project_id == bindparam("project_id"),
        Conversation.user_number.in_(bindparam("users", expanding=True)),
        or_(
            Conversation.status == ConversationStatus.OPEN,
            Conversation.opened_at
            == select(func.max(_LATEST.opened_at))
            .where(
                _LATEST.project_id == Conversation.project_id, _LATEST.user_number == Conversation.user_number
            )
            .scalar_subquery(),
        ),
    )
    .order_by(Conversation.opened_at, Conversation.id)
)


async def open_or_latest(
    session: AsyncSession, project_id: str, users: Iterable[str]
) -> list[tuple[str, str, str, str, str]]:
    """(id, user, agent, channel, status) of each user's open sessions and of their most recent one.

    Both come from the (project, user, opened_at) index, however long a user's history is.
    """
    wanted = sorted(set(users))
    if not wanted:
        return []
    rows = await session.execute(_OPEN_OR_LATEST, {"project_id": project_id, "users": wanted})
    return [tuple(row) for row in rows]  # type: ignore[misc]


async def end_many(session: AsyncSession, ids: Sequence[str], now: datetime, reason: EndReason) -> None:
    """End these conversations."""
    if ids:
        await session.execute(_END_MANY, {"ids": list(ids), "reason": reason, "now": now})


_CONVERSATIONS = table_of(Conversation)
# Built once: every greeting that supersedes a session runs it.
_END_MANY = (
    sa_update(_CONVERSATIONS)
    .where(_CONVERSATIONS.c.id.in_(bindparam("ids", expanding=True)))
    .values(status=ConversationStatus.ENDED, end_reason=bindparam("reason"), ended_at=bindparam("now"))
)


async def insert_many(session: AsyncSession, conversations: Sequence[NewConversation]) -> None:
    """Open conversations (one executemany, no ORM bookkeeping); one born superseded is stored ended."""
    await bulk.insert_rows(session, table_of(Conversation), [_row(c) for c in conversations])


def _row(conversation: NewConversation) -> dict[str, Any]:
    key, at, ended = conversation.key, conversation.opened_at, conversation.ended_as
    return {
        "id": conversation.id,
        "project_id": key.project_id,
        "channel": key.channel,
        "agent_number": key.agent_number,
        "user_number": key.user_number,
        "status": ConversationStatus.OPEN if ended is None else ConversationStatus.ENDED,
        "end_reason": ended,
        "metadata": dict(conversation.metadata),
        "agent": dict(conversation.agent),
        "answered_by": conversation.answered_by,
        "use_case_id": conversation.use_case_id,
        "variables": {},
        "agent_state": {},
        "opened_at": at,
        "last_activity_at": at,
        "engaged_at": None,
        "answered_through": None,
        "ended_at": None if ended is None else at,
    }


async def get(session: AsyncSession, conversation_id: str, *, lock: bool = False) -> Conversation | None:
    """One conversation; with `lock`, held until the transaction ends."""
    statement = select(Conversation).where(Conversation.id == conversation_id)
    if lock:
        statement = statement.with_for_update()
    return (await session.execute(statement)).scalar_one_or_none()


async def lock_open(session: AsyncSession, ids: Iterable[str]) -> list[str]:
    """Which of these conversations are open, locked (in id order) until the transaction ends."""
    wanted = sorted(set(ids))
    if not wanted:
        return []
    result = await session.execute(
        select(Conversation.id)
        .where(Conversation.id.in_(wanted), Conversation.status == ConversationStatus.OPEN)
        .order_by(Conversation.id)
        .with_for_update()
    )
    return list(result.scalars())


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


_SNAPSHOT_COLUMNS = (
    Conversation.id,
    Conversation.project_id,
    Conversation.channel,
    Conversation.agent_number,
    Conversation.user_number,
    Conversation.status,
    Conversation.end_reason,
    Conversation.answered_by,
    Conversation.use_case_id,
    Conversation.metadata_,
    Conversation.variables,
    Conversation.opened_at,
    Conversation.last_activity_at,
    Conversation.ended_at,
)
# Built once: every accept batch runs it.
_SNAPSHOTS = select(*_SNAPSHOT_COLUMNS).where(Conversation.id.in_(bindparam("ids", expanding=True)))


async def snapshots(session: AsyncSession, ids: Iterable[str]) -> dict[str, ConversationSnapshot]:
    """Each conversation as it stands in this transaction, by id."""
    wanted = list(set(ids))
    if not wanted:
        return {}
    result = await session.execute(_SNAPSHOTS, {"ids": wanted})
    return {row[0]: ConversationSnapshot._make(row) for row in result}
