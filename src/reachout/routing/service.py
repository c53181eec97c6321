"""Routing use cases: choosing senders (a greeting's from its project's numbers, a use case's from its pool)
against each person's one number in the project, and pacing a batch of due messages against the shared state
of their lines."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from sqlalchemy.ext.asyncio import AsyncSession

from reachout.phones.numbers import PhoneNumber, parse_e164
from reachout.routing import pacing, repository
from reachout.routing.selection import (
    Choice,
    Policy,
    PoolSender,
    Reason,
    StickyMapping,
    choose_pool_sender,
    choose_project_sender,
    holds,
    refreshed,
)
from reachout.tenancy.schemas import UseCaseView

Key = tuple[str, str]  # (project id, recipient): the person whose number a mapping keeps


@dataclass(frozen=True)
class PoolSend:
    """A message to send through a use case's pool, its sender not chosen yet; `available` is the pool's
    numbers able to send it now (its project's, with the channel)."""

    message_id: str
    use_case: UseCaseView
    recipient: str
    available: frozenset[str]

    @property
    def key(self) -> Key:
        return (self.use_case.project_id, self.recipient)

    @property
    def sticky(self) -> bool:
        """Whether the person's number binds this send: a use case without sticky sender neither follows
        nor moves it."""
        return self.use_case.sticky_sender


@dataclass(frozen=True)
class ProjectSend:
    """A first message from one of its project's `candidates`: `requested` is the number it names, if any,
    and `latest` the number of the person's most recent conversation."""

    message_id: str
    project_id: str
    recipient: str
    candidates: tuple[str, ...]
    requested: str | None = None
    latest: str | None = None

    @property
    def key(self) -> Key:
        return (self.project_id, self.recipient)

    @property
    def sticky(self) -> bool:
        return True


Send = PoolSend | ProjectSend


async def choose_senders(
    session: AsyncSession, sends: Sequence[Send], backlog: Mapping[str, int], now: datetime
) -> dict[str, Choice | None]:
    """Choose each send's sender and record the person's number; None where no number can send it.

    A greeting's sender becomes the person's number. A sticky use case's send goes from the person's number
    while its pool holds it; a pool that lacks it picks by its policies and leaves the mapping on the person's
    number (not refreshed), so a later greeting, or a use case whose pool holds it, still goes from it. The
    pool's pick becomes their number only when they have none that holds (none yet, or idle for 8 days).

    `backlog` is how many messages already wait on each sender; each pool choice adds to it, so a batch
    spreads over the pool. Mappings are read under lock, and a first mapping another transaction stored
    meanwhile wins over this one's choice, so a person hears from one number however many processes send to
    them, through whichever dialect.
    """
    keys = sorted({send.key for send in sends if send.sticky})
    stored = await repository.lock_sticky(session, keys)
    mappings = dict(stored)
    load = dict(backlog)
    choices = _choose(sends, mappings, load, now)
    fresh = {key: mapping for key, mapping in mappings.items() if key not in stored}
    inserted = await repository.add_sticky_if_absent(session, fresh)
    held = dict(stored) | {key: fresh[key] for key in inserted}  # what the table holds now
    lost = sorted(set(fresh) - inserted)
    if lost:
        theirs = await repository.lock_sticky(session, lost)
        held.update(theirs)
        for key in lost:
            mappings.pop(key, None)
        mappings.update(theirs)
        again = [send for send in sends if send.sticky and send.key in set(lost)]
        for send in again:  # their first choices are taken back before choosing again
            first = choices[send.message_id]
            if isinstance(send, PoolSend) and first is not None:
                load[first.sender] -= 1
        choices.update(_choose(again, mappings, load, now))
    await repository.save_sticky(
        session, {key: mapping for key, mapping in mappings.items() if held.get(key) != mapping}
    )
    return choices


def _choose(
    sends: Sequence[Send], mappings: dict[Key, StickyMapping], load: dict[str, int], now: datetime
) -> dict[str, Choice | None]:
    """The pure choice for each send, in order; each choice updates `mappings` and `load` as it goes."""
    choices: dict[str, Choice | None] = {}
    for send in sends:
        sticky = mappings.get(send.key)
        choice = _choose_one(send, sticky, load, now)
        choices[send.message_id] = choice
        if choice is not None and _pins(send, sticky, choice, now):
            # A later send to the same person in this batch sticks to this choice, as it would next time.
            mappings[send.key] = refreshed(sticky, choice.sender, now)
    return choices


def _pins(send: Send, sticky: StickyMapping | None, choice: Choice, now: datetime) -> bool:
    """Whether `choice` becomes (or stays, refreshed) the person's number; see `choose_senders`."""
    if isinstance(send, ProjectSend):
        return True
    return send.sticky and (choice.reason is Reason.STICKY or not holds(sticky, now))


def _choose_one(
    send: Send, sticky: StickyMapping | None, load: dict[str, int], now: datetime
) -> Choice | None:
    if isinstance(send, ProjectSend):
        return choose_project_sender(
            send.recipient, send.candidates, sticky, now, requested=send.requested, latest=send.latest
        )
    use_case = send.use_case
    pool = [PoolSender(_number(n), load.get(n, 0)) for n in use_case.sender_pool if n in send.available]
    policy = Policy(use_case.sticky_sender, use_case.area_code_geomatch)
    choice = choose_pool_sender(_number(send.recipient), pool, policy, sticky, now)
    if choice is not None:
        load[choice.sender] = load.get(choice.sender, 0) + 1
    return choice


@lru_cache(maxsize=65_536)  # pools and recipients repeat from batch to batch
def _number(e164: str) -> PhoneNumber:
    return parse_e164(e164)


async def pace(
    session: AsyncSession,
    due: Sequence[pacing.Due],
    now: Callable[[], float],
    horizon: float,
    lead: float,
) -> pacing.Plan:
    """Plan `due` (most urgent first) and store the lines it reserved, inside the caller's transaction.

    `now` is read once the lines' rows are locked, so the time spent waiting for them is not planned over.
    """
    keys = sorted({line.key for message in due for line in message.lines})
    arrivals = await repository.lock_arrivals(session, keys)
    plan = pacing.plan(due, arrivals, now(), horizon, lead)
    await repository.save_arrivals(session, plan.arrivals)
    return plan
