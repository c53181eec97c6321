"""Routing use cases: pacing a batch of due messages against the shared state of their lines."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from reachout.routing import pacing, repository


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
