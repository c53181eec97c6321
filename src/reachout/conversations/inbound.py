"""What happens when a person texts one of reachout's numbers: the one path every carrier's inbound webhook
and the sandbox's `/sandbox/inbound` take.

In order: a carrier's retry of a text already stored is dropped; a text to a number no project owns is kept
as an orphan; a text answering a use case's message (the last one sent the person from that number, after
the last word of their latest session there) opens a conversation with that message in it, answered as the
use case says; opt-out, opt-in and help keywords are applied before any agent sees the text, and answered as
`conversations.replies` allows (the sender's destination gates, one answer per person and window); an
opted-out person's texts are kept, never answered, and so are those of a person the sender may not text (a
country its use cases may not send to, say); a text in a conversation nobody answers is kept (its
`message.received` event tells the project); otherwise the text joins its session (or opens one, per the
project's `after_timeout`) and the agent's turn is scheduled after the debounce window, so texts sent in
quick succession are answered as one.
Sending and the agent's turn happen later, from durable rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession

from reachout.agents.base import EndReason
from reachout.carriers.base import InboundText
from reachout.compliance import service as compliance
from reachout.compliance.keywords import KeywordKind, classify
from reachout.compliance.service import AutoReply
from reachout.conversations import jobs_repository, replies, repository
from reachout.conversations.models import AnsweredBy, Conversation, ConversationStatus, JobKind
from reachout.conversations.schemas import SessionKey
from reachout.conversations.service import INACTIVITY_JOBS, end, open_on_inbound, open_on_use_case_reply
from reachout.delivery.channels import Channel
from reachout.messaging import service as messaging
from reachout.messaging.schemas import ConversationText, UseCaseSend
from reachout.tenancy import service as tenancy
from reachout.tenancy.schemas import ProjectView
from reachout.tenancy.settings import AfterTimeout


class InboundOutcome(StrEnum):
    """What became of an inbound text."""

    DUPLICATE = "duplicate"  # a carrier's retry of a text already stored
    ORPHANED = "orphaned"  # sent to a number no project owns
    KEYWORD = "keyword"  # an opt-out, opt-in or help keyword, answered by reachout
    IGNORED = "ignored"  # stored, not answered (an opted-out sender, or a session ended with store_only)
    UNANSWERED = "unanswered"  # stored in a conversation nobody answers, with an event that says so
    TURN = "turn"  # stored in a conversation whose agent will answer


@dataclass(frozen=True)
class InboundPolicy:
    """How inbound texts are answered: the debounce window of a turn, and the window within which a person
    gets at most one automatic answer of each kind."""

    debounce_seconds: float = 2.0
    auto_reply_window_seconds: float = 600.0


@dataclass(frozen=True)
class InboundResult:
    outcome: InboundOutcome
    message_id: str | None = None
    conversation_id: str | None = None
    queued: int = 0  # texts queued for sending (keyword answers)
    project_id: str | None = None
    keyword: str | None = None  # the keyword the text was taken as (STOP, START, HELP...)
    consent: KeywordKind | None = None  # an opt-out or opt-in the text recorded


async def handle_inbound(session: AsyncSession, text: InboundText, policy: InboundPolicy) -> InboundResult:
    """Store a person's text and decide what answers it; the caller commits."""
    if await messaging.inbound_exists(session, text.sid):
        return InboundResult(InboundOutcome.DUPLICATE)
    project_id = await tenancy.project_for_number(session, text.to_number)
    project = None if project_id is None else await tenancy.project(session, project_id)
    if project is None:
        message_id = await messaging.store_inbound(session, text, None, None)
        return InboundResult(InboundOutcome.ORPHANED, message_id)

    key = SessionKey(project.id, text.channel, text.to_number, text.from_number)
    now = text.received_at
    latest = await _session_for(session, key, project, now)
    open_conversation = latest if latest is not None and latest.status == ConversationStatus.OPEN else None

    keyword = classify(text.body)
    opted_out = await compliance.is_opted_out(session, project.id, text.from_number)
    if keyword is not None and (keyword.kind is not KeywordKind.OPT_IN or keyword.word != "YES" or opted_out):
        # YES is an ordinary answer unless the sender has opted out; START and UNSTOP always opt in.
        conversation_id = open_conversation.id if open_conversation is not None else None
        message_id = await messaging.store_inbound(session, text, project.id, conversation_id)
        answer, changed = await _answer_keyword(
            session, project, key, keyword.kind, keyword.word, open_conversation, now
        )
        queued = answer is not None and await replies.queue_reply(
            session,
            ConversationText(
                project.id, conversation_id, text.channel, text.to_number, text.from_number, answer[1]
            ),
            now,
            kind=answer[0],
            window_seconds=policy.auto_reply_window_seconds,
        )
        return InboundResult(
            InboundOutcome.KEYWORD,
            message_id,
            conversation_id,
            queued=int(queued),
            project_id=project.id,
            keyword=keyword.word,
            consent=keyword.kind if changed else None,
        )

    unanswerable = opted_out or (
        await replies.destination_refusal(session, project.id, text.channel, text.to_number, text.from_number)
        is not None
    )
    if unanswerable:
        conversation_id = open_conversation.id if open_conversation is not None else None
        message_id = await messaging.store_inbound(session, text, project.id, conversation_id)
        return InboundResult(InboundOutcome.IGNORED, message_id, conversation_id, project_id=project.id)

    if open_conversation is not None and open_conversation.answered_by == AnsweredBy.NOBODY:
        return await _keep_unanswered(session, text, project, open_conversation)
    if open_conversation is not None:
        conversation_id = open_conversation.id
    elif latest is not None and project.conversations.after_timeout is AfterTimeout.STORE_ONLY:
        message_id = await messaging.store_inbound(session, text, project.id, latest.id)
        return InboundResult(InboundOutcome.IGNORED, message_id, latest.id, project_id=project.id)
    else:
        conversation_id = await open_on_inbound(session, key, project.agent, now)

    message_id = await messaging.store_inbound(session, text, project.id, conversation_id)
    await _engage(session, open_conversation, conversation_id, now)
    await jobs_repository.schedule(
        session, conversation_id, JobKind.TURN, now + timedelta(seconds=policy.debounce_seconds), now
    )
    return InboundResult(InboundOutcome.TURN, message_id, conversation_id, project_id=project.id)


async def _session_for(
    session: AsyncSession, key: SessionKey, project: ProjectView, now: datetime
) -> Conversation | None:
    """The latest conversation with this key, once a text that answers a use case's message opened its own."""
    # Read (and locked) before the session, so a reply that waited for a racing one sees its conversation.
    answered = await _use_case_send(session, key)
    latest = await repository.latest_for_key(session, key)
    open_conversation = latest if latest is not None and latest.status == ConversationStatus.OPEN else None
    if answered is None or not _answers(answered, latest):
        return latest
    superseded = None if open_conversation is None else open_conversation.id
    opened = await open_on_use_case_reply(session, key, answered, project, superseded, now)
    return await repository.get(session, opened)


async def _use_case_send(session: AsyncSession, key: SessionKey) -> UseCaseSend | None:
    """The use-case message the person last got from the number they texted (use cases send SMS only)."""
    if key.channel != Channel.SMS:
        return None
    return await messaging.last_use_case_send(session, key.project_id, key.agent_number, key.user_number)


def _answers(sent: UseCaseSend, latest: Conversation | None) -> bool:
    """Whether a text answers this use-case message: no conversation has it yet, and it reached the person
    after the last word of their latest session on the number (SMS replies name no message: the last one is
    answered)."""
    if sent.conversation_id is not None:
        return False
    return latest is None or sent.handed_off_at >= (latest.ended_at or latest.last_activity_at)


async def _keep_unanswered(
    session: AsyncSession, text: InboundText, project: ProjectView, conversation: Conversation
) -> InboundResult:
    """Keep a text nobody answers (its `message.received` event says it came), and let the conversation
    end after the project's whole inactivity period (with no warning: nobody is there to keep it open for)."""
    now = text.received_at
    message_id = await messaging.store_inbound(session, text, project.id, conversation.id)
    await _engage(session, conversation, conversation.id, now)
    inactivity = project.conversations.inactivity
    quiet = timedelta(seconds=inactivity.warn_after_seconds + inactivity.end_after_warning_seconds)
    await jobs_repository.schedule(session, conversation.id, JobKind.EXPIRE, now + quiet, now)
    return InboundResult(InboundOutcome.UNANSWERED, message_id, conversation.id)


async def _answer_keyword(
    session: AsyncSession,
    project: ProjectView,
    key: SessionKey,
    kind: KeywordKind,
    word: str,
    open_conversation: Conversation | None,
    now: datetime,
) -> tuple[tuple[AutoReply, str] | None, bool]:
    """Apply a keyword: the answer it asks for (None when nothing is to be sent), and whether it changed
    the person's consent."""
    settings = project.conversations
    if kind is KeywordKind.OPT_OUT:
        if open_conversation is not None:
            await end(session, open_conversation.id, EndReason.OPTED_OUT, now)
        newly = await compliance.opt_out(session, project.id, key.user_number, word, now)
        # One confirmation: a repeated STOP from an opted-out number gets none.
        return ((AutoReply.OPT_OUT, settings.opt_out_text) if newly else None), newly
    if kind is KeywordKind.OPT_IN:
        changed = await compliance.opt_in(session, project.id, key.user_number, word, now)
        return (AutoReply.OPT_IN, settings.opt_in_text), changed
    return (AutoReply.HELP, settings.help_text), False


async def _engage(
    session: AsyncSession, open_conversation: Conversation | None, conversation_id: str, now: datetime
) -> None:
    """The person is active: the inactivity clock restarts (a pending warning or end is called off)."""
    values: dict[str, object] = {"last_activity_at": now}
    if open_conversation is None or open_conversation.engaged_at is None:
        values["engaged_at"] = now
    await repository.update(session, conversation_id, values)
    await jobs_repository.cancel(session, conversation_id, INACTIVITY_JOBS)
