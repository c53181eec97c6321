"""Conversation use cases: open sessions for outbound greetings, find the session a reply joins, end them."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from reachout.agents.base import EndReason
from reachout.conversations import event_log, jobs_repository, listing_repository, repository
from reachout.conversations.listing import ConversationPage, ConversationQuery, ConversationSummary
from reachout.conversations.models import AnsweredBy, ConversationStatus, JobKind
from reachout.conversations.schemas import (
    ConversationChange,
    NewConversation,
    Opening,
    SessionKey,
    UsersSessions,
    could_be_conversation_id,
    new_conversation_id,
)
from reachout.delivery.channels import Channel
from reachout.delivery.failures import failure_for
from reachout.events.types import EventType
from reachout.kit.after_commit import log_after_commit
from reachout.logs import get_logger
from reachout.messaging import service as messaging
from reachout.messaging.schemas import FailedMessage, MessageView, UseCaseSend
from reachout.tenancy import service as tenancy
from reachout.tenancy.schemas import ProjectView

log = get_logger("conversations")
INACTIVITY_JOBS = (JobKind.WARN, JobKind.EXPIRE)


async def users_sessions(session: AsyncSession, project_id: str, users: Iterable[str]) -> UsersSessions:
    """Each user's most recent agent number, and the open sessions a greeting to them would supersede."""
    latest_agent: dict[str, str] = {}
    open_ids: dict[SessionKey, str] = {}
    for conversation_id, user, agent, channel, status in await repository.open_or_latest(
        session, project_id, users
    ):
        latest_agent[user] = agent  # rows come oldest first, so the most recent wins
        if status == ConversationStatus.OPEN:
            open_ids[SessionKey(project_id, Channel(channel), agent, user)] = conversation_id
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
    await repository.end_many(session, sorted(superseded), now, EndReason.SUPERSEDED)
    latest_for_key = {o.key: o.id for o in openings}  # within one batch, the last greeting wins too
    born_superseded = [o.id for o in openings if latest_for_key[o.key] != o.id]
    await repository.insert_many(
        session,
        [
            NewConversation(
                o.id,
                o.key,
                now,
                agent=dict(o.agent),
                metadata=dict(o.metadata),
                ended_as=None if latest_for_key[o.key] == o.id else EndReason.SUPERSEDED,
            )
            for o in openings
        ],
    )
    ended = {"reason": EndReason.SUPERSEDED}
    await event_log.record(
        session,
        [
            *(ConversationChange(EventType.CONVERSATION_ENDED, i, now, ended) for i in sorted(superseded)),
            *(ConversationChange(EventType.CONVERSATION_STARTED, o.id, now) for o in openings),
            *(ConversationChange(EventType.CONVERSATION_ENDED, i, now, ended) for i in born_superseded),
        ],
        now,
    )


async def open_on_inbound(
    session: AsyncSession,
    key: SessionKey,
    agent: Mapping[str, Any] | None,
    now: datetime,
    *,
    use_case_id: str | None = None,
) -> str:
    """Open the conversation a person's text starts (no greeting opened one), answered by `agent` (None:
    by nobody); returns its id."""
    conversation_id = new_conversation_id()
    answered_by = AnsweredBy.NOBODY if agent is None else AnsweredBy.AGENT
    conversation = NewConversation(
        conversation_id, key, now, dict(agent or {}), answered_by=answered_by, use_case_id=use_case_id
    )
    await repository.insert_many(session, [conversation])
    started = ConversationChange(EventType.CONVERSATION_STARTED, conversation_id, now)
    await event_log.record(session, [started], now)
    return conversation_id


async def open_on_use_case_reply(
    session: AsyncSession,
    key: SessionKey,
    answered: UseCaseSend,
    project: ProjectView,
    superseded: str | None,
    now: datetime,
) -> str:
    """Open the conversation of a person's reply to a use case's message, with that message in it, answered
    as the use case says; it ends `superseded`, the open one it replaces. Returns its id.

    A use case deleted since answers nothing: nobody has said what should.
    """
    use_case = (await tenancy.use_cases(session, [answered.use_case_id])).get(answered.use_case_id)
    agent = None if use_case is None or use_case.deleted else use_case.reply_agent(project)
    if superseded is not None:
        await end(session, superseded, EndReason.SUPERSEDED, now)
    conversation_id = await open_on_inbound(session, key, agent, now, use_case_id=answered.use_case_id)
    await messaging.attach(session, answered.id, conversation_id)
    return conversation_id


async def end(
    session: AsyncSession,
    conversation_id: str,
    reason: EndReason,
    now: datetime,
    details: Mapping[str, Any] | None = None,
) -> None:
    """End a conversation and call off everything it was waiting for; `details` go on its `ended` event."""
    await repository.update(
        session, conversation_id, {"status": ConversationStatus.ENDED, "end_reason": reason, "ended_at": now}
    )
    await jobs_repository.cancel(session, conversation_id, (JobKind.TURN, *INACTIVITY_JOBS))
    recorded = {"reason": reason, **(details or {})}
    ended = ConversationChange(EventType.CONVERSATION_ENDED, conversation_id, now, recorded)
    await event_log.record(session, [ended], now)
    fields = {"conversation_id": conversation_id, "reason": reason}
    if details is not None and "message_id" in details:
        fields["message_id"] = details["message_id"]  # the greeting that could not be delivered
    log_after_commit(session, log, [(logging.INFO, "conversation ended", fields)])


async def end_undeliverable(session: AsyncSession, failed: Sequence[FailedMessage]) -> list[str]:
    """End each open conversation whose greeting is among `failed` and which the person never texted in;
    returns the ids ended. A failed later reply ends nothing: the person is still there to answer.
    A carrier that refused the greeting because the person unsubscribed ends it as opted out."""
    by_id = {f.id: f for f in failed}
    openers = await messaging.unanswered_openers(session, [f.conversation_id for f in failed])
    greetings = {conversation_id: by_id[m] for conversation_id, m in openers.items() if m in by_id}
    # Locked and checked open, so a conversation ended meanwhile (superseded, say) is left as it ended.
    ended = await repository.lock_open(session, greetings)
    for conversation_id in ended:
        greeting = greetings[conversation_id]
        details = {"message_id": greeting.id, "status": greeting.status, "error_code": greeting.error_code}
        reason = _greeting_end(greeting.error_code)
        await end(session, conversation_id, reason, greeting.occurred_at, details)
    return ended


def _greeting_end(error_code: int | None) -> EndReason:
    opted_out = error_code is not None and failure_for(error_code).opts_out
    return EndReason.OPTED_OUT if opted_out else EndReason.UNDELIVERABLE


class UndeliverableGreetings:
    """Implements `messaging.reports.DeliveryFailures`: a greeting that failed for good ends its conversation
    (`end_undeliverable`), whether a carrier reported it or the dispatcher gave up on it."""

    async def failed(self, session: AsyncSession, messages: Sequence[FailedMessage]) -> None:
        await end_undeliverable(session, messages)


async def page_for_account(
    session: AsyncSession, account_id: str, query: ConversationQuery
) -> ConversationPage:
    """A page of the account's conversations, sorted and filtered."""
    items, total = await listing_repository.page_for_account(session, account_id, query)
    return ConversationPage(tuple(items), total, query)


async def detail_for_account(
    session: AsyncSession, account_id: str, conversation_id: str
) -> tuple[ConversationSummary, list[MessageView]] | None:
    """One of the account's conversations with its messages, oldest first; None if it has no such one
    (without a query, for text that is not a conversation id: a NUL, say, that PostgreSQL could not bind)."""
    if not could_be_conversation_id(conversation_id):
        return None
    summary = await listing_repository.summary_for_account(session, account_id, conversation_id)
    if summary is None:
        return None
    return summary, await messaging.conversation_messages(session, conversation_id)


class ConversationReader:
    """Read-only conversation queries, each in its own read session (for the dialects)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def page(self, account_id: str, query: ConversationQuery) -> ConversationPage:
        """A page of the account's conversations, sorted and filtered."""
        async with self._sessions() as session:
            return await page_for_account(session, account_id, query)

    async def detail(
        self, account_id: str, conversation_id: str
    ) -> tuple[ConversationSummary, list[MessageView]] | None:
        """One of the account's conversations with its messages, or None."""
        async with self._sessions() as session:
            return await detail_for_account(session, account_id, conversation_id)
