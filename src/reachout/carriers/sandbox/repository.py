"""All SQL of the sandbox carrier."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from reachout.carriers.sandbox.models import SandboxMessage
from reachout.db import bulk
from reachout.db.base import table_of
from reachout.kit.jobs import repository as jobs


# The records of a batch's messages are NamedTuples (reachout.kit.records).
class NewSend(NamedTuple):
    """A send the sandbox accepted, to store under its sender's reference (`idempotency_key`)."""

    sid: str
    idempotency_key: str
    direction: str
    from_number: str
    to_number: str
    body: str
    num_segments: int
    final_status: str
    final_error_code: int | None
    next_report_at: datetime
    created_at: datetime


_SEND_COLUMNS = NewSend._fields


async def insert_once(session: AsyncSession, rows: Sequence[NewSend]) -> list[str]:
    """Store sends unless one with the same idempotency key exists; return each one's stored sid, in order."""
    if not rows:
        return []
    inserted = await bulk.insert_rows(
        session,
        table_of(SandboxMessage),
        [{name: getattr(row, name) for name in _SEND_COLUMNS} for row in rows],
        on_conflict=("idempotency_key",),
    )
    if inserted == len(rows):
        return [row.sid for row in rows]
    # A repeated send (or a driver that does not count an executemany): the stored sids are the answer.
    stored = await session.execute(
        select(SandboxMessage.idempotency_key, SandboxMessage.sid).where(
            SandboxMessage.idempotency_key.in_([row.idempotency_key for row in rows])
        )
    )
    sid_of: dict[str | None, str] = {key: sid for key, sid in stored}
    return [sid_of[row.idempotency_key] for row in rows]


async def sid_for_key(session: AsyncSession, key: str) -> str | None:
    """The sid of the send stored under an idempotency key, if any."""
    result = await session.execute(select(SandboxMessage.sid).where(SandboxMessage.idempotency_key == key))
    return result.scalar_one_or_none()


def add(session: AsyncSession, row: SandboxMessage) -> None:
    session.add(row)


class DueReport(NamedTuple):
    """A send whose next status report is due, with what the report needs."""

    id: int
    sid: str
    idempotency_key: str | None
    from_number: str
    num_segments: int
    final_status: str
    final_error_code: int | None
    reported_status: str | None
    created_at: datetime


class ReportMark(NamedTuple):
    """A report made: the status it reported, and when the next one is due (None: it was the last)."""

    id: int
    reported_status: str
    next_report_at: datetime | None


_DUE_COLUMNS = tuple(getattr(SandboxMessage, name) for name in DueReport._fields)


async def due_for_report(session: AsyncSession, now: datetime, limit: int) -> list[DueReport]:
    """Sends whose next status report is due, locked so only one worker reports each."""
    # The reports are made in the caller's transaction, so the row locks are all the hold it needs.
    rows = await jobs.lock_due(session, SandboxMessage.next_report_at, now, limit, columns=_DUE_COLUMNS)
    return [DueReport._make(row) for row in rows]  # the columns are the fields, in order


async def mark_reported(session: AsyncSession, marks: Sequence[ReportMark]) -> None:
    """Record reports made."""
    rows = [
        {"id": mark.id, "reported_status": mark.reported_status, "next_report_at": mark.next_report_at}
        for mark in marks
    ]
    await bulk.update_rows(session, table_of(SandboxMessage), rows)


async def handset_history(session: AsyncSession, number: str, limit: int) -> Sequence[SandboxMessage]:
    """What a handset received and sent, oldest first."""
    result = await session.execute(
        select(SandboxMessage)
        .where(or_(SandboxMessage.to_number == number, SandboxMessage.from_number == number))
        .order_by(SandboxMessage.id)
        .limit(limit)
    )
    return result.scalars().all()
