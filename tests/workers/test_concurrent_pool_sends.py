"""Sends through a use case with several worker processes on one database: each is handed to the carrier
exactly once, from a number of its pool, and each person hears from one number however many workers
choose for them at once (the sticky mapping holds across processes)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy import func, select

from reachout.carriers.sandbox.models import SandboxMessage
from reachout.db.engine import open_database
from reachout.messaging.models import Message
from tests.support import processes
from tests.support.provisioning import API_KEY, POOL, USE_CASE, use_case_document

pytestmark = pytest.mark.slow

HEADERS = {"Authorization": f"Bearer {API_KEY}"}
TIMINGS = {
    "REACHOUT_SANDBOX_SENT_AFTER_SECONDS": "0.1",
    "REACHOUT_SANDBOX_DELIVERED_AFTER_SECONDS": "0.2",
    "REACHOUT_WORKER_POLL_SECONDS": "0.02",
    "REACHOUT_DISPATCH_BATCH_SIZE": "5",
}
PEOPLE = 40
EACH = 4  # messages per person, sent all at once so that several workers choose for them together


async def test_three_workers_send_through_a_pool_once_each_and_stick_to_one_number(
    database_url: str, tmp_path: Path
) -> None:
    config = tmp_path / "reachout.yaml"
    document = use_case_document(use_case={"area_code_geomatch": False})  # every sender in one tier
    document["accounts"][0]["projects"][-1]["rate_limit"] = {"requests": 1_000_000, "per_seconds": 60}
    config.write_text(yaml.safe_dump(document))
    people = [f"+1312555{1000 + n:04d}" for n in range(PEOPLE)]
    total = PEOPLE * EACH
    with processes.running_cluster(database_url, config, tmp_path, workers=3, extra_env=TIMINGS) as cluster:
        async with httpx.AsyncClient(base_url=cluster.api.base_url, timeout=10) as client:
            slots = asyncio.Semaphore(16)

            async def one(person: str, n: int) -> int:
                async with slots:
                    response = await client.post(
                        "/v1/sms/",
                        headers=HEADERS,
                        json={"use_case_id": USE_CASE, "to_phone_number": person, "message": f"Hi {n}"},
                    )
                    return response.status_code

            sends = [one(person, n) for n in range(EACH) for person in people]
            assert set(await asyncio.gather(*sends)) == {201}

        database = open_database(database_url)
        try:
            await processes.wait_until_delivered(database, total)
            async with database.read() as session:
                carried = (
                    await session.execute(
                        select(SandboxMessage.idempotency_key, func.count()).group_by(
                            SandboxMessage.idempotency_key
                        )
                    )
                ).all()
                senders = (
                    await session.execute(
                        select(Message.to_number, Message.from_number).where(Message.direction == "outbound")
                    )
                ).all()
        finally:
            await database.dispose()
    assert len(carried) == total and {count for _, count in carried} == {1}, "handed to the carrier twice"
    heard_from: dict[str, set[str]] = {}
    for person, sender in senders:
        heard_from.setdefault(person, set()).add(sender)
    assert all(len(numbers) == 1 for numbers in heard_from.values()), heard_from
    assert set().union(*heard_from.values()) <= set(POOL)
    assert len(set().union(*heard_from.values())) > 1, "the people were spread over the pool"
