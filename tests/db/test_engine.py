"""SQLite runs in WAL mode with foreign keys on; timestamps come back as aware UTC on both backends."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text

from reachout.db.engine import open_database
from tests.support import databases
from tests.support.polyai import send
from tests.support.service import Service, messages


async def test_sqlite_connections_use_wal_and_foreign_keys(sqlite_template: Path, tmp_path: Path) -> None:
    database = open_database(databases.sqlite_copy(sqlite_template, tmp_path))
    try:
        async with database.read() as session:
            assert (await session.execute(text("PRAGMA journal_mode"))).scalar_one() == "wal"
            assert (await session.execute(text("PRAGMA foreign_keys"))).scalar_one() == 1
            assert (await session.execute(text("PRAGMA synchronous"))).scalar_one() == 1  # NORMAL
    finally:
        await database.dispose()


async def test_writes_run_on_the_event_loop_thread_and_reads_on_a_helper(
    sqlite_template: Path, tmp_path: Path
) -> None:
    database = open_database(databases.sqlite_copy(sqlite_template, tmp_path))

    def register(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.create_function("executing_thread", 0, threading.get_ident)

    for engine in (database.writer_engine, database.reader_engine):
        event.listen(engine.sync_engine, "connect", register)
    try:
        async with database.write.begin() as session:
            writer_thread = (await session.execute(text("SELECT executing_thread()"))).scalar_one()
            assert (await session.execute(text("PRAGMA foreign_keys"))).scalar_one() == 1
        async with database.read() as session:
            reader_thread = (await session.execute(text("SELECT executing_thread()"))).scalar_one()
    finally:
        await database.dispose()
    assert writer_thread == threading.get_ident()
    assert reader_thread != threading.get_ident()


def test_an_in_memory_sqlite_database_is_refused() -> None:
    with pytest.raises(ValueError, match="database file"):
        open_database("sqlite+aiosqlite:///:memory:")


async def test_timestamps_round_trip_as_aware_utc(service: Service) -> None:
    assert await send(service) == 202
    [message] = await messages(service)
    assert message.created_at == service.clock.now()
    assert message.created_at.tzinfo is not None and message.created_at.utcoffset() == UTC.utcoffset(None)
    assert isinstance(message.created_at, datetime)
