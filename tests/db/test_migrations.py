"""The migrations produce exactly the schema the models describe, on each backend."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from reachout.db.engine import open_database
from reachout.tables import metadata


async def test_models_and_migrations_agree(database_url: str) -> None:
    database = open_database(database_url)
    try:
        async with database.writer_engine.connect() as connection:
            differences = await connection.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
            )
    finally:
        await database.dispose()
    assert differences == []
