"""All SQL of routing: the pacing rows and the sticky senders (one per project and person)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from reachout.db import bulk
from reachout.db.base import table_of
from reachout.db.upsert import insert_for
from reachout.routing.models import PacingState, StickySender
from reachout.routing.selection import StickyMapping

_STICKY = table_of(StickySender)
_STICKY_KEY = ("project_id", "recipient")
# Built once, as the accept path runs it for every batch: IN over the batch's projects and recipients.
_LOCK_STICKY = (
    select(_STICKY.c.project_id, _STICKY.c.recipient, _STICKY.c.sender, _STICKY.c.last_used)
    .where(
        _STICKY.c.project_id.in_(bindparam("projects", expanding=True)),
        _STICKY.c.recipient.in_(bindparam("recipients", expanding=True)),
    )
    .order_by(_STICKY.c.project_id, _STICKY.c.recipient)  # one lock order, so two batches cannot deadlock
    .with_for_update()
)


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
    wanted = set(keys)
    if not wanted:
        return {}
    rows = await session.execute(
        _LOCK_STICKY,
        {"projects": sorted({p for p, _ in wanted}), "recipients": sorted({r for _, r in wanted})},
    )
    # The two INs may also match (and lock) a recipient's row in another project of the batch: harmless.
    return {
        (project_id, recipient): StickyMapping(sender, last_used)
        for project_id, recipient, sender, last_used in rows
        if (project_id, recipient) in wanted
    }


async def add_sticky_if_absent(
    session: AsyncSession, mappings: Mapping[tuple[str, str], StickyMapping]
) -> set[tuple[str, str]]:
    """Store these first mappings where none exists yet; returns the keys stored (another's first one stands).

    A mapping another transaction is storing at the same time is waited for, then left as it stored it.
    """
    if not mappings:
        return set()
    rows = _sticky_rows(mappings)
    inserted = await bulk.insert_rows(session, _STICKY, rows, on_conflict=_STICKY_KEY)
    if inserted == len(rows):
        return set(mappings)
    # Some key was taken meanwhile, or the driver does not count an executemany: the table says whose stand.
    stored = await lock_sticky(session, mappings)
    return {key for key, mapping in mappings.items() if stored.get(key) == mapping}


async def save_sticky(session: AsyncSession, mappings: Mapping[tuple[str, str], StickyMapping]) -> None:
    """Record (or refresh) each (project, recipient)'s number, as chosen for it."""
    await bulk.insert_rows(
        session, _STICKY, _sticky_rows(mappings), on_conflict=_STICKY_KEY, replace=("sender", "last_used")
    )


def _sticky_rows(mappings: Mapping[tuple[str, str], StickyMapping]) -> list[dict[str, object]]:
    return [
        {"project_id": project_id, "recipient": recipient, "sender": m.sender, "last_used": m.last_used}
        for (project_id, recipient), m in sorted(mappings.items())
    ]
