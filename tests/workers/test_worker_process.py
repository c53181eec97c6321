"""`reachout serve` runs its worker in a child process: started after the database is ready, nudged on
accept, restarted when it dies, stopped with the server, and gone by itself when the server is killed."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy import select

from reachout.db.engine import open_database
from reachout.messaging.models import Message
from tests.support import processes
from tests.support.provisioning import POLYAI_HEADERS, standard_document

pytestmark = pytest.mark.slow
# The worker's poll is long, so a greeting handed off at once shows the accept woke the child.
POLL_SECONDS = 4.0
TIMINGS = {
    "REACHOUT_SANDBOX_SENT_AFTER_SECONDS": "0.1",
    "REACHOUT_SANDBOX_DELIVERED_AFTER_SECONDS": "0.2",
    "REACHOUT_WORKER_POLL_SECONDS": str(POLL_SECONDS),
}
STARTED = re.compile(r"worker process started\s.*pid=(\d+)")


def children(log: Path) -> list[int]:
    """The worker pids the server has started, in order."""
    return [int(pid) for pid in STARTED.findall(log.read_text(errors="replace"))]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A child that exited but whose parent is gone too is reaped by init; one still a zombie is not alive.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split()[2] != "Z"


def wait_until(condition: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


async def greet(base_url: str, user: str) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        payload = {"message": f"Hello {user}", "user_number": user}
        response = await client.post("/v1/outbound-sms", headers=POLYAI_HEADERS, json=payload)
        assert response.status_code == 202, response.text


async def delivered_within(database_url: str, count: int, seconds: float) -> list[float]:
    """Wait for `count` deliveries; returns how long each message waited to be handed off."""
    database = open_database(database_url)
    try:
        await processes.wait_until_delivered(database, count, within_seconds=seconds)
        async with database.read() as session:
            rows = await session.execute(select(Message.created_at, Message.handed_off_at))
            return [(handed - created).total_seconds() for created, handed in rows]
    finally:
        await database.dispose()


async def test_the_worker_runs_beside_the_server_and_comes_back_when_it_dies(
    database_url: str, tmp_path: Path
) -> None:
    config = tmp_path / "reachout.yaml"
    config.write_text(yaml.safe_dump(standard_document()))
    api = processes.server(database_url, config, tmp_path, extra_env=TIMINGS).start()
    try:
        api.wait_for_log("worker running")
        [first] = children(api.log_path)
        assert first != api.process.pid and alive(first)  # type: ignore[union-attr]
        await greet(api.base_url, "+14155552001")
        [waited] = await delivered_within(database_url, 1, 3 * POLL_SECONDS)
        assert waited < POLL_SECONDS / 2, "the accept woke the child: it did not wait for its poll"

        os.kill(first, signal.SIGKILL)
        wait_until(lambda: len(children(api.log_path)) == 2)
        assert "worker process exited; restarting" in api.log_path.read_text()
        second = children(api.log_path)[1]
        wait_until(lambda: api.log_path.read_text().count("worker running") == 2)
        await greet(api.base_url, "+14155552002")
        await delivered_within(database_url, 2, 3 * POLL_SECONDS)

        api.stop()
        wait_until(lambda: not alive(second))
    finally:
        api.kill()


async def test_a_worker_whose_server_was_killed_stops_by_itself(database_url: str, tmp_path: Path) -> None:
    config = tmp_path / "reachout.yaml"
    config.write_text(yaml.safe_dump(standard_document()))
    api = processes.server(database_url, config, tmp_path, extra_env=TIMINGS).start()
    try:
        api.wait_for_log("worker running")
        [child] = children(api.log_path)
        os.kill(api.process.pid, signal.SIGKILL)  # type: ignore[union-attr]  # the server alone
        wait_until(lambda: not alive(child))
        assert "the server's pipe closed; stopping the worker" in api.log_path.read_text()
    finally:
        api.kill()
