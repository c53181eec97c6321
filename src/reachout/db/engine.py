"""Engines and session factories for SQLite (embedded) and PostgreSQL (production), one code path."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from reachout.db.inline_sqlite import inline_connector

SQLITE_BUSY_TIMEOUT_MS = 30_000

SUPPORTED_URLS = "sqlite+aiosqlite:///PATH or postgresql+asyncpg://USER@HOST:PORT/DATABASE"
# The one driver reachout runs each backend on: a URL naming the backend alone (`postgresql://`, as libpq
# and most hosting providers write it) gets it, and a URL naming another driver is refused.
_DRIVERS = {"sqlite": "aiosqlite", "postgresql": "asyncpg"}
_BACKEND_ALIASES = {"postgres": "postgresql"}


class UnsupportedDatabaseURL(ValueError):
    """A database URL reachout cannot open: not a URL, another database or driver, or no SQLite file."""


def _parse(url: str) -> URL:
    try:
        return make_url(url)
    except ArgumentError:
        # SQLAlchemy's message may quote the string, password included.
        raise UnsupportedDatabaseURL(f"the database URL is not a URL; use {SUPPORTED_URLS}") from None


def normalized_url(url: str) -> str:
    """The URL with reachout's driver for its database (`postgresql://` and `postgres://` use asyncpg)."""
    parsed = _parse(url)
    backend, _, driver = parsed.drivername.partition("+")
    backend = _BACKEND_ALIASES.get(backend, backend)
    expected = _DRIVERS.get(backend)
    if expected is None or driver not in ("", expected):
        shown = parsed.render_as_string(hide_password=True)
        raise UnsupportedDatabaseURL(f"reachout cannot open {shown}: use {SUPPORTED_URLS}")
    return parsed.set(drivername=f"{backend}+{expected}").render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    """Whether a database URL names SQLite."""
    return make_url(url).get_backend_name() == "sqlite"


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite database URL; None for PostgreSQL."""
    url = normalized_url(url)
    return Path(_sqlite_path(url)) if is_sqlite(url) else None


def remove_sqlite_database(url: str) -> list[Path]:
    """Delete a SQLite database: its file, write-ahead log and shared-memory index; returns what existed."""
    path = sqlite_file(url)
    if path is None:
        raise UnsupportedDatabaseURL(f"not a SQLite database: {describe_database(url)}")
    removed = []
    for file in (path, *(path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", "-journal"))):
        if file.exists():
            file.unlink()
            removed.append(file)
    return removed


def describe_database(url: str) -> str:
    """The database a URL names, for a message: its file, or its name, host and port; never a password."""
    url = normalized_url(url)
    if is_sqlite(url):
        return f"the SQLite database {_sqlite_path(url)}"
    parsed = make_url(url)
    where = "the local server" if parsed.host is None else f"{parsed.host}:{parsed.port or 5432}"
    return f'the PostgreSQL database "{parsed.database or parsed.username or ""}" on {where}'


def url_without_secrets(url: str) -> str:
    """A database URL as a log line may show it: driver, user, host, port and database, no password (and no
    query, where a password may be given too)."""
    parsed = make_url(normalized_url(url))
    bare = URL.create(parsed.drivername, parsed.username, None, parsed.host, parsed.port, parsed.database)
    return bare.render_as_string(hide_password=False)


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
        raise UnsupportedDatabaseURL(f"reachout needs a SQLite database file, not {url!r}")
    return path


def open_database(url: str, *, pool_size: int = 10) -> Database:
    """Create the engines for a database URL (`normalized_url`: its driver chosen) without connecting yet.

    Statement parameters are kept out of error messages (`hide_parameters`): they are phone numbers and
    message bodies, and an error's message ends up in the logs.
    """
    url = normalized_url(url)
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
