"""All SQL of routing: the pacing rows and the sticky senders (one per project and person)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from sqlalchemy import select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from reachout.db.upsert import insert_for
from reachout.routing.models import PacingState, StickySender
from reachout.routing.selection import StickyMapping

_ROWS_PER_INSERT: Final = 500  # 4 parameters a row, far below SQLite's and asyncpg's limits


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


async def lock_sticky(
    session: AsyncSession, keys: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], StickyMapping]:
    """The sticky sender of each (project, recipient) that has one, locked until the transaction ends."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    rows = await session.execute(
        select(StickySender)
        .where(tuple_(StickySender.project_id, StickySender.recipient).in_(wanted))
        .order_by(StickySender.project_id, StickySender.recipient)
        .with_for_update()
    )
    return {
        (row.project_id, row.recipient): StickyMapping(row.sender, row.last_used) for row in rows.scalars()
    }


async def add_sticky_if_absent(
    session: AsyncSession, mappings: Mapping[tuple[str, str], StickyMapping]
) -> set[tuple[str, str]]:
    """Store these first mappings where none exists yet; returns the keys stored (another's first one stands).

    A mapping another transaction is storing at the same time is waited for, then left as it stored it.
    """
    if not mappings:
        return set()
    rows = [
        {"project_id": project_id, "recipient": recipient, "sender": m.sender, "last_used": m.last_used}
        for (project_id, recipient), m in sorted(mappings.items())
    ]
    statement = (
        insert_for(session, StickySender)
        .on_conflict_do_nothing(index_elements=["project_id", "recipient"])
        .returning(StickySender.project_id, StickySender.recipient)
    )
    stored: set[tuple[str, str]] = set()
    # One multi-row VALUES per chunk: RETURNING with executemany is not portable across drivers, and a
    # statement per row would cost the accept path a round trip per new person.
    for start in range(0, len(rows), _ROWS_PER_INSERT):
        result = await session.execute(statement.values(rows[start : start + _ROWS_PER_INSERT]))
        stored.update((project_id, recipient) for project_id, recipient in result)
    return stored


async def save_sticky(session: AsyncSession, mappings: Mapping[tuple[str, str], StickyMapping]) -> None:
    """Record (or refresh) each (project, recipient)'s number, as chosen for it."""
    if not mappings:
        return
    rows = [
        {"project_id": project_id, "recipient": recipient, "sender": m.sender, "last_used": m.last_used}
        for (project_id, recipient), m in sorted(mappings.items())
    ]
    statement = insert_for(session, StickySender)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["project_id", "recipient"],
            set_={"sender": statement.excluded.sender, "last_used": statement.excluded.last_used},
        ),
        rows,
    )
