"""Messaging use cases: queue texts to send, take in texts people sent, read messages.

Nothing here commits: callers (the request edge, the group committer, the worker loop) own transactions,
so a status write and whatever it schedules land together or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from reachout.carriers.base import InboundText
from reachout.events.types import EventType
from reachout.messaging import event_log, gauges_repository, repository
from reachout.messaging.models import SendPriority
from reachout.messaging.schemas import (
    DEFAULT_VALIDITY_SECONDS,
    ConversationText,
    MessageEvent,
    MessageView,
    NewInbound,
    NewOutbound,
    OutboxGauges,
    UseCaseSend,
    new_message_id,
)
from reachout.tenancy import service as tenancy


async def queue(session: AsyncSession, messages: Sequence[NewOutbound], now: datetime) -> None:
    """Queue outbound messages for the dispatcher (the outbox rows), each with its `queued` event."""
    await repository.insert_outbound(session, messages)
    await event_log.record(
        session, [MessageEvent(EventType.MESSAGE_QUEUED, m.id, m.created_at) for m in messages], now
    )


async def queue_texts(session: AsyncSession, texts: Sequence[ConversationText], now: datetime) -> list[str]:
    """Queue replies in open conversations (the caller has checked consent); returns their message ids.

    They are sent before any first message waiting on the same sender: someone is waiting for them.
    """
    expires_at = now + timedelta(seconds=DEFAULT_VALIDITY_SECONDS)
    messages = [
        NewOutbound(new_message_id(), text, now, SendPriority.REPLY, expires_at, created_at=now)
        for text in texts
    ]
    await queue(session, messages, now)
    return [m.id for m in messages]


async def inbound_exists(session: AsyncSession, sid: str) -> bool:
    """Whether a text with this carrier sid was already stored (a carrier retrying its webhook)."""
    return await repository.inbound_exists(session, sid)


async def store_inbound(
    session: AsyncSession, text: InboundText, project_id: str | None, conversation_id: str | None
) -> str:
    """Store a text a person sent, with its `received` event; returns its message id."""
    message_id = new_message_id()
    await repository.insert_inbound(session, NewInbound(message_id, text, project_id, conversation_id))
    received = MessageEvent(EventType.MESSAGE_RECEIVED, message_id, text.received_at, text.carrier)
    await event_log.record(session, [received], text.received_at)
    return message_id


async def last_use_case_send(
    session: AsyncSession, project_id: str, sender: str, recipient: str
) -> UseCaseSend | None:
    """The use-case message the person last got from `sender`, if any: what a text from them may answer."""
    return await repository.last_use_case_send(session, project_id, sender, recipient)


async def attach(session: AsyncSession, message_id: str, conversation_id: str) -> None:
    """Put a message sent outside any conversation into one (a use case's, once the person answers it)."""
    await repository.attach(session, message_id, conversation_id)


async def conversation_messages(session: AsyncSession, conversation_id: str) -> list[MessageView]:
    """A conversation's messages, oldest first."""
    return await repository.conversation_messages(session, conversation_id)


async def unanswered_openers(session: AsyncSession, conversation_ids: Sequence[str]) -> dict[str, str]:
    """Each conversation's first outbound message (its greeting), for those the person has not texted in."""
    return await repository.unanswered_openers(session, conversation_ids)


async def outbox_gauges(session: AsyncSession, now: datetime, cap: int) -> OutboxGauges:
    """How many messages are queued (counted up to `cap`) and due, and since when the oldest has been due."""
    return await gauges_repository.outbox_gauges(session, now, cap)


class MessageReader:
    """Read-only message queries, each in its own read session (for the dialects)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def use_case_message(self, account_id: str, message_id: str) -> MessageView | None:
        """A message sent through one of the account's SMS use cases, as it stands now; None for any other."""
        async with self._sessions() as session:
            message = await repository.get_view(session, message_id)
            if message is None or message.use_case_id is None or message.project_id is None:
                return None
            project = await tenancy.project(session, message.project_id)
            return message if project is not None and project.account_id == account_id else None
