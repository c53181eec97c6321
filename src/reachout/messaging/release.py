"""What must hold before a due message may be paced and sent, checked again at the moment it is claimed.

A message can wait for hours after it was accepted (quiet hours, a busy sender, retries), and the world moves
on meanwhile: the person may opt out, the use case may lose its campaign or its numbers. So each claim
re-checks, in the claim's transaction: a first message whose recipient's quiet hours have begun waits for them
to end; one to a person who has opted out since is failed (21610); one through a use case that can no longer
send it is failed with the carrier code for why; and a send through a use case gets its sender from the pool.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from sqlalchemy.ext.asyncio import AsyncSession

from reachout.compliance import gates, quiet_hours
from reachout.delivery.channels import Channel
from reachout.delivery.failures import NO_POOL_SENDER, UNREGISTERED_SENDER, UNSUBSCRIBED, CarrierFailure
from reachout.errors import ErrorCode
from reachout.messaging import repository
from reachout.messaging.models import SendPriority
from reachout.messaging.schemas import DueMessage
from reachout.routing import service as routing
from reachout.tenancy import service as tenancy
from reachout.tenancy.schemas import ProjectView, UseCaseView

# Why a use case can no longer send what it accepted, as the carrier failure its message ends with.
WITHDRAWN: Final[dict[ErrorCode, CarrierFailure]] = {
    ErrorCode.USE_CASE_NOT_FOUND: NO_POOL_SENDER,
    ErrorCode.USE_CASE_INACTIVE: NO_POOL_SENDER,
    ErrorCode.NO_NUMBERS_PROVISIONED: NO_POOL_SENDER,
    ErrorCode.CAMPAIGN_NOT_VERIFIED: UNREGISTERED_SENDER,
    ErrorCode.BRAND_SUSPENDED: UNREGISTERED_SENDER,
}


@dataclass(frozen=True)
class Release:
    """A claim's due messages sorted out: those ready to pace (each with its sender), those held until an
    instant, and those to fail with a carrier code."""

    ready: list[DueMessage]
    held: list[tuple[DueMessage, datetime]] = field(default_factory=list)
    failed: dict[CarrierFailure, list[str]] = field(default_factory=dict)
    services: dict[str, str] = field(default_factory=dict)  # use case id → its Twilio Messaging Service


async def release(session: AsyncSession, due: Sequence[DueMessage], now: datetime) -> Release:
    """Sort out `due` (see the module docstring); sender choices are stored on the rows."""
    ready, held = _hold_for_quiet_hours(due, now)
    failed: dict[CarrierFailure, list[str]] = {}
    first = [m for m in ready if _is_first(m)]
    refusals = await gates.refuse_opted_out(
        session, [gates.Recipient(m.project_id or "", m.to_number) for m in first]
    )
    opted_out = {m.id for m, refusal in zip(first, refusals, strict=True) if refusal}
    if opted_out:
        failed[UNSUBSCRIBED] = sorted(opted_out)
        ready = [m for m in ready if m.id not in opted_out]
    ready, withdrawn, services = await _choose_pool_senders(session, ready, now)
    for message_id, failure in withdrawn.items():
        failed.setdefault(failure, []).append(message_id)
    return Release(ready, held, failed, services)


def _is_first(message: DueMessage) -> bool:
    # Replies go to people in a conversation, the confirmation of an opt-out among them.
    return message.priority == SendPriority.FIRST_MESSAGE and message.project_id is not None


def _hold_for_quiet_hours(
    due: Sequence[DueMessage], now: datetime
) -> tuple[list[DueMessage], list[tuple[DueMessage, datetime]]]:
    """Split off the messages whose recipients' sending window is closed, each with when it opens."""
    ready: list[DueMessage] = []
    held: list[tuple[DueMessage, datetime]] = []
    for message in due:
        opens = now
        if message.quiet_hours:
            opens = quiet_hours.opening_for(now, message.to_number)
        if opens > now:
            held.append((message, opens))
        else:
            ready.append(message)
    return ready, held


async def _choose_pool_senders(
    session: AsyncSession, due: Sequence[DueMessage], now: datetime
) -> tuple[list[DueMessage], dict[str, CarrierFailure], dict[str, str]]:
    """Check each send through a use case against the use case as it is now, and give it its sender from
    the pool if it has none yet; returns the messages ready, those withdrawn (with their codes), and the use
    cases' Messaging Services."""
    through = [m for m in due if m.use_case_id is not None]
    if not through:
        return list(due), {}, {}
    use_cases = await tenancy.use_cases(session, sorted({m.use_case_id for m in through if m.use_case_id}))
    projects = await _projects(session, use_cases.values())
    withdrawn: dict[str, CarrierFailure] = {}
    sends: list[routing.PoolSend] = []
    pools: set[str] = set()
    for message in through:
        use_case = use_cases.get(message.use_case_id or "")
        project = None if use_case is None else projects.get(use_case.project_id)
        if use_case is None or project is None:
            withdrawn[message.id] = NO_POOL_SENDER
            continue
        refusal, pool = gates.use_case_state(project, use_case, Channel.SMS)
        if refusal is not None:
            withdrawn[message.id] = WITHDRAWN[refusal.code]
        elif message.from_number is None:
            available = frozenset(n.number for n in pool)
            sends.append(routing.PoolSend(message.id, use_case, message.to_number, available))
            pools |= available
    choices = await routing.choose_senders(session, sends, await repository.backlog(session, pools), now)
    senders = {message_id: choice.sender for message_id, choice in choices.items() if choice is not None}
    withdrawn.update({message_id: NO_POOL_SENDER for message_id, c in choices.items() if c is None})
    await repository.set_senders(session, senders)
    ready = [m._replace(from_number=senders.get(m.id, m.from_number)) for m in due if m.id not in withdrawn]
    services = {
        use_case.id: use_case.messaging_service_sid
        for use_case in use_cases.values()
        if use_case.messaging_service_sid is not None
    }
    return ready, withdrawn, services


async def _projects(session: AsyncSession, use_cases: Iterable[UseCaseView]) -> dict[str, ProjectView]:
    found: dict[str, ProjectView] = {}
    for project_id in sorted({u.project_id for u in use_cases}):
        project = await tenancy.project(session, project_id)
        if project is not None:
            found[project_id] = project
    return found
