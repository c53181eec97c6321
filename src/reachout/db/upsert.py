"""INSERT ... ON CONFLICT, which SQLite and PostgreSQL both speak but SQLAlchemy builds per dialect."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.postgresql import Insert as PostgresInsert
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession


def insert_for(session: AsyncSession, table: Any) -> PostgresInsert | SqliteInsert:
    """An INSERT into `table` with `on_conflict_do_*` for the database the session is bound to."""
    if session.get_bind().dialect.name == "postgresql":
        return postgres_insert(table)
    return sqlite_insert(table)
