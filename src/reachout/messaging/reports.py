"""Applying carriers' status reports: the one status path every carrier (and the dispatcher) shares.

Reports arrive late, twice and out of order; `delivery.status.decide` says which move a message forward.
Every report is kept in the event log, applied or not. A message of a conversation that a report ends badly is
passed to `DeliveryFailures`, the port the domain above implements, in the same transaction. Nothing here
commits.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import partial
from operator import attrgetter
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from reachout import logs
from reachout.carriers.base import StatusReport
from reachout.compliance import service as compliance
from reachout.delivery.failures import CarrierFailure, failure_for
from reachout.delivery.status import MessageStatus, TransitionOutcome, decide
from reachout.events.types import EventType, for_status
from reachout.kit.after_commit import after_commit
from reachout.logs import get_logger
from reachout.messaging import event_log, repository, tallies
from reachout.messaging.schemas import FailedMessage, MessageChange, MessageEvent, MessageState

_CARRIER_HAS_IT = frozenset(
    {
        MessageStatus.SENDING,
        MessageStatus.SENT,
        MessageStatus.DELIVERED,
        MessageStatus.UNDELIVERED,
        MessageStatus.READ,
    }
)
_ENDED_BADLY = frozenset({MessageStatus.FAILED, MessageStatus.UNDELIVERED, MessageStatus.CANCELED})

log = get_logger("status")
# Where a message ends is a step of its life (info); the moves before it are detail (debug).
_ENDED = frozenset({*_ENDED_BADLY, MessageStatus.DELIVERED, MessageStatus.READ})
_EVENTS = {status: f"message {status.value}" for status in MessageStatus}


class DeliveryFailures(Protocol):
    """Told, inside the status change's transaction, of conversations' messages that just ended badly."""

    async def failed(self, session: AsyncSession, messages: Sequence[FailedMessage]) -> None:
        """React to these failures (each message is passed once: a terminal status is never left)."""
        ...


async def apply_statuses(
    session: AsyncSession,
    reports: Sequence[StatusReport],
    also: Mapping[str, MessageChange] | None = None,
    *,
    failures: DeliveryFailures | None = None,
) -> list[TransitionOutcome | None]:
    """Apply status reports in order; duplicates and regressions are kept as events but change nothing.

    An outcome is None when no message matches its report (the caller acknowledges it all the same).
    `also` holds more changes to messages (by id), written in the same statements; `failures` is told of
    the conversations' messages the batch ended badly, after they are written.
    """
    states = await repository.lock_many(
        session, sids=[r.sid for r in reports if r.sid], ids=[r.reference for r in reports if r.reference]
    )
    by_sid = {s.carrier_sid: s.id for s in states if s.carrier_sid}
    current = {s.id: s for s in states}
    targets = [by_sid.get(r.sid) or (r.reference if r.reference in current else None) for r in reports]
    # Only a message with another report later in the batch needs its state carried forward.
    recurring = {message_id for message_id, count in Counter(targets).items() if count > 1}
    changes: dict[str, MessageChange] = dict(also or {})
    events: list[MessageEvent] = []
    outcomes: list[TransitionOutcome | None] = []
    failed: list[FailedMessage] = []
    noted: list[_Noted] = []  # turned into log lines after the commit, outside the transaction
    logging_on = log.is_enabled_for(logging.INFO) or log.is_enabled_for(logging.DEBUG)
    for report, message_id in zip(reports, targets, strict=True):
        if message_id is None:
            outcomes.append(None)
            continue
        state = current[message_id]
        outcome, change = _transition(state, report)
        opted_out = False
        if outcome is TransitionOutcome.APPLIED and report.error_code is not None:
            opted_out = await _opt_out_if_carrier_says(session, state, report)
        if logging_on:
            noted.append((state, report, outcome, opted_out))
        if change.errored_at is not None and state.conversation_id is not None:
            failed.append(
                FailedMessage(
                    message_id, state.conversation_id, report.status, report.error_code, report.occurred_at
                )
            )
        if _moves_anything(change):
            if message_id in recurring:
                current[message_id] = _advanced(current[message_id], change)
            changes[message_id] = _merged(changes.get(message_id), change)
        events.append(_event(message_id, report, outcome))
        outcomes.append(outcome)
    await repository.apply_changes(session, list(changes.values()))
    if events:
        await event_log.record(session, events, min(report.occurred_at for report in reports))
    if noted:  # before what the failures lead to (a conversation ended), as they happen in that order
        after_commit(session, partial(_log_reports, noted))
    if failures is not None and failed:
        await failures.failed(session, failed)
    after_commit(session, partial(tallies.count_changes, changes, current))
    return outcomes


def _event(message_id: str, report: StatusReport, outcome: TransitionOutcome) -> MessageEvent:
    """A report as the event log keeps it: the move it made, or (for audit) one that changed nothing."""
    if outcome is TransitionOutcome.APPLIED:
        return MessageEvent(
            for_status(report.status),
            message_id,
            report.occurred_at,
            report.source,
            report.error_code,
            report.details,
        )
    ignored = {**report.details, "status": report.status.value, "outcome": outcome.value}
    return MessageEvent(
        EventType.MESSAGE_REPORT_IGNORED,
        message_id,
        report.occurred_at,
        report.source,
        report.error_code,
        ignored,
    )


# A report as applied: the state it was judged against, the report, the outcome, whether it opted out.
_Noted = tuple[MessageState, StatusReport, TransitionOutcome, bool]


def _log_reports(noted: Sequence[_Noted]) -> None:
    """A line per report: where a message ended and a carrier's opt-out (info); a move before the end or a
    dropped report (debug). The dispatcher's own `sending` is its hand-off, logged with the carrier."""
    bound = logs.bound(log)
    info, debug = bound.is_enabled_for(logging.INFO), bound.is_enabled_for(logging.DEBUG)
    for state, report, outcome, opted_out in noted:
        if opted_out and info:
            bound.info("opt-out recorded", **_ids(state, report), reason=f"carrier:{report.error_code}")
        if outcome is not TransitionOutcome.APPLIED:
            if debug:
                bound.debug(
                    "status report dropped", **_fields(state, report), outcome=outcome, current=state.status
                )
        elif report.status in _ENDED:
            if info:
                bound.info(_EVENTS[report.status], **_fields(state, report))
        elif debug and not (report.status is MessageStatus.SENDING and report.source == "dispatcher"):
            bound.debug(_EVENTS[report.status], **_fields(state, report))


def _ids(state: MessageState, report: StatusReport) -> dict[str, object]:
    return {
        "message_id": state.id,
        "conversation_id": state.conversation_id,
        "carrier_sid": report.sid or state.carrier_sid,
        "project_id": state.project_id,
    }


def _fields(state: MessageState, report: StatusReport) -> dict[str, object]:
    fields = _ids(state, report) | {"status": report.status, "source": report.source}
    if report.error_code is not None:
        fields["error_code"] = report.error_code
        fields["error"] = failure_for(report.error_code).description
    return fields


def failure_report(message_id: str, failure: CarrierFailure, now: datetime, worker: str) -> StatusReport:
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


_CHANGE_FIELDS = MessageChange._fields
# What a change can move in the state the rest of the batch is judged against.
_STATE_FIELDS = tuple(name for name in _CHANGE_FIELDS if name != "id" and name in set(MessageState._fields))


_MOVING_FIELDS = tuple(name for name in _CHANGE_FIELDS if name not in ("id", "updated_at", "settled"))
_moving = attrgetter(*_MOVING_FIELDS)
_NOTHING_MOVES = (None,) * len(_MOVING_FIELDS)


def _moves_anything(change: MessageChange) -> bool:
    """Whether a change does more than touch `updated_at` (a duplicate or a regression does not)."""
    return change.settled or _moving(change) != _NOTHING_MOVES


def _advanced(state: MessageState, change: MessageChange) -> MessageState:
    """The state after a change, so the next report of the batch is judged against it."""
    moved = {name: value for name in _STATE_FIELDS if (value := getattr(change, name)) is not None}
    return state._replace(**moved) if moved else state


def _merged(earlier: MessageChange | None, later: MessageChange) -> MessageChange:
    """Two changes to one message in one batch: the later one's columns win."""
    if earlier is None:
        return later
    newer = {name: value for name in _CHANGE_FIELDS if (value := getattr(later, name)) is not None}
    newer["settled"] = earlier.settled or later.settled
    return earlier._replace(**newer)


async def _opt_out_if_carrier_says(session: AsyncSession, state: MessageState, report: StatusReport) -> bool:
    """A carrier that refuses a send because the person unsubscribed (21610) knows what we must record;
    whether this recorded a new opt-out."""
    assert report.error_code is not None
    if state.project_id is None or not failure_for(report.error_code).opts_out:
        return False
    return await compliance.opt_out(
        session, state.project_id, state.to_number, f"carrier:{report.error_code}", report.occurred_at
    )


def _transition(state: MessageState, report: StatusReport) -> tuple[TransitionOutcome, MessageChange]:
    """The outcome of a report against a message's state, and what it changes."""
    outcome = decide(state.status, report.status)
    at = report.occurred_at
    applied = outcome is TransitionOutcome.APPLIED
    ended_badly = applied and report.status in _ENDED_BADLY
    return outcome, MessageChange(
        id=state.id,
        updated_at=at,
        carrier_sid=report.sid if report.sid and state.carrier_sid is None else None,
        # The carrier's count is the one it bills.
        num_segments=report.num_segments if report.num_segments != state.num_segments else None,
        from_number=report.from_number if state.from_number is None else None,
        status=report.status if applied else None,
        # A carrier's report can overtake the dispatcher's record of the hand-off (a crash in between).
        handed_off_at=at
        if applied and report.status in _CARRIER_HAS_IT and state.handed_off_at is None
        else None,
        delivered_at=at
        if applied
        and report.status in (MessageStatus.DELIVERED, MessageStatus.READ)
        and state.delivered_at is None
        else None,
        errored_at=at if ended_badly else None,
        error_code=report.error_code if ended_badly else None,
        error_message=report.details.get("description") if ended_badly else None,
    )
