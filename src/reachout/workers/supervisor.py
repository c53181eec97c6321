"""The worker in a process of its own, beside the API (what `reachout serve` runs by default).

One interpreter cannot both answer requests and run the worker at full speed, so the server starts
`reachout worker` as a child once the database is prepared, nudges it through its standard input when new
work is committed (so it claims at once rather than at its next poll), restarts it with backoff if it dies,
and stops it with the server. The child stops by itself if its standard input closes: the server is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from reachout.kit import metrics
from reachout.kit.jobs.retry import RetryStrategy
from reachout.logs import get_logger

log = get_logger("worker")

# A worker that ran this long before dying had been healthy: its next restart starts the backoff afresh.
HEALTHY_SECONDS = 60.0
RESTARTS = RetryStrategy(base_seconds=0.5, max_attempts=1_000_000, cap_seconds=30.0)
STOP_GRACE_SECONDS = 10.0
MAX_PENDING_WAKE_BYTES = 4096  # wakes the child has not read yet: past this it is busy, and will poll


def worker_command(config: Path | None) -> list[str]:
    """The child's command line: this interpreter's `reachout worker`, the database already prepared."""
    command = [sys.executable, "-m", "reachout.cli", "worker", "--prepared", "--wake-on-stdin"]
    return command if config is None else [*command, "--config", str(config)]


class WorkerProcess:
    """Runs, nudges, restarts and stops one child worker process."""

    def __init__(self, command: Sequence[str]) -> None:
        self._command = list(command)
        self._process: asyncio.subprocess.Process | None = None
        self._supervising: asyncio.Task[None] | None = None
        self._stopping = False
        self._waking: set[str] = set()  # runners to wake at the end of this turn of the event loop

    async def start(self) -> None:
        """Start the child and keep it running until `stop`."""
        await self._spawn()
        self._supervising = asyncio.create_task(self._supervise(), name="worker-supervisor")

    def wake(self, runner: str) -> None:
        """Ask the child's `runner` for a pass now (new work for it was just committed); never blocks.

        The requests of one group commit all resume in the same turn of the event loop: their wakes are sent
        as one line at its end, not one write each.
        """
        if not self._waking:
            asyncio.get_running_loop().call_soon(self._send_wakes)
        self._waking.add(runner)

    def _send_wakes(self) -> None:
        names, self._waking = self._waking, set()
        process = self._process
        if process is None or process.stdin is None or process.returncode is not None:
            return
        transport = process.stdin.transport
        if transport.is_closing() or transport.get_write_buffer_size() > MAX_PENDING_WAKE_BYTES:
            return
        process.stdin.write(" ".join(sorted(names)).encode() + b"\n")

    async def stop(self) -> None:
        """Stop the child: SIGTERM, then SIGKILL if it does not finish in time."""
        self._stopping = True
        if self._supervising is not None:
            self._supervising.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervising
        process = self._process
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), STOP_GRACE_SECONDS)
        except TimeoutError:
            log.warning("worker process did not stop in time; killed", pid=process.pid)
            process.kill()
            await process.wait()
        metrics.process_ended(process.pid)

    async def _spawn(self) -> None:
        self._process = await asyncio.create_subprocess_exec(*self._command, stdin=asyncio.subprocess.PIPE)
        log.info("worker process started", pid=self._process.pid)

    async def _supervise(self) -> None:
        failures = 0
        while not self._stopping:
            assert self._process is not None
            started = time.monotonic()
            code = await self._process.wait()
            metrics.process_ended(self._process.pid)
            if self._stopping:
                return
            failures = 1 if time.monotonic() - started >= HEALTHY_SECONDS else failures + 1
            delay = RESTARTS.delay(failures).total_seconds()
            log.error("worker process exited; restarting", exit_code=code, restart_in_seconds=round(delay, 2))
            await asyncio.sleep(delay)
            await self._spawn()


async def follow_the_server(wake: Callable[..., None], stop: asyncio.Event) -> None:
    """In the child: each line on standard input names runners to wake; its end (the server is gone) stops
    the worker, so no orphan keeps working."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        wake(*line.decode(errors="replace").split())
    log.info("the server's pipe closed; stopping the worker")
    stop.set()
