"""Group commit: concurrent requests share one transaction, so one fsync acknowledges many accepts.

A request hands its command to `submit` and waits. A single runner drains whatever commands are queued,
runs them through the batch function in one transaction, commits, and only then answers each waiter —
so no 2xx ever precedes the commit of its row. While one batch commits, the next one fills up by itself.

The batch function returns one outcome per command: a result, or the `ReachoutError` that refused it.
It must decide every refusal before it writes, so a refused command leaves nothing behind. If the batch
fails unexpectedly, each command is retried alone, so one bad command cannot fail its neighbours.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from reachout.errors import ReachoutError
from reachout.logs import describe_error, get_logger

C = TypeVar("C")
R = TypeVar("R")

BatchFunction = Callable[[AsyncSession, Sequence[C]], Awaitable[Sequence[R | ReachoutError]]]

log = get_logger("group_commit")

CONFLICT_RETRIES = 3


class GroupCommitter(Generic[C, R]):
    """Runs commands through `work` in shared transactions, committing before anyone is answered."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], work: BatchFunction[C, R], *, max_batch: int
    ) -> None:
        self._sessions = sessions
        self._work = work
        self._max_batch = max_batch
        self._queue: asyncio.Queue[tuple[C, asyncio.Future[R]]] = asyncio.Queue()
        self._runner: asyncio.Task[None] | None = None

    async def submit(self, command: C) -> R:
        """Run one command; returns once its transaction has committed, or raises its refusal."""
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run(), name="group-commit")
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        await self._queue.put((command, future))
        return await future

    async def close(self) -> None:
        """Stop the runner once the queue is empty."""
        if self._runner is None:
            return
        await self._queue.join()
        self._runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._runner
        self._runner = None

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._commit(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _commit(self, batch: list[tuple[C, asyncio.Future[R]]], conflicts: int = 0) -> None:
        try:
            outcomes = await self._in_transaction([command for command, _ in batch])
        except Exception as error:
            if len(batch) == 1:
                if isinstance(error, IntegrityError) and conflicts < CONFLICT_RETRIES:
                    # Another process committed a conflicting row (say, the same user's open session) after
                    # this transaction read: a new transaction sees it and decides again.
                    await self._commit(batch, conflicts + 1)
                else:
                    _settle(batch[0][1], error)
                return
            # Scrubbed: a database error's message may echo the rows it refused (a person's number).
            log.warning(
                "batch failed; retrying its commands one by one", size=len(batch), error=describe_error(error)
            )
            for item in batch:
                await self._commit([item])
            return
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            _settle(future, outcome)

    async def _in_transaction(self, commands: list[C]) -> Sequence[R | ReachoutError]:
        async with self._sessions.begin() as session:
            return await self._work(session, commands)


def _settle(future: asyncio.Future[R], outcome: R | BaseException) -> None:
    if future.done():  # the caller went away; its command still committed
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
