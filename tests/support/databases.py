"""Test databases: a migrated SQLite template copied per test, and one PostgreSQL database per run."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url

from reachout.db import migrate
from reachout.db.engine import Database
from reachout.tables import metadata

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"


def postgres_admin_url() -> str:
    return os.environ.get("REACHOUT_TEST_POSTGRES_URL", DEFAULT_POSTGRES)


async def _postgres_answers(url: str) -> str | None:
    try:
        connection = await asyncpg.connect(url, timeout=3)
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    await connection.close()
    return None


def postgres_unavailable_reason() -> str | None:
    """None when PostgreSQL answers; otherwise why not."""
    return asyncio.run(_postgres_answers(postgres_admin_url()))


def sqlalchemy_url(plain: str, database: str) -> str:
    url = make_url(plain).set(drivername="postgresql+asyncpg", database=database)
    return url.render_as_string(hide_password=False)


@contextmanager
def postgres_database() -> Iterator[str]:
    """Create a migrated PostgreSQL database for this run and drop it afterwards."""
    admin = postgres_admin_url()
    name = f"reachout_test_{uuid.uuid4().hex[:12]}"

    async def run(sql: str) -> None:
        connection = await asyncpg.connect(admin)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    url = sqlalchemy_url(admin, name)
    try:
        migrate.upgrade(url)
        yield url
    finally:
        asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def sqlite_template(directory: Path) -> Path:
    """A migrated SQLite file to copy for each test."""
    path = directory / "template.db"
    migrate.upgrade(f"sqlite+aiosqlite:///{path}")
    return path


def sqlite_copy(template: Path, directory: Path) -> str:
    target = directory / "reachout.db"
    shutil.copyfile(template, target)
    return f"sqlite+aiosqlite:///{target}"


async def truncate_all(url: str) -> None:
    """Empty every table of a PostgreSQL test database (alembic_version excepted)."""
    tables = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(plain)
    try:
        await connection.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    finally:
        await connection.close()


async def until_a_transaction_waits_for_a_lock(database: Database, timeout: float = 10.0) -> None:
    """Return once a transaction on this PostgreSQL database waits for a row lock another one holds."""
    deadline = asyncio.get_running_loop().time() + timeout
    query = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )
    while True:
        async with database.read() as session:
            if (await session.execute(query)).scalar_one():
                return
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"no transaction waited for a lock within {timeout}s")
        await asyncio.sleep(0.01)
