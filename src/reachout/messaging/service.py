"""Messaging use cases: accept sends, record hand-offs, apply status reports, take in replies.

Nothing here commits: callers (the request edge, the group committer, the worker loop) own transactions,
so a status write and whatever it schedules land together or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from reachout.carriers.base import Accepted, CarrierUnavailable, InboundText, Rejected, StatusReport
from reachout.carriers.failures import CarrierFailure, failure_for
from reachout.compliance import service as compliance
from reachout.conversations import service as conversations
from reachout.conversations.schemas import Opening, SessionKey, UsersSessions, new_conversation_id
from reachout.errors import ErrorCode, ReachoutError
from reachout.messaging import repository
from reachout.messaging.models import Direction
from reachout.messaging.schemas import (
    AcceptedMessage,
    ConversationText,
    MessageState,
    MessageView,
    OutboundRequest,
    SendOutcome,
    new_message_id,
)
from reachout.messaging.segments import MAX_BODY_CHARS, count_segments
from reachout.messaging.status import MessageStatus, TransitionOutcome, decide
from reachout.phones.numbers import InvalidPhoneNumber, parse_e164
from reachout.routing.selection import choose_sender
from reachout.tenancy import service as tenancy
from reachout.tenancy.enums import Capability
from reachout.tenancy.schemas import ProjectView

# A carrier that cannot tell us what happened, or that asks us to slow down, leaves the message queued.
GENERIC_FAILURE = 30008
UNPROVISIONED_SENDER = 21606
MAX_BACKOFF_SECONDS = 3600.0
_CARRIER_HAS_IT = frozenset(
    {
        MessageStatus.SENDING,
        MessageStatus.SENT,
        MessageStatus.DELIVERED,
        MessageStatus.UNDELIVERED,
        MessageStatus.READ,
    }
)


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
            request.project_id, opening.id, request.channel, sender, request.to_number, request.body
        )
        messages.append(_outbound_row(message_id, text, now))
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
    """Queue texts for the dispatcher (the caller has checked consent); returns their message ids."""
    rows = [_outbound_row(new_message_id(), text, now) for text in texts]
    await repository.insert_messages(session, rows)
    return [row["id"] for row in rows]


def _outbound_row(message_id: str, text: ConversationText, now: datetime) -> dict[str, Any]:
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
        "created_at": now,
        "updated_at": now,
    }


def _event_row(
    message_id: str,
    status: MessageStatus,
    outcome: str,
    source: str,
    at: datetime,
    error_code: int | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "message_id": message_id,
        "status": status,
        "outcome": outcome,
        "source": source,
        "error_code": error_code,
        "details": details or {},
        "occurred_at": at,
    }


# --- after the carrier has answered ------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a send the carrier could not take is tried again."""

    base_seconds: float
    max_attempts: int

    def delay(self, attempts: int) -> timedelta:
        return timedelta(seconds=min(self.base_seconds * 2 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS))


async def record_send_results(
    session: AsyncSession, outcomes: Sequence[SendOutcome], now: datetime, policy: RetryPolicy, worker: str
) -> None:
    """Record what carriers said about a batch of sends: hand-offs, permanent failures and retries.

    `worker` names the dispatcher that made the calls; it is kept on each event for audit.
    """
    changes: list[dict[str, Any]] = []
    retry_events: list[dict[str, Any]] = []
    reports: list[StatusReport] = []
    released = {"lease_owner": None, "lease_expires_at": None}
    for outcome in outcomes:
        claimed, result = outcome.message, outcome.result
        if isinstance(result, Accepted):
            changes.append(
                {
                    "id": claimed.id,
                    "carrier": outcome.carrier,
                    "carrier_sid": result.sid,
                    "next_attempt_at": None,
                    **released,
                }
            )
            reports.append(
                StatusReport(
                    sid=result.sid,
                    reference=claimed.id,
                    status=MessageStatus.SENDING,
                    occurred_at=now,
                    source="dispatcher",
                    details={"worker": worker},
                )
            )
            continue
        failure = _failure_of(result)
        if failure.retryable and claimed.attempts < policy.max_attempts:
            retry_at = now + policy.delay(claimed.attempts)
            changes.append({"id": claimed.id, "next_attempt_at": retry_at, "updated_at": now, **released})
            retry_events.append(
                _event_row(
                    claimed.id,
                    MessageStatus.QUEUED,
                    "retry",
                    "dispatcher",
                    now,
                    failure.code,
                    {"retry_at": retry_at.isoformat(), "reason": failure.description, "worker": worker},
                )
            )
            continue
        changes.append({"id": claimed.id, "carrier": outcome.carrier, "next_attempt_at": None, **released})
        reports.append(
            StatusReport(
                sid="",
                reference=claimed.id,
                status=failure.status,
                occurred_at=now,
                error_code=failure.code,
                source="dispatcher",
                details={"description": failure.description, "worker": worker},
            )
        )
    await repository.update_many(session, changes)
    await repository.insert_events(session, retry_events)
    await apply_statuses(session, reports)


def _failure_of(result: Rejected | CarrierUnavailable | None) -> CarrierFailure:
    if isinstance(result, Rejected):
        return result.failure
    if result is None:  # the sender is no longer provisioned on any carrier this process knows
        return failure_for(UNPROVISIONED_SENDER)
    return CarrierFailure(
        GENERIC_FAILURE, f"Carrier unavailable: {result}", retryable=True, status=MessageStatus.FAILED
    )


async def apply_status(session: AsyncSession, report: StatusReport) -> TransitionOutcome | None:
    """Apply one status report; see `apply_statuses`."""
    [outcome] = await apply_statuses(session, [report])
    return outcome


async def apply_statuses(
    session: AsyncSession, reports: Sequence[StatusReport]
) -> list[TransitionOutcome | None]:
    """Apply status reports in order; duplicates and regressions are kept as events but change nothing.

    An outcome is None when no message matches its report (the caller acknowledges it all the same).
    """
    states = await repository.lock_many(
        session, sids=[r.sid for r in reports if r.sid], ids=[r.reference for r in reports if r.reference]
    )
    by_sid = {s.carrier_sid: s.id for s in states if s.carrier_sid}
    current = {s.id: s for s in states}
    changes: dict[str, dict[str, Any]] = {}
    events: list[dict[str, Any]] = []
    outcomes: list[TransitionOutcome | None] = []
    for report in reports:
        message_id = by_sid.get(report.sid) or (report.reference if report.reference in current else None)
        if message_id is None:
            outcomes.append(None)
            continue
        outcome, values = _transition(current[message_id], report)
        current[message_id] = replace(
            current[message_id], **{k: v for k, v in values.items() if k in _STATE_FIELDS}
        )
        if values:
            changes.setdefault(message_id, {"id": message_id}).update(values, updated_at=report.occurred_at)
        events.append(
            _event_row(
                message_id,
                report.status,
                outcome,
                report.source,
                report.occurred_at,
                report.error_code,
                report.details,
            )
        )
        outcomes.append(outcome)
    await repository.update_many(session, list(changes.values()))
    await repository.insert_events(session, events)
    return outcomes


_STATE_FIELDS = frozenset(f.name for f in fields(MessageState))


def _transition(state: MessageState, report: StatusReport) -> tuple[TransitionOutcome, dict[str, Any]]:
    """The outcome of a report against a message's state, and the columns it changes."""
    outcome = decide(state.status, report.status)
    at = report.occurred_at
    values: dict[str, Any] = {}
    if report.sid and state.carrier_sid is None:
        values["carrier_sid"] = report.sid
    if report.num_segments is not None and report.num_segments != state.num_segments:
        values["num_segments"] = report.num_segments  # the carrier's count is the one it bills
    if report.from_number and state.from_number is None:
        values["from_number"] = report.from_number
    if outcome is TransitionOutcome.APPLIED:
        values["status"] = report.status
        if report.status in _CARRIER_HAS_IT and state.handed_off_at is None:
            # A carrier's report can overtake the dispatcher's record of the hand-off (a crash in between).
            values["handed_off_at"] = at
        if report.status in (MessageStatus.DELIVERED, MessageStatus.READ) and state.delivered_at is None:
            values["delivered_at"] = at
        if report.status in (MessageStatus.FAILED, MessageStatus.UNDELIVERED, MessageStatus.CANCELED):
            values["errored_at"] = at
            values["error_code"] = report.error_code
            values["error_message"] = report.details.get("description")
    return outcome, values


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
            _event_row(
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
