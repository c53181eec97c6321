"""Reading the event log in tests."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from reachout.events.models import Event


async def recorded(
    sessions: async_sessionmaker[AsyncSession],
    *,
    types: Collection[str] = (),
    message_id: str | None = None,
    conversation_id: str | None = None,
    source: str | None = None,
) -> list[Event]:
    """The events recorded, in the order they were recorded, filtered as asked."""
    statement = select(Event).order_by(Event.id)
    if types:
        statement = statement.where(Event.type.in_(list(types)))
    if message_id is not None:
        statement = statement.where(Event.message_id == message_id)
    if conversation_id is not None:
        statement = statement.where(Event.conversation_id == conversation_id)
    if source is not None:
        statement = statement.where(Event.source == source)
    async with sessions() as session:
        return list((await session.execute(statement)).scalars())
