"""SQLite connections whose calls run on the event loop's own thread, for the writer engine.

aiosqlite runs every call on a helper thread and hands the result back to the event loop: several hand-offs
per statement, each waiting its turn behind whatever the loop is doing. For SQLite in WAL mode with
`synchronous=NORMAL` a write does not wait for the disk, so a statement takes microseconds and the hand-offs
cost more than the work; under load the accept batch spent most of its time in them (bench/README.md).

The one thing that can make a write wait is another process holding SQLite's write lock; the writer then
blocks the loop for as long as that process's transaction lasts (milliseconds for reachout's own), where it
would otherwise block only its thread. Readers keep aiosqlite's thread: a long read must not stall requests.

aiosqlite has no public switch for this: `InlineConnection` overrides its private `_execute`, which every
other call goes through; pyproject pins aiosqlite's minor version and tests/db/test_engine.py checks that
writes still run on the loop's thread.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import aiosqlite


class InlineConnection(aiosqlite.Connection):
    """An aiosqlite connection that runs each call at once, on the calling thread."""

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)


def inline_connector(path: str) -> Callable[[], Awaitable[aiosqlite.Connection]]:
    """An `async_creator` for SQLAlchemy's aiosqlite dialect that opens `path` with InlineConnection."""

    async def connect() -> aiosqlite.Connection:
        # The connection is opened on aiosqlite's thread and then used from the loop's: allowed explicitly.
        connection = InlineConnection(partial(sqlite3.connect, path, check_same_thread=False), 64)
        connection._thread.daemon = True  # as SQLAlchemy does for aiosqlite: never hold up interpreter exit
        return await connection

    return connect
