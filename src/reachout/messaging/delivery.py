"""Delivery: claiming due messages (paced), recording what carriers said, applying status reports.

Nothing here commits: the dispatcher, the webhooks and the worker loop own their transactions, so a status
write and whatever it schedules land together or not at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from reachout.carriers.base import Accepted, CarrierUnavailable, Rejected, StatusReport
from reachout.carriers.failures import CarrierFailure, failure_for
from reachout.compliance import service as compliance
from reachout.kit.clock import Clock
from reachout.messaging import repository
from reachout.messaging.release import release
from reachout.messaging.schemas import ClaimedMessage, MessageState, SendOutcome
from reachout.messaging.status import MessageStatus, TransitionOutcome, decide
from reachout.routing import pacing
from reachout.routing import service as routing
from reachout.tenancy import service as tenancy
from reachout.tenancy.schemas import SenderProfile

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


# --- claiming what is due ----------------------------------------------------------------------------------

VALIDITY_EXPIRED = 30036
# Time for a claim to commit before its paced messages may go (see `routing.pacing.plan`).
PACING_LEAD_SECONDS = 0.05


@dataclass(frozen=True)
class Claim:
    """A batch a dispatcher leased: each message with its slot, and how each sender sends."""

    messages: list[ClaimedMessage]
    senders: dict[str, SenderProfile]
    looked_at: int  # due messages seen, leased or not: zero means the outbox had nothing due
    services: dict[str, str] = field(default_factory=dict)  # use case id → its Twilio Messaging Service

    def messaging_service(self, message: ClaimedMessage) -> str | None:
        """The Messaging Service a message goes through: its use case's, else its sender's project's."""
        sender = self.senders.get(message.from_number)
        by_use_case = None if message.use_case_id is None else self.services.get(message.use_case_id)
        return by_use_case or (None if sender is None else sender.messaging_service_sid)


async def claim(
    session: AsyncSession, clock: Clock, owner: str, lease: timedelta, horizon: float, limit: int
) -> Claim:
    """Lease the due messages whose senders' pace lets them go within `horizon` seconds.

    First `release` re-checks what must still hold (quiet hours, consent, the use case) and gives sends
    through a use case their senders. The rest are deferred to when their turn would come, and any past its
    validity period is canceled (30036), all in the caller's transaction.
    """
    now = clock.now()
    due = await repository.due_for_dispatch(session, now, limit)
    if not due:
        return Claim([], {}, 0)
    looked_at = len(due)
    released = await release(session, due, now)
    due = released.ready
    await repository.update_many(
        session,
        [
            # Time held for the recipient's sake does not count against the validity period.
            {
                "id": m.id,
                "next_attempt_at": opens,
                "expires_at": m.expires_at and m.expires_at + (opens - now),
            }
            for m, opens in released.held
        ],
    )
    for code, message_ids in sorted(released.failed.items()):
        await _fail(session, message_ids, code, now, owner)
    senders = await tenancy.sender_profiles(session, sorted({m.from_number for m in due if m.from_number}))
    plan = await routing.pace(
        session,
        [
            pacing.Due(
                id=message.id,
                cost=message.num_segments,
                lines=_lines(senders.get(message.from_number or "")),
                expires_at=None if message.expires_at is None else message.expires_at.timestamp(),
            )
            for message in due
        ],
        # Slots start from the time the lines' rows were locked, not from before waiting for them: a slot
        # planned from an older "now" would already be past, and its message would go late while the next
        # one goes on time.
        lambda: clock.now().timestamp(),
        horizon,
        PACING_LEAD_SECONDS,
    )
    now = clock.now()
    slots = {slot.id: _instant(slot.at) for slot in plan.slots}
    # The lease outlasts the wait for the slot, so a healthy worker never loses a message it is pacing.
    claimed = await repository.lease(session, slots, owner, now + lease + timedelta(seconds=horizon))
    await repository.update_many(
        session,
        [{"id": slot.id, "next_attempt_at": _instant(slot.at)} for slot in plan.deferred],
    )
    await _fail(session, plan.expired, VALIDITY_EXPIRED, now, owner)
    return Claim(claimed, senders, looked_at, released.services)


def _lines(sender: SenderProfile | None) -> tuple[pacing.Line, ...]:
    if sender is None:
        return ()
    return pacing.lines_for(sender.number, sender.throughput_mps, sender.brand, sender.brand_throughput_mps)


def _instant(epoch_seconds: float) -> datetime:
    return datetime.fromtimestamp(epoch_seconds, UTC)


async def _fail(
    session: AsyncSession, message_ids: Sequence[str], code: int, now: datetime, worker: str
) -> None:
    """End messages the dispatcher will not send (past their validity, or no sender), before any carrier."""
    failure = failure_for(code)
    await apply_statuses(
        session,
        [_failure_report(message_id, failure, now, worker) for message_id in message_ids],
        also={message_id: {"next_attempt_at": None} for message_id in message_ids},
    )


def _failure_report(message_id: str, failure: CarrierFailure, now: datetime, worker: str) -> StatusReport:
    """The dispatcher's own report that a message failed (or was canceled) before any carrier sid."""
    return StatusReport(
        sid="",
        reference=message_id,
        status=failure.status,
        occurred_at=now,
        error_code=failure.code,
        source="dispatcher",
        details={"description": failure.description, "worker": worker},
    )


async def earlier_send(
    session: AsyncSession, message_id: str, found: Sequence[Accepted], taken: set[str]
) -> Accepted | None:
    """The likeliest of a carrier's matches for a message that no other message holds or has `taken`.

    `taken` is the sids other messages of the same batch settled on; the one chosen here joins it.
    """
    held = await repository.sids_held_by_others(session, [f.sid for f in found], message_id)
    # No await between choosing and noting the choice, so two messages of a batch never pick the same sid.
    choice = next((f for f in found if f.sid not in held and f.sid not in taken), None)
    if choice is not None:
        taken.add(choice.sid)
    return choice


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
    retries: list[dict[str, Any]] = []
    retry_events: list[dict[str, Any]] = []
    reports: list[StatusReport] = []
    # Written with each message's status change, in the same UPDATE: a row is updated once per hand-off.
    handed: dict[str, dict[str, Any]] = {}
    released = {"lease_owner": None, "lease_expires_at": None}
    for outcome in outcomes:
        claimed, result = outcome.message, outcome.result
        if isinstance(result, Accepted):
            handed[claimed.id] = {
                "carrier": outcome.carrier,
                "carrier_sid": result.sid,
                "next_attempt_at": None,
                **released,
            }
            reports.append(
                StatusReport(
                    sid=result.sid,
                    reference=claimed.id,
                    status=MessageStatus.SENDING,
                    occurred_at=now,
                    source="dispatcher",
                    details={"worker": worker, "slot": claimed.send_at.isoformat()},
                )
            )
            continue
        failure = _failure_of(result)
        if failure.retryable and claimed.attempts < policy.max_attempts:
            retry_at = now + policy.delay(claimed.attempts)
            retries.append({"id": claimed.id, "next_attempt_at": retry_at, "updated_at": now, **released})
            retry_events.append(
                event_row(
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
        handed[claimed.id] = {"carrier": outcome.carrier, "next_attempt_at": None, **released}
        reports.append(_failure_report(claimed.id, failure, now, worker))
    await repository.update_many(session, retries)
    await repository.insert_events(session, retry_events)
    await apply_statuses(session, reports, also=handed)


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
    session: AsyncSession,
    reports: Sequence[StatusReport],
    also: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[TransitionOutcome | None]:
    """Apply status reports in order; duplicates and regressions are kept as events but change nothing.

    An outcome is None when no message matches its report (the caller acknowledges it all the same).
    `also` holds more columns to set on messages (by id), written in the same statement.
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
        if outcome is TransitionOutcome.APPLIED and report.error_code is not None:
            await _opt_out_if_carrier_says(session, current[message_id], report)
        current[message_id] = replace(
            current[message_id], **{k: v for k, v in values.items() if k in _STATE_FIELDS}
        )
        if values:
            changes.setdefault(message_id, {"id": message_id}).update(values, updated_at=report.occurred_at)
        events.append(
            event_row(
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
    for message_id, columns in (also or {}).items():
        changes.setdefault(message_id, {"id": message_id}).update(columns)
    await repository.update_many(session, list(changes.values()))
    await repository.insert_events(session, events)
    return outcomes


_STATE_FIELDS = frozenset(f.name for f in fields(MessageState))


async def _opt_out_if_carrier_says(session: AsyncSession, state: MessageState, report: StatusReport) -> None:
    """A carrier that refuses a send because the person unsubscribed (21610) knows what we must record."""
    assert report.error_code is not None
    if state.project_id is not None and failure_for(report.error_code).opts_out:
        await compliance.opt_out(
            session, state.project_id, state.to_number, f"carrier:{report.error_code}", report.occurred_at
        )


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


def event_row(
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
