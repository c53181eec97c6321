"""Messaging use cases: accept sends, record hand-offs, apply status reports, take in replies.

Nothing here commits: callers (the request edge, the group committer, the worker loop) own transactions,
so a status write and whatever it schedules land together or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from reachout.carriers.base import InboundText
from reachout.compliance import service as compliance
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
from reachout.phones.numbers import InvalidPhoneNumber, parse_e164
from reachout.routing.selection import choose_sender
from reachout.tenancy import service as tenancy
from reachout.tenancy.enums import Capability
from reachout.tenancy.schemas import ProjectView


def plan_greeting(
    project: ProjectView,
    *,
    to_number: str,
    body: str,
    agent_number: str | None,
    channel: str = "sms",
    metadata: dict[str, Any] | None = None,
) -> OutboundRequest:
    """Check a first message against the project's numbers; refusals are raised before anything is written."""
    try:
        recipient = parse_e164(to_number).e164
    except InvalidPhoneNumber as error:
        raise ReachoutError(ErrorCode.INVALID_PHONE_NUMBER, f"user_number: {error}") from None
    if not body.strip():
        raise ReachoutError(ErrorCode.INVALID_REQUEST, "message must not be empty.")
    if "\x00" in body:
        raise ReachoutError(ErrorCode.INVALID_REQUEST, "message must not contain NUL (U+0000) characters.")
    if len(body) > MAX_BODY_CHARS:
        raise ReachoutError(
            ErrorCode.MESSAGE_TOO_LONG,
            f"message is {len(body)} characters long; the limit is {MAX_BODY_CHARS}.",
        )
    capability = Capability(channel)
    if not any(capability in n.capabilities for n in project.numbers):
        raise ReachoutError(
            ErrorCode.NO_NUMBERS_PROVISIONED,
            f"No {channel.upper()} numbers are provisioned for this project.",
        )
    if agent_number is not None:
        try:
            sender = parse_e164(agent_number).e164
        except InvalidPhoneNumber as error:
            raise ReachoutError(ErrorCode.INVALID_PHONE_NUMBER, f"agent_number: {error}") from None
        if not any(n.number == sender and capability in n.capabilities for n in project.numbers):
            raise ReachoutError(
                ErrorCode.SENDER_NOT_PROVISIONED,
                f"agent_number {sender} is not one of the numbers provisioned for this project.",
            )
        candidates: tuple[str, ...] = (sender,)
    else:
        sender = None
        candidates = tuple(n.number for n in project.senders_for(project.environment, capability))
        if not candidates:
            raise ReachoutError(
                ErrorCode.NO_NUMBERS_PROVISIONED,
                f"No {channel.upper()} numbers are provisioned for this project's "
                f"'{project.environment}' environment.",
            )
    return OutboundRequest(
        project_id=project.id,
        rate_limit=project.rate_limit,
        channel=channel,
        to_number=recipient,
        body=body,
        sender=sender,
        candidates=candidates,
        metadata=dict(metadata or {}),
        agent=dict(project.agent),
    )


async def send_greetings(
    session: AsyncSession,
    requests: Sequence[OutboundRequest],
    now: datetime,
    limiter: tenancy.RateLimiter,
) -> list[AcceptedMessage | ReachoutError]:
    """Accept first messages, each opening a new conversation; works on many at once for group commit."""
    verdicts = await _refuse_opted_out(session, requests)
    allowed = [r for r, refusal in zip(requests, verdicts, strict=True) if refusal is None]
    charged = iter(
        await limiter.charge(session, [tenancy.RateCharge(r.project_id, r.rate_limit) for r in allowed], now)
    )
    verdicts = [next(charged) if refusal is None else refusal for refusal in verdicts]
    accepted = [r for r, refusal in zip(requests, verdicts, strict=True) if refusal is None]
    known = await _users_sessions(session, accepted)

    openings: list[Opening] = []
    messages: list[dict[str, Any]] = []
    outcomes: list[AcceptedMessage | ReachoutError] = []
    for request, refusal in zip(requests, verdicts, strict=True):
        if refusal is not None:
            outcomes.append(refusal)
            continue
        sender = request.sender or choose_sender(
            request.to_number,
            request.candidates,
            known[request.project_id].latest_agent.get(request.to_number),
        )
        assert sender is not None  # plan_greeting refuses a request without candidates
        opening = Opening(
            id=new_conversation_id(),
            key=SessionKey(request.project_id, request.channel, sender, request.to_number),
            metadata=request.metadata,
            agent=request.agent,
        )
        message_id = new_message_id()
        openings.append(opening)
        # The row records the acceptance (queued, created_at); events record what happens to it after.
        text = ConversationText(
            request.project_id,
            opening.id,
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
                now,
                SendPriority.FIRST_MESSAGE,
                now + timedelta(seconds=request.validity_seconds),
            )
        )
        outcomes.append(AcceptedMessage(message_id, opening.id, sender))
    await conversations.open_sessions(session, openings, now, known)
    await repository.insert_messages(session, messages)
    return outcomes


async def _refuse_opted_out(
    session: AsyncSession, requests: Sequence[OutboundRequest]
) -> list[ReachoutError | None]:
    users_by_project: dict[str, set[str]] = {}
    for request in requests:
        users_by_project.setdefault(request.project_id, set()).add(request.to_number)
    blocked = {
        (project_id, number)
        for project_id, users in sorted(users_by_project.items())
        for number in await compliance.opted_out(session, project_id, users)
    }
    return [
        ReachoutError(
            ErrorCode.RECIPIENT_OPTED_OUT,
            f"{r.to_number} has opted out of this project's messages (they replied with an opt-out keyword "
            "such as STOP); they can opt back in by texting START.",
        )
        if (r.project_id, r.to_number) in blocked
        else None
        for r in requests
    ]


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
    message_id: str, text: ConversationText, now: datetime, priority: SendPriority, expires_at: datetime
) -> dict[str, Any]:
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
        "next_attempt_at": now,
        "priority": priority,
        "expires_at": expires_at,
        "content_sid": text.content_sid,
        "content_variables": text.content_variables,
        "created_at": now,
        "updated_at": now,
    }


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
