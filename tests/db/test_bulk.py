"""`db.bulk.update_rows`: each row's columns set on the row with its key, whatever mix of columns the rows
carry, None included; rows not named are left alone."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from reachout.carriers.sandbox.models import SandboxMessage
from reachout.db import bulk
from reachout.db.base import table_of
from reachout.db.engine import Database

AT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def row(n: int) -> SandboxMessage:
    return SandboxMessage(
        sid=f"SM{n:032x}",
        idempotency_key=f"key-{n}",
        direction="to_handset",
        from_number="+14155550100",
        to_number="+14155550199",
        body="hello",
        num_segments=1,
        final_status="delivered",
        final_error_code=None,
        reported_status=None,
        next_report_at=AT,
        created_at=AT,
    )


async def test_rows_of_different_shapes_are_each_written_to_their_own_row(database: Database) -> None:
    async with database.write.begin() as session:
        session.add_all([row(1), row(2), row(3)])
        await session.flush()
        ids = [
            m.id
            for m in (await session.execute(select(SandboxMessage).order_by(SandboxMessage.id))).scalars()
        ]
    later = datetime(2026, 3, 1, 9, 31, tzinfo=UTC)
    async with database.write.begin() as session:
        await bulk.update_rows(
            session,
            table_of(SandboxMessage),
            [
                {"id": ids[0], "reported_status": "sent", "next_report_at": later},
                {"id": ids[1], "reported_status": "delivered", "next_report_at": None},
                {"id": ids[0] + 1000, "reported_status": "sent"},  # no such row: nothing happens
            ],
        )
    async with database.read() as session:
        stored = {
            m.id: (m.reported_status, m.next_report_at)
            for m in (await session.execute(select(SandboxMessage))).scalars()
        }
    assert stored == {ids[0]: ("sent", later), ids[1]: ("delivered", None), ids[2]: (None, AT)}


async def test_a_row_with_nothing_but_its_key_and_no_rows_at_all_change_nothing(database: Database) -> None:
    async with database.write.begin() as session:
        session.add(row(1))
        await session.flush()
        (only,) = (await session.execute(select(SandboxMessage.id))).scalars()
    async with database.write.begin() as session:
        await bulk.update_rows(session, table_of(SandboxMessage), [{"id": only}])
        await bulk.update_rows(session, table_of(SandboxMessage), [])
    async with database.read() as session:
        stored = (await session.execute(select(SandboxMessage))).scalar_one()
    assert (stored.reported_status, stored.next_report_at) == (None, AT)
