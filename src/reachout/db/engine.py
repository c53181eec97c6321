"""Engines and session factories for SQLite (embedded) and PostgreSQL (production), one code path."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from reachout.db.inline_sqlite import inline_connector

SQLITE_BUSY_TIMEOUT_MS = 30_000


def is_sqlite(url: str) -> bool:
    """Whether a database URL names SQLite."""
    return make_url(url).get_backend_name() == "sqlite"


def _configure_sqlite(engine: AsyncEngine, *, immediate: bool, busy_timeout_ms: int) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin (see "begin" below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # A writer takes the lock up front: upgrading a read transaction to a write one fails at once
        # with SQLITE_BUSY when another process wrote in between, instead of waiting its turn.
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@dataclass(frozen=True)
class Database:
    """The engines of one database: `write` sessions may change data, `read` sessions never do."""

    url: str
    writer_engine: AsyncEngine
    reader_engine: AsyncEngine
    write: async_sessionmaker[AsyncSession]
    read: async_sessionmaker[AsyncSession]

    @property
    def is_sqlite(self) -> bool:
        return is_sqlite(self.url)

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.writer_engine.dispose()
        if self.reader_engine is not self.writer_engine:
            await self.reader_engine.dispose()


def _sqlite_path(url: str) -> str:
    path = make_url(url).database
    if not path or path == ":memory:":
        # The writer and the readers are separate connections: an in-memory database would be two databases.
        raise ValueError(f"reachout needs a SQLite database file, not {url!r}")
    return path


def open_database(url: str, *, pool_size: int = 10) -> Database:
    """Create the engines for a database URL without connecting yet.

    Statement parameters are kept out of error messages (`hide_parameters`): they are phone numbers and
    message bodies, and an error's message ends up in the logs.
    """
    if is_sqlite(url):
        # SQLite has one writer at a time. Queueing writers in the pool keeps them in order at no cost, where
        # several connections would contend inside SQLite, whose busy handler sleeps for milliseconds a try.
        writer = create_async_engine(
            url,
            pool_size=1,
            max_overflow=0,
            pool_timeout=60,
            async_creator=inline_connector(_sqlite_path(url)),
            hide_parameters=True,
        )
        # The writer waits for the lock itself, without blocking the loop (`inline_sqlite`).
        _configure_sqlite(writer, immediate=True, busy_timeout_ms=0)
        reader = create_async_engine(url, pool_size=4, max_overflow=4, hide_parameters=True)
        _configure_sqlite(reader, immediate=False, busy_timeout_ms=SQLITE_BUSY_TIMEOUT_MS)
    else:
        writer = create_async_engine(
            url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, hide_parameters=True
        )
        reader = writer
    return Database(
        url=url,
        writer_engine=writer,
        reader_engine=reader,
        write=async_sessionmaker(writer, expire_on_commit=False),
        read=async_sessionmaker(reader, expire_on_commit=False),
    )
