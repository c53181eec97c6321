"""New work wakes only the runner it is for, and the wakes of one group commit reach the worker process as
one line: a wake to a runner with nothing to do would cost a write transaction for nothing."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from reachout.workers.loop import Worker
from reachout.workers.supervisor import WorkerProcess

# A stand-in child that records each line the server writes to its standard input.
RECORDER = """
import sys
with open(sys.argv[1], "a") as out:
    for line in sys.stdin:
        out.write(line)
        out.flush()
"""


class CountingRunner:
    """A runner with nothing to do, counting its passes."""

    batch_size = 10

    def __init__(self, name: str) -> None:
        self.name = name
        self.passes = 0

    async def run_once(self) -> int:
        self.passes += 1
        return 0


async def turns(count: int = 20) -> None:
    """Let the event loop go round `count` times."""
    for _ in range(count):
        await asyncio.sleep(0)


async def test_a_wake_reaches_only_the_runner_it_names() -> None:
    dispatch, reports = CountingRunner("dispatch"), CountingRunner("reports")
    worker = Worker([dispatch, reports], poll_seconds=3600)  # no pass comes from the poll during the test
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    await turns()
    assert (dispatch.passes, reports.passes) == (1, 1)

    worker.wake("dispatch")
    worker.wake("no-such-runner")
    await turns()
    assert (dispatch.passes, reports.passes) == (2, 1)

    worker.wake()  # no name: every runner
    await turns()
    assert (dispatch.passes, reports.passes) == (3, 2)
    stop.set()
    await running


async def lines_in(path: Path, count: int) -> list[str]:
    """The file's lines once it has `count` of them (the child writes them as they come)."""
    for _ in range(500):
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) >= count:
            return lines
        await asyncio.sleep(0.01)
    raise AssertionError(f"{path} has {lines!r}, expected {count} lines")


async def test_the_wakes_of_one_loop_turn_reach_the_child_as_one_line(tmp_path: Path) -> None:
    record = tmp_path / "wakes"
    child = WorkerProcess([sys.executable, "-c", RECORDER, str(record)])
    await child.start()
    try:
        for _ in range(100):  # a group commit's requests, resuming in the same turn of the loop
            child.wake("dispatch")
        child.wake("turns")
        assert await lines_in(record, 1) == ["dispatch turns"]
        child.wake("dispatch")
        assert await lines_in(record, 2) == ["dispatch turns", "dispatch"]
    finally:
        await child.stop()
