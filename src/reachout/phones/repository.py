"""All SQL of phones: the kept line-type answers."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from reachout.db.upsert import insert_for
from reachout.phones.models import LineTypeAnswer


async def kept_answer(session: AsyncSession, number: str, source: str) -> LineTypeAnswer | None:
    """What `source` last answered about `number`, if it was asked."""
    result = await session.execute(
        select(LineTypeAnswer).where(LineTypeAnswer.number == number, LineTypeAnswer.source == source)
    )
    return result.scalar_one_or_none()


async def keep_answer(session: AsyncSession, answer: LineTypeAnswer) -> None:
    """Store an answer, replacing an older one from the same source."""
    values = {
        "number": answer.number,
        "source": answer.source,
        "valid": answer.valid,
        "line_type": answer.line_type,
        "carrier_name": answer.carrier_name,
        "looked_up_at": answer.looked_up_at,
    }
    statement = insert_for(session, LineTypeAnswer).values(values)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["number", "source"],
            set_={name: value for name, value in values.items() if name not in ("number", "source")},
        )
    )
