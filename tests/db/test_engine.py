"""SQLite runs in WAL mode with foreign keys on; timestamps come back as aware UTC on both backends."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

from reachout.db.engine import open_database
from tests.support import databases


async def test_sqlite_connections_use_wal_and_foreign_keys(sqlite_template: Path, tmp_path: Path) -> None:
    database = open_database(databases.sqlite_copy(sqlite_template, tmp_path))
    try:
        async with database.read() as session:
            assert (await session.execute(text("PRAGMA journal_mode"))).scalar_one() == "wal"
            assert (await session.execute(text("PRAGMA foreign_keys"))).scalar_one() == 1
            assert (await session.execute(text("PRAGMA synchronous"))).scalar_one() == 1  # NORMAL
    finally:
        await database.dispose()


async def test_timestamps_round_trip_as_aware_utc(service) -> None:  # type: ignore[no-untyped-def]
    from tests.messaging.test_pipeline import messages, send

    assert await send(service) == 202
    [message] = await messages(service)
    assert message.created_at == service.clock.now()
    assert message.created_at.tzinfo is not None and message.created_at.utcoffset() == UTC.utcoffset(None)
    assert isinstance(message.created_at, datetime)
