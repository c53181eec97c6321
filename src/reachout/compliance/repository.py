"""All SQL of compliance."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from reachout.compliance.models import OptOut
from reachout.db.upsert import insert_for


async def opted_out_numbers(session: AsyncSession, project_id: str, numbers: Iterable[str]) -> set[str]:
    """Which of these numbers have opted out of the project's messages."""
    wanted = sorted(set(numbers))
    if not wanted:
        return set()
    rows = await session.execute(
        select(OptOut.number).where(OptOut.project_id == project_id, OptOut.number.in_(wanted))
    )
    return set(rows.scalars())


async def get_opt_out(session: AsyncSession, project_id: str, number: str) -> OptOut | None:
    return await session.get(OptOut, (project_id, number))


async def add_opt_out(
    session: AsyncSession, project_id: str, number: str, keyword: str, at: datetime
) -> None:
    # Two transactions may record the same opt-out at once (a carrier's 21610 beside a STOP): the first wins.
    await session.execute(
        insert_for(session, OptOut)
        .values(project_id=project_id, number=number, keyword=keyword, opted_out_at=at)
        .on_conflict_do_nothing(index_elements=["project_id", "number"])
    )


async def remove_opt_out(session: AsyncSession, project_id: str, number: str) -> None:
    await session.execute(delete(OptOut).where(OptOut.project_id == project_id, OptOut.number == number))
