"""Claiming due messages for the dispatcher: released by their checks, paced, leased.

Nothing here commits: the dispatcher owns the claim's transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from reachout.carriers.base import Accepted
from reachout.delivery.failures import VALIDITY_EXPIRED, CarrierFailure
from reachout.kit.after_commit import LogLine, log_after_commit
from reachout.kit.clock import Clock
from reachout.kit.jobs.leases import Lease
from reachout.logs import get_logger
from reachout.messaging import repository
from reachout.messaging.release import release
from reachout.messaging.reports import DeliveryFailures, apply_statuses, failure_report
from reachout.messaging.schemas import ClaimedMessage, DueMessage, MessageChange
from reachout.routing import pacing
from reachout.routing import service as routing
from reachout.tenancy import service as tenancy
from reachout.tenancy.schemas import SenderProfile

log = get_logger("dispatcher")

# Time for a claim to commit before its paced messages may go (see `routing.pacing.plan`).
PACING_LEAD_SECONDS = 0.05


@dataclass(frozen=True)
class Claim:
    """A batch a dispatcher leased: each message with its slot, and how each sender sends."""

    messages: list[ClaimedMessage]
    senders: dict[str, SenderProfile]
    looked_at: int  # due messages seen, leased or not: zero means the outbox had nothing due
    lease: Lease | None = None
    services: dict[str, str] = field(default_factory=dict)  # use case id → its Twilio Messaging Service

    def messaging_service(self, message: ClaimedMessage) -> str | None:
        """The Messaging Service a message goes through: its use case's, else its sender's project's."""
        sender = self.senders.get(message.from_number)
        by_use_case = None if message.use_case_id is None else self.services.get(message.use_case_id)
        return by_use_case or (None if sender is None else sender.messaging_service_sid)


async def claim(
    session: AsyncSession,
    clock: Clock,
    owner: str,
    lease: timedelta,
    horizon: float,
    limit: int,
    *,
    failures: DeliveryFailures | None = None,
) -> Claim:
    """Lease the due messages whose senders' pace lets them go within `horizon` seconds.

    First `release` re-checks what must still hold (quiet hours, consent, the use case) and gives sends
    through a use case their senders. The rest are deferred to when their turn would come, and any past its
    validity period is canceled (30036), all in the caller's transaction; `failures` hears of those ended.
    """
    now = clock.now()
    due = await repository.due_for_dispatch(session, now, limit)
    if not due:
        return Claim([], {}, 0)
    looked_at = len(due)
    released = await release(session, due, now)
    due = released.ready
    # Time held for the recipient's sake does not count against the validity period.
    await repository.hold(
        session,
        [(m.id, opens, m.expires_at and m.expires_at + (opens - now)) for m, opens in released.held],
    )
    for failure, message_ids in sorted(released.failed.items(), key=lambda item: item[0].code):
        await fail(session, message_ids, failure, now, owner, failures=failures)
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
    taken = Lease.take(owner, now + lease + timedelta(seconds=horizon))
    claimed = await repository.lease(session, slots, taken)
    await repository.defer(session, {slot.id: _instant(slot.at) for slot in plan.deferred})
    await fail(session, plan.expired, VALIDITY_EXPIRED, now, owner, failures=failures)
    if log.is_enabled_for(logging.DEBUG):
        paced = {message.id for message in due if _lines(senders.get(message.from_number or ""))}
        log_after_commit(session, log, _claim_lines(looked_at, released.held, plan, paced, taken, now))
    return Claim(claimed, senders, looked_at, taken, released.services)


def _claim_lines(
    looked_at: int,
    held: Sequence[tuple[DueMessage, datetime]],
    plan: pacing.Plan,
    paced: set[str],
    lease: Lease,
    now: datetime,
) -> list[LogLine]:
    """What a claim decided, for the debug log: its sizes and lease, then each pacing decision."""
    lines: list[LogLine] = [
        (
            logging.DEBUG,
            "dispatch claimed",
            {
                "looked_at": looked_at,
                "leased": len(plan.slots),
                "deferred": len(plan.deferred),
                "held": len(held),
                "expired": len(plan.expired),
                "lease": lease.token,
                "lease_until": lease.until.isoformat(),
            },
        )
    ]
    at = now.timestamp()
    lines.extend(
        (logging.DEBUG, "message paced", {"message_id": slot.id, "wait_ms": round((slot.at - at) * 1000)})
        for slot in plan.slots
        if slot.id in paced
    )
    lines.extend(
        (
            logging.DEBUG,
            "message deferred by its sender's pace",
            {
                "message_id": slot.id,
                "until": _instant(slot.at).isoformat(),
                "in_seconds": round(slot.at - at, 3),
            },
        )
        for slot in plan.deferred
    )
    lines.extend(
        (logging.DEBUG, "message held for quiet hours", {"message_id": m.id, "until": opens.isoformat()})
        for m, opens in held
    )
    return lines


def _lines(sender: SenderProfile | None) -> tuple[pacing.Line, ...]:
    if sender is None:
        return ()
    return pacing.lines_for(sender.number, sender.throughput_mps, sender.brand, sender.brand_throughput_mps)


def _instant(epoch_seconds: float) -> datetime:
    return datetime.fromtimestamp(epoch_seconds, UTC)


async def fail(
    session: AsyncSession,
    message_ids: Sequence[str],
    failure: CarrierFailure,
    now: datetime,
    worker: str,
    *,
    failures: DeliveryFailures | None = None,
) -> None:
    """End messages the dispatcher will not send (past their validity, or no sender), before any carrier."""
    await apply_statuses(
        session,
        [failure_report(message_id, failure, now, worker) for message_id in message_ids],
        also={message_id: MessageChange(message_id, settled=True) for message_id in message_ids},
        failures=failures,
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
