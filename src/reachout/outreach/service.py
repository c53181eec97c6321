"""First messages: each planned (the gates, before anything is written), then accepted in batches.

A greeting opens a conversation, superseding the open one with the same key; an SMS greeting goes from the
person's number in the project (the one a use case's send may have chosen) and makes its sender their number.
A send through a use case has its sender chosen from the pool when it is dispatched, and opens a conversation
only when the person replies (`conversations.inbound`: the reply's conversation starts with it, answered as
the use case's `replies` says). Nothing here commits: the group committer owns the transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from reachout.compliance import gates, quiet_hours
from reachout.conversations import service as conversations
from reachout.conversations.schemas import Opening, SessionKey, UsersSessions, new_conversation_id
from reachout.delivery.channels import Channel
from reachout.delivery.status import MessageStatus
from reachout.errors import ErrorCode, ReachoutError
from reachout.kit.after_commit import LogLine, after_commit, log_after_commit
from reachout.logs import get_logger
from reachout.messaging import service as messaging
from reachout.messaging import tallies
from reachout.messaging.models import Direction, SendPriority
from reachout.messaging.schemas import (
    AcceptedMessage,
    ConversationText,
    MessageView,
    NewOutbound,
    OutboundRequest,
    new_message_id,
)
from reachout.messaging.segments import MAX_BODY_CHARS, count_segments
from reachout.phones.lookup import LineTypeLookup
from reachout.routing import service as routing
from reachout.routing.selection import choose_sender
from reachout.tenancy import service as tenancy
from reachout.tenancy.schemas import ProjectView, UseCaseView

log = get_logger("outreach")


async def plan_greeting(
    project: ProjectView,
    *,
    to_number: str,
    body: str,
    agent_number: str | None,
    channel: Channel = Channel.SMS,
    metadata: dict[str, Any] | None = None,
    lookup: LineTypeLookup | None = None,
) -> OutboundRequest:
    """Check a first message that opens a conversation; refusals are raised before anything is written."""
    _check_body(body)
    admitted = await gates.admit(
        gates.SendCheck(
            project, channel, to_number, recipient_field="user_number", agent_number=agent_number
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
            project, Channel.SMS, to_number, recipient_field="to_phone_number", use_case=use_case
        ),
        lookup,
    )
    return OutboundRequest(
        project_id=project.id,
        rate_limit=project.rate_limit,
        channel=Channel.SMS,
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


async def accept_first_messages(
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
    senders = await _greeting_senders(
        session,
        [r if refusal is None else None for r, refusal in zip(requests, verdicts, strict=True)],
        known,
        now,
    )

    openings: list[Opening] = []
    messages: list[NewOutbound] = []
    outcomes: list[AcceptedMessage | ReachoutError] = []
    for n, (request, refusal) in enumerate(zip(requests, verdicts, strict=True)):
        if refusal is not None:
            outcomes.append(refusal)
            continue
        opening = None
        sender = request.sender
        if request.use_case_id is None:
            latest = known[request.project_id].latest_agent.get(request.to_number)
            sender = senders.get(n) or sender or choose_sender(request.to_number, request.candidates, latest)
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
            NewOutbound(
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
    await messaging.queue(session, messages, now)
    after_commit(session, partial(tallies.count_accepted, messages))
    log_after_commit(session, log, _accept_lines(requests, outcomes))
    return outcomes


def _accept_lines(
    requests: Sequence[OutboundRequest], outcomes: Sequence[AcceptedMessage | ReachoutError]
) -> list[LogLine]:
    """A line per message accepted, and (debug) per request refused in the accepting transaction."""
    lines: list[LogLine] = []
    if log.is_enabled_for(logging.INFO):
        lines.extend(
            (
                logging.INFO,
                "message accepted",
                {
                    "message_id": outcome.message_id,
                    "conversation_id": outcome.conversation_id,
                    "project_id": request.project_id,
                    "use_case_id": request.use_case_id,
                    "channel": request.channel,
                },
            )
            for request, outcome in zip(requests, outcomes, strict=True)
            if isinstance(outcome, AcceptedMessage)
        )
    if log.is_enabled_for(logging.DEBUG):
        lines.extend(
            (logging.DEBUG, "message refused", {"project_id": request.project_id, "code": outcome.code})
            for request, outcome in zip(requests, outcomes, strict=True)
            if isinstance(outcome, ReachoutError)
        )
    return lines


async def _greeting_senders(
    session: AsyncSession,
    accepted: Sequence[OutboundRequest | None],
    known: dict[str, UsersSessions],
    now: datetime,
) -> dict[int, str]:
    """The sender of each accepted SMS greeting, by its position; each becomes the person's number.

    WhatsApp greetings are left out: a WhatsApp sender is no SMS number for the person to keep.
    """
    sends = [
        routing.ProjectSend(
            str(n),
            r.project_id,
            r.to_number,
            r.candidates,
            requested=r.sender,
            latest=known[r.project_id].latest_agent.get(r.to_number),
        )
        for n, r in enumerate(accepted)
        if r is not None and r.use_case_id is None and r.channel == Channel.SMS
    ]
    choices = await routing.choose_senders(session, sends, {}, now)
    return {int(key): choice.sender for key, choice in choices.items() if choice is not None}


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
