"""Rules 1 and 2 with real processes: SIGKILL the API and the worker mid-flight; nothing lost or doubled."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy import func, select

from reachout.carriers.sandbox.models import SandboxMessage
from reachout.db.engine import open_database
from reachout.messaging.models import Direction, Message
from tests.support import processes
from tests.support.provisioning import API_KEY, CONNECTOR, standard_document

pytestmark = pytest.mark.slow

FAST_TIMINGS = {
    "REACHOUT_LEASE_SECONDS": "1",
    "REACHOUT_SANDBOX_SENT_AFTER_SECONDS": "0.3",
    "REACHOUT_SANDBOX_DELIVERED_AFTER_SECONDS": "0.8",
    "REACHOUT_WORKER_POLL_SECONDS": "0.05",
    "REACHOUT_RETRY_BASE_SECONDS": "0.2",
}
HEADERS = {"X-PolyAi-Auth-Token": API_KEY, "X-TOKEN-ID": CONNECTOR}


class Load:
    """Sends one greeting per user and remembers which were acknowledged with 202."""

    def __init__(self) -> None:
        self.accepted: set[str] = set()
        self.unknown: set[str] = set()

    async def send_all(self, base_url: str, users: list[str], concurrency: int = 16) -> None:
        slots = asyncio.Semaphore(concurrency)
        async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:

            async def one(user: str) -> None:
                async with slots:
                    try:
                        response = await client.post(
                            "/v1/outbound-sms",
                            headers=HEADERS,
                            json={"message": f"Hello {user}", "user_number": user},
                        )
                    except httpx.TransportError:
                        self.unknown.add(
                            user
                        )  # the server died with the request in flight: either outcome is fine
                        return
                    if response.status_code == 202:
                        self.accepted.add(user)
                    else:
                        self.unknown.add(user)

            await asyncio.gather(*(one(u) for u in users))


async def _delivery_counts(database_url: str) -> tuple[dict[str, tuple[int, set[str]]], dict[str, int]]:
    database = open_database(database_url)
    try:
        async with database.read() as session:
            rows = await session.execute(
                select(Message.to_number, Message.status).where(Message.direction == Direction.OUTBOUND)
            )
            messages: dict[str, tuple[int, set[str]]] = {}
            for to, status in rows:
                count, statuses = messages.get(to, (0, set()))
                messages[to] = (count + 1, statuses | {status})
            sandbox_rows = await session.execute(
                select(SandboxMessage.to_number, func.count()).group_by(SandboxMessage.to_number)
            )
            return messages, {to: n for to, n in sandbox_rows}
    finally:
        await database.dispose()


async def _wait_until_terminal(database_url: str, expected: int, within_seconds: float = 60.0) -> None:
    deadline = time.monotonic() + within_seconds
    while time.monotonic() < deadline:
        messages, _ = await _delivery_counts(database_url)
        pending = [to for to, (_, statuses) in messages.items() if statuses - {"delivered"}]
        if len(messages) >= expected and not pending:
            return
        await asyncio.sleep(0.25)
    raise AssertionError(f"messages still not terminal after {within_seconds}s: {pending[:5]}")


async def test_sigkill_of_api_and_worker_loses_nothing_and_doubles_nothing(
    database_url: str, tmp_path: Path
) -> None:
    config = tmp_path / "reachout.yaml"
    config.write_text(yaml.safe_dump(standard_document(rate_limit=1_000_000)))
    api = processes.server(database_url, config, tmp_path, worker=False, extra_env=FAST_TIMINGS)
    workers = [
        processes.worker(database_url, config, tmp_path, extra_env=FAST_TIMINGS, name=f"worker{i}")
        for i in range(4)
    ]
    users = [f"+1415555{3000 + i:04d}" for i in range(360)]
    load = Load()
    try:
        api.start()
        workers[0].start()

        # Phase 1: the worker is killed twice while it is claiming, sending and recording.
        sending = asyncio.create_task(load.send_all(api.base_url, users[:120]))
        for killed, replacement in ((workers[0], workers[1]), (workers[1], workers[2])):
            await asyncio.sleep(0.4)
            killed.kill()
            replacement.start()
        await sending

        # Phase 2: the API is killed with requests in flight, then comes back on the same port.
        sending = asyncio.create_task(load.send_all(api.base_url, users[120:240]))
        await asyncio.sleep(0.3)
        api.kill()
        await sending
        api.start()

        # Phase 3: the worker dies once more while the restarted API takes the rest.
        sending = asyncio.create_task(load.send_all(api.base_url, users[240:]))
        await asyncio.sleep(0.3)
        workers[2].kill()
        await sending
        workers[3].start()

        assert len(load.accepted) >= 200, "too few requests were accepted for the test to mean anything"
        await _wait_until_terminal(database_url, expected=len(load.accepted))
        messages, handset_deliveries = await _delivery_counts(database_url)

        for user in load.accepted:
            assert messages.get(user) == (1, {"delivered"}), f"{user}: {messages.get(user)}"
            assert handset_deliveries.get(user) == 1, f"{user} received {handset_deliveries.get(user)} texts"
        for user in load.unknown:
            assert messages.get(user, (0, set()))[0] <= 1
        # Nothing reached a handset that reachout does not have a message for, and vice versa.
        assert handset_deliveries == {user: 1 for user in messages}

        async with httpx.AsyncClient(base_url=api.base_url) as client:
            for user in sorted(load.accepted)[:20]:
                received = (await client.get(f"/sandbox/handsets/{user}/messages")).json()
                assert [m["body"] for m in received] == [f"Hello {user}"]
    finally:
        for process in (api, *workers):
            process.stop()
