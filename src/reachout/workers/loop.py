"""The worker: every registered runner in a loop of its own, until told to stop.

The domains register the runners (the dispatcher, the conversation jobs, each carrier's own), and each loop
claims, works and sleeps on its own, so no kind of work waits behind another's batch or pace.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from reachout.kit import metrics
from reachout.kit.jobs.runner import Runner
from reachout.logs import get_logger

log = get_logger("worker")

ERROR_PAUSE_SECONDS = 1.0


class Worker:
    """One worker's share of the background work; any number may run against one database."""

    def __init__(
        self, runners: Sequence[Runner], *, poll_seconds: float, linger_seconds: float = 0.0
    ) -> None:
        names = [runner.name for runner in runners]
        if len(set(names)) != len(names):
            raise ValueError(f"runner names must be unique: {names}")
        self._runners = tuple(runners)
        self._poll = poll_seconds
        self._linger = linger_seconds
        self._wakes = {runner.name: asyncio.Event() for runner in runners}

    @property
    def runners(self) -> tuple[Runner, ...]:
        return self._runners

    def wake(self, *names: str) -> None:
        """Ask these runners (none named: every one) for a pass now rather than at their next poll: new work
        for them was just committed. A name this worker does not run is ignored."""
        for name in names or tuple(self._wakes):
            event = self._wakes.get(name)
            if event is not None:
                event.set()

    async def run_once(self) -> int:
        """One pass of every runner, in the order registered; returns how many items they found due."""
        return sum([await _pass(runner) for runner in self._runners])

    async def run(self, stop: asyncio.Event) -> None:
        """Run every runner's loop until `stop` is set."""
        log.info("worker running", poll_seconds=self._poll, runners=[r.name for r in self._runners])
        await asyncio.gather(*(self._loop(runner, stop) for runner in self._runners))

    async def _loop(self, runner: Runner, stop: asyncio.Event) -> None:
        wake = self._wakes[runner.name]
        while not stop.is_set():
            wake.clear()  # before the pass, so a wake-up during it is not lost
            try:
                handled = await _pass(runner)
            except Exception:
                log.exception("worker pass failed; pausing before the next one", runner=runner.name)
                handled = 0
                await _wait(stop, ERROR_PAUSE_SECONDS)
            if handled == 0:
                await _wait_any(stop, wake, self._poll)
            elif handled < runner.batch_size and self._linger > 0:
                # The queue is drained: let more work gather before the next pass, so a steady trickle is
                # claimed in batches rather than one transaction (and one write lock) per accept.
                await _wait(stop, self._linger)
            else:
                await asyncio.sleep(0)


async def _pass(runner: Runner) -> int:
    handled = await runner.run_once()
    if handled:  # idle polls would bury the sizes of the claims that found work
        metrics.instruments().claim_size.labels(runner.name).observe(handled)
    return handled


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


async def _wait_any(stop: asyncio.Event, wake: asyncio.Event, seconds: float) -> None:
    """Sleep until woken, stopped, or `seconds` pass."""
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
