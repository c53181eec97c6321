"""Recording what carriers said about a batch of sends: hand-offs, permanent failures and retries.

A result is written only where the claim's lease still holds: a dispatcher that took longer than its lease
finds another claim's token on the row, and its late word changes nothing (the newer claim asks the carrier
first whether it already has the message, so a send that did happen is still recorded, once).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from reachout.carriers.base import Accepted, CarrierUnavailable, Rejected, StatusReport
from reachout.delivery.failures import CARRIER_UNAVAILABLE, SENDER_NOT_CAPABLE, CarrierFailure
from reachout.delivery.status import MessageStatus
from reachout.events.types import EventType
from reachout.kit.after_commit import LogLine, after_commit, log_after_commit
from reachout.kit.jobs.leases import Lease
from reachout.kit.jobs.retry import RetryStrategy
from reachout.logs import get_logger, last_digits
from reachout.messaging import event_log, repository, tallies
from reachout.messaging.reports import DeliveryFailures, apply_statuses, failure_report
from reachout.messaging.schemas import MessageChange, MessageEvent, SendOutcome

log = get_logger("dispatcher")


async def record_send_results(
    session: AsyncSession,
    outcomes: Sequence[SendOutcome],
    now: datetime,
    retry: RetryStrategy,
    lease: Lease,
    *,
    failures: DeliveryFailures | None = None,
) -> int:
    """Record the outcomes whose lease still holds; returns how many were recorded (`failures` hears of
    the permanent ones)."""
    held = await repository.held(session, [o.message.id for o in outcomes], lease.token)
    late = [o.message.id for o in outcomes if o.message.id not in held]
    if late:
        log.warning("send results after the lease ended dropped", message_ids=late, lease=lease.token)
    retry_events: list[MessageEvent] = []
    changes: dict[str, MessageChange] = {}
    reports: list[StatusReport] = []
    lines: list[LogLine] = []
    info, debug = log.is_enabled_for(logging.INFO), log.is_enabled_for(logging.DEBUG)
    for outcome in outcomes:
        claimed, result = outcome.message, outcome.result
        if claimed.id not in held:
            continue
        if isinstance(result, Accepted):
            if info:
                lines.append((logging.INFO, "message handed off", _handed_off(outcome, result)))
            changes[claimed.id] = MessageChange(
                claimed.id, carrier=outcome.carrier, carrier_sid=result.sid, settled=True
            )
            reports.append(
                StatusReport(
                    sid=result.sid,
                    reference=claimed.id,
                    status=MessageStatus.SENDING,
                    occurred_at=now,
                    source="dispatcher",
                    details={"worker": lease.owner, "slot": claimed.send_at.isoformat()},
                )
            )
            continue
        failure, retry_after = _failure_of(result)
        retry_at = retry.next_attempt(claimed.attempts, now, retry_after) if failure.retryable else None
        if retry_at is not None:
            changes[claimed.id] = MessageChange(claimed.id, updated_at=now, next_attempt_at=retry_at)
            details = {"retry_at": retry_at.isoformat(), "reason": failure.description, "worker": lease.owner}
            retry_events.append(
                MessageEvent(
                    EventType.MESSAGE_RETRY_SCHEDULED, claimed.id, now, "dispatcher", failure.code, details
                )
            )
            if debug:
                delay = round((retry_at - now).total_seconds(), 3)
                lines.append(
                    (logging.DEBUG, "send retry scheduled", _retry(outcome, failure, delay, retry_at))
                )
            continue
        changes[claimed.id] = MessageChange(claimed.id, carrier=outcome.carrier, settled=True)
        reports.append(failure_report(claimed.id, failure, now, lease.owner))
    await apply_statuses(session, reports, also=changes, failures=failures)
    await event_log.record(session, retry_events, now)
    after_commit(session, lambda: tallies.count_retries(retry_events, outcomes))
    log_after_commit(session, log, lines)
    return len(held)


def _handed_off(outcome: SendOutcome, accepted: Accepted) -> dict[str, object]:
    claimed = outcome.message
    return {
        "message_id": claimed.id,
        "conversation_id": claimed.conversation_id,
        "carrier_sid": accepted.sid,
        "project_id": claimed.project_id,
        "carrier": outcome.carrier,
        "sender": last_digits(claimed.from_number),
        "attempt": claimed.attempts,
    }


def _retry(
    outcome: SendOutcome, failure: CarrierFailure, delay_seconds: float, retry_at: datetime
) -> dict[str, object]:
    claimed = outcome.message
    return {
        "message_id": claimed.id,
        "conversation_id": claimed.conversation_id,
        "project_id": claimed.project_id,
        "carrier": outcome.carrier,
        "attempt": claimed.attempts,
        "error_code": failure.code,
        "error": failure.description,
        "delay_seconds": delay_seconds,
        "retry_at": retry_at.isoformat(),
    }


def _failure_of(result: Rejected | CarrierUnavailable | None) -> tuple[CarrierFailure, float | None]:
    """The catalogue's word on a send that did not go, and how long the carrier asked us to wait."""
    if isinstance(result, Rejected):
        return result.failure, result.retry_after
    if result is None:  # the sender is no longer provisioned on any carrier this process knows
        return SENDER_NOT_CAPABLE, None
    return (
        CarrierFailure(
            CARRIER_UNAVAILABLE.code,
            f"Carrier unavailable: {result}",
            retryable=True,
            status=MessageStatus.FAILED,
        ),
        result.retry_after,
    )
