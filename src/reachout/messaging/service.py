"""Messaging use cases: accept sends, record hand-offs, apply status reports, take in replies.

Nothing here commits: callers (the request edge, the group committer, the worker loop) own transactions,
so a status write and whatever it schedules land together or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from reachout.carriers.base import InboundText
from reachout.compliance import gates, quiet_hours
from reachout.conversations import service as conversations
from reachout.conversations.schemas import Opening, SessionKey, UsersSessions, new_conversation_id
from reachout.errors import ErrorCode, ReachoutError
from reachout.messaging import repository
from reachout.messaging.delivery import event_row
from reachout.messaging.models import Direction, SendPriority
from reachout.messaging.schemas import (
    DEFAULT_VALIDITY_SECONDS,
    AcceptedMessage,
    ConversationText,
    MessageView,
    OutboundRequest,
    new_message_id,
)
from reachout.messaging.segments import MAX_BODY_CHARS, count_segments
from reachout.messaging.status import MessageStatus, TransitionOutcome
from reachout.phones.lookup import LineTypeLookup
from reachout.routing.selection import choose_sender
from reachout.tenancy import service as tenancy
from reachout.tenancy.enums import Capability
from reachout.tenancy.schemas import ProjectView, UseCaseView


async def plan_greeting(
    project: ProjectView,
    *,
    to_number: str,
    body: str,
    agent_number: str | None,
    channel: str = "sms",
    metadata: dict[str, Any] | None = None,
    lookup: LineTypeLookup | None = None,
) -> OutboundRequest:
    """Check a first message that opens a conversation; refusals are raised before anything is written."""
    _check_body(body)
    admitted = await gates.admit(
        gates.SendCheck(
            project, Capability(channel), to_number, recipient_field="user_number", agent_number=agent_number
        ),
        lookup,
    )
    return OutboundRequest(
        project_id=project.id,
        rate_limit=project.rate_limit,
        channel=channel,
        to_number=admitted.recipient.e164,
        body=body,
        sender=admitted.sender,
        candidates=admitted.candidates,
        metadata=dict(metadata or {}),
        agent=dict(project.agent),
        quiet_hours=project.quiet_hours,
    )


async def plan_use_case_send(
    project: ProjectView,
    use_case: UseCaseView,
    *,
    to_number: str,
    body: str,
    lookup: LineTypeLookup | None = None,
) -> OutboundRequest:
    """Check a message through an SMS use case, whose sender the dispatcher picks from the pool."""
    _check_body(body)
    admitted = await gates.admit(
        gates.SendCheck(
            project, Capability.SMS, to_number, recipient_field="to_phone_number", use_case=use_case
        ),
        lookup,
    )
    return OutboundRequest(
        project_id=project.id,
        rate_limit=project.rate_limit,
        channel=Capability.SMS.value,
        to_number=admitted.recipient.e164,
        body=body,
        sender=None,
        candidates=admitted.candidates,
        use_case_id=use_case.id,
        quiet_hours=use_case.holds_for_quiet_hours(project),
    )


def _check_body(body: str) -> None:
    if not body.strip():
        raise ReachoutError(ErrorCode.INVALID_REQUEST, "message must not be empty.")
    if "\x00" in body:
        raise ReachoutError(ErrorCode.INVALID_REQUEST, "message must not contain NUL (U+0000) characters.")
    if len(body) > MAX_BODY_CHARS:
        raise ReachoutError(
            ErrorCode.MESSAGE_TOO_LONG,
            f"message is {len(body)} characters long; the limit is {MAX_BODY_CHARS}.",
        )


async def send_greetings(
    session: AsyncSession,
    requests: Sequence[OutboundRequest],
    now: datetime,
    limiter: tenancy.RateLimiter,
) -> list[AcceptedMessage | ReachoutError]:
    """Accept first messages, each opening a new conversation (or, through a use case, opening one when the
    person replies); works on many at once for group commit."""
    verdicts = await gates.refuse_opted_out(
        session, [gates.Recipient(r.project_id, r.to_number) for r in requests]
    )
    allowed = [r for r, refusal in zip(requests, verdicts, strict=True) if refusal is None]
    charged = iter(
        await limiter.charge(session, [tenancy.RateCharge(r.project_id, r.rate_limit) for r in allowed], now)
    )
    verdicts = [next(charged) if refusal is None else refusal for refusal in verdicts]
    accepted = [r for r, refusal in zip(requests, verdicts, strict=True) if refusal is None]
    known = await _users_sessions(session, [r for r in accepted if r.use_case_id is None])

    openings: list[Opening] = []
    messages: list[dict[str, Any]] = []
    outcomes: list[AcceptedMessage | ReachoutError] = []
    for request, refusal in zip(requests, verdicts, strict=True):
        if refusal is not None:
            outcomes.append(refusal)
            continue
        opening = None
        sender = request.sender
        if request.use_case_id is None:
            sender = sender or choose_sender(
                request.to_number,
                request.candidates,
                known[request.project_id].latest_agent.get(request.to_number),
            )
            assert sender is not None  # the gates refuse a request without candidates
            opening = Opening(
                id=new_conversation_id(),
                key=SessionKey(request.project_id, request.channel, sender, request.to_number),
                metadata=request.metadata,
                agent=request.agent,
            )
            openings.append(opening)
        message_id = new_message_id()
        send_after = now
        if request.quiet_hours:
            send_after = quiet_hours.opening_for(now, request.to_number)
        # The row records the acceptance (queued, created_at); events record what happens to it after.
        text = ConversationText(
            request.project_id,
            None if opening is None else opening.id,
            request.channel,
            sender,
            request.to_number,
            request.body,
            content_sid=request.content_sid,
            content_variables=request.content_variables,
        )
        messages.append(
            _outbound_row(
                message_id,
                text,
                send_after,
                SendPriority.FIRST_MESSAGE,
                # The validity period runs from when the message may go, not from a night spent held.
                send_after + timedelta(seconds=request.validity_seconds),
                created_at=now,
                use_case_id=request.use_case_id,
                quiet_hours=request.quiet_hours,
            )
        )
        outcomes.append(AcceptedMessage(message_id, None if opening is None else opening.id, sender, now))
    await conversations.open_sessions(session, openings, now, known)
    await repository.insert_messages(session, messages)
    return outcomes


async def _users_sessions(
    session: AsyncSession, requests: Sequence[OutboundRequest]
) -> dict[str, UsersSessions]:
    users_by_project: dict[str, set[str]] = {}
    for request in requests:
        users_by_project.setdefault(request.project_id, set()).add(request.to_number)
    return {
        project_id: await conversations.users_sessions(session, project_id, users)
        for project_id, users in sorted(users_by_project.items())
    }


async def queue_texts(session: AsyncSession, texts: Sequence[ConversationText], now: datetime) -> list[str]:
    """Queue replies in open conversations (the caller has checked consent); returns their message ids.

    They are sent before any first message waiting on the same sender: someone is waiting for them.
    """
    expires_at = now + timedelta(seconds=DEFAULT_VALIDITY_SECONDS)
    rows = [_outbound_row(new_message_id(), text, now, SendPriority.REPLY, expires_at) for text in texts]
    await repository.insert_messages(session, rows)
    return [row["id"] for row in rows]


def _outbound_row(
    message_id: str,
    text: ConversationText,
    send_after: datetime,
    priority: SendPriority,
    expires_at: datetime,
    *,
    created_at: datetime | None = None,
    use_case_id: str | None = None,
    quiet_hours: bool = False,
) -> dict[str, Any]:
    now = created_at or send_after
    segments = count_segments(text.body)
    return {
        "id": message_id,
        "project_id": text.project_id,
        "conversation_id": text.conversation_id,
        "direction": Direction.OUTBOUND,
        "channel": text.channel,
        "from_number": text.from_number,
        "to_number": text.to_number,
        "body": text.body,
        "status": MessageStatus.QUEUED,
        "num_segments": segments.segments,
        "encoding": segments.encoding,
        "attempts": 0,
        "next_attempt_at": send_after,
        "priority": priority,
        "expires_at": expires_at,
        "content_sid": text.content_sid,
        "content_variables": text.content_variables,
        "use_case_id": use_case_id,
        "quiet_hours": quiet_hours,
        "created_at": now,
        "updated_at": now,
    }


def accepted_view(request: OutboundRequest, accepted: AcceptedMessage) -> MessageView:
    """A message as it stands the moment it is accepted: queued, nothing known from any carrier yet."""
    return MessageView(
        id=accepted.message_id,
        project_id=request.project_id,
        conversation_id=accepted.conversation_id,
        use_case_id=request.use_case_id,
        direction=Direction.OUTBOUND,
        channel=request.channel,
        from_number=accepted.from_number,
        to_number=request.to_number,
        body=request.body,
        status=MessageStatus.QUEUED,
        carrier_sid=None,
        num_segments=count_segments(request.body).segments,
        error_code=None,
        handed_off_at=None,
        delivered_at=None,
        errored_at=None,
        created_at=accepted.created_at,
        updated_at=accepted.created_at,
    )


async def inbound_exists(session: AsyncSession, sid: str) -> bool:
    """Whether a text with this carrier sid was already stored (a carrier retrying its webhook)."""
    return await repository.inbound_exists(session, sid)


async def store_inbound(
    session: AsyncSession, text: InboundText, project_id: str | None, conversation_id: str | None
) -> str:
    """Store a text a person sent, with its `received` event; returns its message id."""
    segments = count_segments(text.body)
    message_id = new_message_id()
    await repository.insert_messages(
        session,
        [
            {
                "id": message_id,
                "project_id": project_id,
                "conversation_id": conversation_id,
                "direction": Direction.INBOUND,
                "channel": text.channel,
                "from_number": text.from_number,
                "to_number": text.to_number,
                "body": text.body,
                "status": MessageStatus.RECEIVED,
                "carrier": text.carrier,
                "carrier_sid": text.sid,
                "num_segments": segments.segments,
                "encoding": segments.encoding,
                "attempts": 0,
                "created_at": text.received_at,
                "updated_at": text.received_at,
            }
        ],
    )
    await repository.insert_events(
        session,
        [
            event_row(
                message_id, MessageStatus.RECEIVED, TransitionOutcome.APPLIED, text.carrier, text.received_at
            )
        ],
    )
    return message_id


async def conversation_messages(session: AsyncSession, conversation_id: str) -> list[MessageView]:
    """A conversation's messages, oldest first."""
    return await repository.conversation_messages(session, conversation_id)


async def get(session: AsyncSession, message_id: str) -> MessageView | None:
    """A message as it stands now."""
    return await repository.get_view(session, message_id)


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
