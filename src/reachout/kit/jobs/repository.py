"""The SQL of leased work, written once for every table that holds it (messages, conversation jobs, …).

A table takes part by naming its columns in a `JobTable`: the id, when the row is next due, how many
attempts it has had, and the lease (owner token and expiry). A claim moves a row's due time to the lease's
end, so a crashed worker's rows come due again by themselves through the same index.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from reachout.kit.jobs.leases import Lease


@dataclass(frozen=True)
class JobTable:
    """The columns of a table whose rows are claimed under leases."""

    entity: type[Any]
    id: InstrumentedAttribute[Any]
    due: InstrumentedAttribute[Any]
    attempts: InstrumentedAttribute[Any]
    lease_owner: InstrumentedAttribute[Any]
    lease_expires_at: InstrumentedAttribute[Any]


async def lock_due(
    session: AsyncSession,
    due: InstrumentedAttribute[Any],
    now: datetime,
    limit: int,
    *,
    columns: Sequence[Any],
    where: Sequence[ColumnElement[bool]] = (),
    order_by: Sequence[Any] = (),
) -> Sequence[Row[Any]]:
    """Lock up to `limit` rows whose `due` time has come, in `order_by` (else by `due`), skipping rows
    another transaction holds. Work done in the caller's transaction needs no more; work after it, a lease."""
    statement = (
        select(*columns)
        .where(due <= now, *where)
        .order_by(*(order_by or (due,)))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return (await session.execute(statement)).all()


async def lease(
    session: AsyncSession, jobs: JobTable, ids: Iterable[Any], lease: Lease, *, returning: Sequence[Any] = ()
) -> Sequence[Row[Any]]:
    """Stamp `lease` on locked rows and count the attempt; returns `returning` of each (in no order)."""
    wanted = list(ids)
    if not wanted:
        return []
    result = await session.execute(
        update(jobs.entity)
        .where(jobs.id.in_(bindparam("ids", expanding=True)))  # bound whole, not coerced one by one
        .values(
            {
                jobs.lease_owner: lease.token,
                jobs.lease_expires_at: lease.until,
                jobs.due: lease.until,
                jobs.attempts: jobs.attempts + 1,
            }
        )
        .returning(*(returning or (jobs.id,)))
        .execution_options(synchronize_session=False),
        {"ids": wanted},
    )
    return result.all()


async def held(session: AsyncSession, jobs: JobTable, ids: Iterable[Any], token: str) -> set[Any]:
    """Which of these rows `token`'s lease still holds, locked until the transaction ends.

    A row another claim took since, or one moved or finished meanwhile, is not among them: whatever the
    caller learned under the old lease must not be written over it.
    """
    wanted = sorted(set(ids))
    if not wanted:
        return set()
    result = await session.execute(
        select(jobs.id)
        .where(jobs.id.in_(bindparam("ids", expanding=True)), jobs.lease_owner == token)
        .order_by(jobs.id)  # one lock order for every worker
        .with_for_update(),
        {"ids": wanted},
    )
    return set(result.scalars())


async def release(session: AsyncSession, jobs: JobTable, due: Mapping[Any, datetime | None]) -> None:
    """End the lease on rows `held` found in this transaction, each next due at its instant (None: never)."""
    if not due:
        return
    table = jobs.entity.__table__
    await session.execute(
        update(table)
        .where(table.c[jobs.id.key] == bindparam("row_id"))
        .values(
            {jobs.lease_owner.key: None, jobs.lease_expires_at.key: None, jobs.due.key: bindparam("due_at")}
        ),
        [{"row_id": row_id, "due_at": at} for row_id, at in due.items()],
    )


async def finish(session: AsyncSession, jobs: JobTable, ids: Iterable[Any], token: str) -> None:
    """Delete rows whose work is done, if `token`'s lease still holds them."""
    wanted = list(ids)
    if wanted:
        await session.execute(
            delete(jobs.entity)
            .where(jobs.id.in_(wanted), jobs.lease_owner == token)
            .execution_options(synchronize_session=False)
        )


def unleased(jobs: JobTable) -> dict[str, None]:
    """The lease columns' values for a row no one holds (its work done, or moved to a new time)."""
    return {jobs.lease_owner.key: None, jobs.lease_expires_at.key: None}
