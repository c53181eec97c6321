"""All SQL of routing: the pacing rows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from reachout.db.upsert import insert_for
from reachout.routing.models import PacingState


async def lock_arrivals(session: AsyncSession, keys: Sequence[str]) -> dict[str, float]:
    """The TAT of each pacing key, its row locked until the transaction ends (created free if missing).

    Rows are locked in key order, so two workers pacing overlapping senders cannot deadlock; a row another
    worker holds is waited for, and read as that worker left it.
    """
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    found = await _lock(session, wanted)
    missing = [key for key in wanted if key not in found]
    if missing:
        # A free line has a TAT in the past. Another worker may be creating the same rows: DO NOTHING waits
        # for its transaction, and the lock below then reads what it stored.
        await session.execute(
            insert_for(session, PacingState).on_conflict_do_nothing(index_elements=["key"]),
            [{"key": key, "theoretical_arrival": 0.0} for key in missing],
        )
        found.update(await _lock(session, missing))
    return found


async def _lock(session: AsyncSession, keys: Sequence[str]) -> dict[str, float]:
    result = await session.execute(
        select(PacingState.key, PacingState.theoretical_arrival)
        .where(PacingState.key.in_(keys))
        .order_by(PacingState.key)
        .with_for_update()
    )
    return {key: tat for key, tat in result}


async def save_arrivals(session: AsyncSession, arrivals: Mapping[str, float]) -> None:
    """Store new TATs for rows this transaction locked."""
    for key, tat in sorted(arrivals.items()):
        await session.execute(
            update(PacingState)
            .where(PacingState.key == key)
            .values(theoretical_arrival=tat)
            .execution_options(synchronize_session=False)
        )
