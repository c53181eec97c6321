"""Events reach their endpoint, each webhook-id accepted once, across SIGKILLs of reachout's processes while
deliveries are pending and while they are being retried (real processes)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy import select

from reachout.db.engine import open_database
from reachout.events.models import Event
from reachout.events.types import AUDIT_ONLY
from tests.support import processes
from tests.support.provisioning import POLYAI_HEADERS, standard_document
from tests.support.webhook_receiver import WebhookReceiver
from tests.support.webhooks import SECRET

pytestmark = pytest.mark.slow

FAST = {
    "REACHOUT_LEASE_SECONDS": "1",
    "REACHOUT_WEBHOOKS_TIMEOUT_SECONDS": "2",
    "REACHOUT_WEBHOOKS_ALLOW_PRIVATE": "true",
    "REACHOUT_SANDBOX_SENT_AFTER_SECONDS": "0.2",
    "REACHOUT_SANDBOX_DELIVERED_AFTER_SECONDS": "0.5",
    "REACHOUT_WORKER_POLL_SECONDS": "0.05",
    # The schedule's shape in seconds, not hours: three attempts within the test.
    "REACHOUT_WEBHOOKS_RETRY_SCHEDULE_SECONDS": "[0, 0.5, 1, 1, 1]",
}


async def delivered_ids(database_url: str) -> set[str]:
    """Every event the endpoint should get: all but the audit-only ones."""
    database = open_database(database_url)
    try:
        async with database.read() as session:
            rows = await session.execute(select(Event.id, Event.type))
            return {event_id for event_id, kind in rows if kind not in {t.value for t in AUDIT_ONLY}}
    finally:
        await database.dispose()


async def greet(base_url: str, users: list[str]) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        for user in users:
            response = await client.post(
                "/v1/outbound-sms",
                headers=POLYAI_HEADERS,
                json={"message": f"Hi {user}", "user_number": user},
            )
            assert response.status_code == 202, response.text


async def test_every_event_arrives_once_across_sigkills(database_url: str, tmp_path: Path) -> None:
    async with WebhookReceiver(SECRET) as receiver:
        receiver.fail_first(2)  # each event is tried three times at least
        document = standard_document(rate_limit=1_000_000)
        document["accounts"][0]["projects"][0]["webhooks"] = [{"url": receiver.url, "secret": SECRET}]
        config = tmp_path / "reachout.yaml"
        config.write_text(yaml.safe_dump(document))
        api = processes.server(database_url, config, tmp_path, worker=False, extra_env=FAST)
        workers = [
            processes.worker(database_url, config, tmp_path, extra_env=FAST, name=f"worker{i}")
            for i in range(3)
        ]
        users = [f"+1415555{4000 + i:04d}" for i in range(20)]
        try:
            api.start()
            workers[0].start()
            await greet(api.base_url, users[:10])
            await asyncio.sleep(0.5)  # first attempts made and failed, retries pending
            workers[0].kill()
            api.kill()
            api.start()
            workers[1].start()
            await greet(api.base_url, users[10:])
            await asyncio.sleep(1.0)
            workers[1].kill()  # with requests of its own in flight, perhaps
            workers[2].start()

            deadline = time.monotonic() + 60
            expected: set[str] = set()
            while time.monotonic() < deadline:
                expected = await delivered_ids(database_url)
                if len(expected) >= 4 * len(users) and set(receiver.by_id) >= expected:
                    break
                await asyncio.sleep(0.5)
        finally:
            for process in (api, *workers):
                process.stop()
        missing = expected - set(receiver.by_id)
        assert not missing, f"{len(missing)} of {len(expected)} events never arrived"
        assert set(receiver.by_id) == expected, "nothing arrived that the log does not hold"
        # Each id accepted once in all but the rare case the receiver answered and the worker died before it
        # wrote so: then the delivery is made again under the same id, which is what webhook-id is for.
        assert len(receiver.duplicates) <= 2, receiver.duplicates
        assert all(d.attempt >= 3 for d in receiver.events()), (
            "each was accepted on its third attempt or later"
        )
