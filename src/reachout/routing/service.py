"""Routing use cases: choosing senders from use-case pools, and pacing a batch of due messages against the
shared state of their lines."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from sqlalchemy.ext.asyncio import AsyncSession

from reachout.phones.numbers import PhoneNumber, parse_e164
from reachout.routing import pacing, repository
from reachout.routing.selection import Choice, Policy, PoolSender, StickyMapping, choose_pool_sender
from reachout.tenancy.schemas import UseCaseView


@dataclass(frozen=True)
class PoolSend:
    """A message to send through a use case's pool, its sender not chosen yet; `available` is the pool's
    numbers able to send it now (its project's, with the channel)."""

    message_id: str
    use_case: UseCaseView
    recipient: str
    available: frozenset[str]


Key = tuple[str, str]  # (use case id, recipient)


async def choose_senders(
    session: AsyncSession, sends: Sequence[PoolSend], backlog: Mapping[str, int], now: datetime
) -> dict[str, Choice | None]:
    """Choose each send's sender from its pool and record the sticky mappings; None where no number can.

    `backlog` is how many messages already wait on each sender; each choice adds to it, so a batch spreads
    over the pool. Mappings are read under lock, and a first mapping another worker stored meanwhile wins over
    this one's choice, so a person hears from one number however many workers send to them.
    """
    keys = sorted({(send.use_case.id, send.recipient) for send in sends})
    stored = await repository.lock_sticky(session, keys)
    mappings = dict(stored)
    load = dict(backlog)
    choices = _choose(sends, mappings, load, now)
    fresh = {key: mapping for key, mapping in mappings.items() if key not in stored}
    inserted = await repository.add_sticky_if_absent(session, fresh)
    lost = sorted(set(fresh) - inserted)
    if lost:
        mappings.update(await repository.lock_sticky(session, lost))
        again = [send for send in sends if (send.use_case.id, send.recipient) in set(lost)]
        choices.update(_choose(again, mappings, load, now))
    # What was just inserted is stored already; the rest is refreshed (last used now, maybe a new sender).
    changed = {
        key: mappings[key]
        for key in keys
        if key in mappings and not (key in inserted and mappings[key] == fresh[key])
    }
    await repository.save_sticky(session, changed)
    return choices


def _choose(
    sends: Sequence[PoolSend], mappings: dict[Key, StickyMapping], load: dict[str, int], now: datetime
) -> dict[str, Choice | None]:
    """The pure choice for each send, in order; each choice updates `mappings` and `load` as it goes."""
    choices: dict[str, Choice | None] = {}
    for send in sends:
        key = (send.use_case.id, send.recipient)
        use_case = send.use_case
        pool = [PoolSender(_number(n), load.get(n, 0)) for n in use_case.sender_pool if n in send.available]
        choice = choose_pool_sender(
            _number(send.recipient),
            pool,
            Policy(use_case.sticky_sender, use_case.area_code_geomatch),
            mappings.get(key),
            now,
        )
        choices[send.message_id] = choice
        if choice is not None:
            load[choice.sender] = load.get(choice.sender, 0) + 1
            # A later send to the same person in this batch sticks to this choice, as it would next time.
            mappings[key] = StickyMapping(choice.sender, now)
    return choices


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
