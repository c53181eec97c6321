"""SQLite connections whose calls run on the event loop's own thread, for the writer engine.

aiosqlite runs every call on a helper thread and hands the result back to the event loop: several hand-offs
per statement, each waiting its turn behind whatever the loop is doing. For SQLite in WAL mode with
`synchronous=NORMAL` a write does not wait for the disk, so a statement takes microseconds and the hand-offs
cost more than the work; under load the accept batch spent most of its time in them (bench/README.md).

The one thing that can make a write wait is another process holding SQLite's write lock (the worker beside
`reachout serve`, say). SQLite's own busy handler would sleep in the loop's thread, stalling every request
for milliseconds a try; so the writer's busy timeout is zero, and a call SQLite refuses as busy (it changed
nothing) is tried again after an `asyncio.sleep`, the loop serving requests meanwhile. Readers keep
aiosqlite's thread: a long read must not stall requests.

aiosqlite has no public switch for this: `InlineConnection` overrides its private `_execute`, which every
other call goes through; pyproject pins aiosqlite's minor version and tests/db/test_engine.py checks that
writes still run on the loop's thread.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import aiosqlite

BUSY_TIMEOUT_SECONDS = 30.0
FIRST_BUSY_WAIT_SECONDS = 0.0002
LONGEST_BUSY_WAIT_SECONDS = 0.005


class InlineConnection(aiosqlite.Connection):
    """An aiosqlite connection that runs each call at once, on the calling thread, and waits for another
    process's write lock without blocking the event loop."""

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        deadline, wait = loop.time() + BUSY_TIMEOUT_SECONDS, FIRST_BUSY_WAIT_SECONDS
        while True:
            if not self._running or not self._connection:
                raise ValueError("Connection closed")
            try:
                return fn(*args, **kwargs)
            except sqlite3.OperationalError as error:
                if error.sqlite_errorcode != sqlite3.SQLITE_BUSY or loop.time() > deadline:
                    raise
            await asyncio.sleep(wait)
            wait = min(wait * 2, LONGEST_BUSY_WAIT_SECONDS)


def inline_connector(path: str) -> Callable[[], Awaitable[aiosqlite.Connection]]:
    """An `async_creator` for SQLAlchemy's aiosqlite dialect that opens `path` with InlineConnection."""

    async def connect() -> aiosqlite.Connection:
        # The connection is opened on aiosqlite's thread and then used from the loop's: allowed explicitly.
        connection = InlineConnection(partial(sqlite3.connect, path, check_same_thread=False), 64)
        connection._thread.daemon = True  # as SQLAlchemy does for aiosqlite: never hold up interpreter exit
        return await connection

    return connect
