"""All SQL of compliance."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import bindparam, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from reachout.compliance.models import AutoReplyMark, OptOut
from reachout.db.base import table_of
from reachout.db.upsert import insert_for

# Built once: every accept batch asks, and building the statement cost more than running it.
_OPTED_OUT = select(OptOut.number).where(
    OptOut.project_id == bindparam("project_id"), OptOut.number.in_(bindparam("numbers", expanding=True))
)


async def opted_out_numbers(session: AsyncSession, project_id: str, numbers: Iterable[str]) -> set[str]:
    """Which of these numbers have opted out of the project's messages."""
    wanted = sorted(set(numbers))
    if not wanted:
        return set()
    rows = await session.execute(_OPTED_OUT, {"project_id": project_id, "numbers": wanted})
    return set(rows.scalars())


async def get_opt_out(session: AsyncSession, project_id: str, number: str) -> OptOut | None:
    return await session.get(OptOut, (project_id, number))


async def add_opt_out(
    session: AsyncSession, project_id: str, number: str, keyword: str, at: datetime
) -> bool:
    """Store an opt-out; False if another transaction stored it first."""
    # Two transactions may record the same opt-out at once (a carrier's 21610 beside a STOP): the first wins.
    result = await session.execute(
        insert_for(session, OptOut)
        .values(project_id=project_id, number=number, keyword=keyword, opted_out_at=at)
        .on_conflict_do_nothing(index_elements=["project_id", "number"])
    )
    return bool(getattr(result, "rowcount", 1))


async def remove_opt_out(session: AsyncSession, project_id: str, number: str) -> bool:
    """Forget an opt-out; False if there was none."""
    result = await session.execute(
        delete(OptOut).where(OptOut.project_id == project_id, OptOut.number == number)
    )
    return bool(getattr(result, "rowcount", 1))


async def mark_auto_reply(
    session: AsyncSession, project_id: str, number: str, kind: str, now: datetime, unless_since: datetime
) -> bool:
    """Record an automatic answer now, unless one of this kind went to this person after `unless_since`;
    whether it was recorded. One statement, so two webhooks racing for the same person cannot both win."""
    table = table_of(AutoReplyMark)
    statement = (
        insert_for(session, table)
        .values(project_id=project_id, number=number, kind=kind, sent_at=now)
        .on_conflict_do_update(
            index_elements=["project_id", "number", "kind"],
            set_={"sent_at": now},
            where=table.c.sent_at <= unless_since,
        )
        .returning(table.c.sent_at)
    )
    return (await session.execute(statement)).first() is not None
