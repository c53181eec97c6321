"""The worker loop: drives conversation jobs, the dispatcher and the sandbox's reports until told to stop."""

from __future__ import annotations

import asyncio
import contextlib

from reachout.carriers.base import CarrierEvents
from reachout.carriers.sandbox.carrier import SandboxCarrier
from reachout.conversations.turns import ConversationWorker
from reachout.db.engine import Database
from reachout.logs import get_logger
from reachout.messaging.dispatcher import Dispatcher

log = get_logger("worker")

ERROR_PAUSE_SECONDS = 1.0


class Worker:
    """One worker's share of the background work; any number may run against one database."""

    def __init__(
        self,
        database: Database,
        dispatcher: Dispatcher,
        conversations: ConversationWorker,
        sandbox: SandboxCarrier | None,
        events: CarrierEvents,
        *,
        poll_seconds: float,
    ) -> None:
        self._database = database
        self._dispatcher = dispatcher
        self._conversations = conversations
        self._sandbox = sandbox
        self._events = events
        self._poll = poll_seconds
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Ask for a pass now rather than at the next poll (new work was just committed)."""
        self._wake.set()

    async def run_once(self) -> int:
        """One pass over every kind of work; returns how many items were handled."""
        # Turns first, so the replies they queue go out in this same pass. Hand-offs and the sandbox's reports
        # are independent transactions, so they overlap: the database works on one while this process
        # prepares the other.
        handled = await self._conversations.run_once()
        results = await asyncio.gather(
            self._dispatcher.dispatch_once(),
            self._sandbox_reports(),
            return_exceptions=True,  # a failing kind still lets the other finish before the pass ends
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return handled + sum(r for r in results if isinstance(r, int))

    async def _sandbox_reports(self) -> int:
        if self._sandbox is None:
            return 0
        async with self._database.write.begin() as session:
            reports = await self._sandbox.take_due_reports(session)
            await self._events.statuses(session, reports)
        return len(reports)

    async def run(self, stop: asyncio.Event) -> None:
        """Work until `stop` is set; sleeps only when a pass found nothing to do."""
        log.info("worker running", poll_seconds=self._poll)
        while not stop.is_set():
            self._wake.clear()  # before the pass, so a wake-up during it is not lost
            try:
                handled = await self.run_once()
            except Exception:
                log.exception("worker pass failed; pausing before the next one")
                handled = 0
                await _sleep_unless(stop, ERROR_PAUSE_SECONDS)
            if handled == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self._poll)
            else:
                await asyncio.sleep(0)


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
