"""`db.bulk`: `update_rows` sets each row's columns on the row with its key, whatever mix of columns the rows
carry, None included, and leaves rows not named alone; `insert_rows` inserts, skips or replaces on a taken key
and says how many went in, converting values as the ORM would; a column with a Python default may not be
left out."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.sqlite import DATETIME

from reachout.carriers.sandbox.models import SandboxMessage
from reachout.conversations import repository as conversations
from reachout.conversations.models import Conversation
from reachout.conversations.schemas import NewConversation, SessionKey
from reachout.db import bulk
from reachout.db.base import UTCDateTime, table_of
from reachout.db.engine import Database
from reachout.delivery.channels import Channel
from reachout.events.models import Event
from reachout.routing.models import StickySender

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


def sticky(recipient: str, sender: str, at: datetime = AT) -> dict[str, object]:
    return {"project_id": "clinic", "recipient": recipient, "sender": sender, "last_used": at}


async def stored_sticky(database: Database) -> dict[str, tuple[str, datetime]]:
    async with database.read() as session:
        rows = (await session.execute(select(StickySender))).scalars()
        return {r.recipient: (r.sender, r.last_used) for r in rows}


async def test_insert_rows_skips_or_replaces_a_taken_key_and_counts_what_went_in(database: Database) -> None:
    table, key = table_of(StickySender), ("project_id", "recipient")
    counted = database.writer_engine.dialect.supports_sane_multi_rowcount
    async with database.write.begin() as session:
        went_in = await bulk.insert_rows(session, table, [sticky("+1", "+100"), sticky("+2", "+200")])
    assert went_in == (2 if counted else -1)
    later = datetime(2026, 3, 2, tzinfo=UTC)
    async with database.write.begin() as session:
        skipped = await bulk.insert_rows(
            session, table, [sticky("+1", "+999", later), sticky("+3", "+300")], on_conflict=key
        )
    assert skipped == (1 if counted else -1)
    assert await stored_sticky(database) == {"+1": ("+100", AT), "+2": ("+200", AT), "+3": ("+300", AT)}
    async with database.write.begin() as session:
        await bulk.insert_rows(
            session, table, [sticky("+2", "+222", later)], on_conflict=key, replace=("sender", "last_used")
        )
    assert (await stored_sticky(database))["+2"] == ("+222", later)


async def test_insert_rows_converts_json_and_timestamps_as_the_orm_reads_them(database: Database) -> None:
    key = SessionKey("clinic", Channel.SMS, "+14155550100", "+14155550199")
    agent = {"kind": "pathway", "nested": [1, "two", None]}
    async with database.write.begin() as session:
        await conversations.insert_many(
            session, [NewConversation("conv-1", key, AT, agent=agent, metadata={"ref": "é"})]
        )
    async with database.read() as session:
        stored = (await session.execute(select(Conversation))).scalar_one()
    assert (stored.agent, stored.metadata_, stored.opened_at) == (agent, {"ref": "é"}, AT)
    assert stored.ended_at is None


async def test_insert_rows_refuses_to_leave_out_a_column_with_a_python_default(database: Database) -> None:
    row_without_details = {
        "id": "e",
        "type": "message.sent",
        "project_id": None,
        "message_id": "m",
        "conversation_id": None,
        "source": "test",
        "occurred_at": AT,
        "data": {},
    }
    async with database.write.begin() as session:
        with pytest.raises(TypeError, match="must give details"):
            await bulk.insert_rows(session, table_of(Event), [row_without_details])


@given(st.datetimes(timezones=st.timezones()))
def test_sqlite_stores_a_timestamp_in_utc_as_sqlalchemy_writes_it_and_reads_it_back(value: datetime) -> None:
    dialect = sqlite.dialect()
    utc = value.astimezone(UTC)
    stored = UTCDateTime().bind_processor(dialect)(value)
    assert stored == DATETIME().bind_processor(dialect)(utc.replace(tzinfo=None))
    assert UTCDateTime().result_processor(dialect, None)(stored) == utc
