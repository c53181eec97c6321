"""Several worker processes on one database: each message is claimed and handed off by exactly one."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy import func, select

from reachout.db.engine import open_database
from reachout.events.models import Event
from reachout.messaging.models import Message
from tests.support import processes
from tests.support.provisioning import API_KEY, CONNECTOR, standard_document

pytestmark = pytest.mark.slow

HEADERS = {"X-PolyAi-Auth-Token": API_KEY, "X-TOKEN-ID": CONNECTOR}
TIMINGS = {
    "REACHOUT_SANDBOX_SENT_AFTER_SECONDS": "0.1",
    "REACHOUT_SANDBOX_DELIVERED_AFTER_SECONDS": "0.2",
    "REACHOUT_WORKER_POLL_SECONDS": "0.02",
    "REACHOUT_DISPATCH_BATCH_SIZE": "10",
}


async def test_three_workers_share_the_outbox_without_double_claims(
    database_url: str, tmp_path: Path
) -> None:
    config = tmp_path / "reachout.yaml"
    config.write_text(yaml.safe_dump(standard_document(rate_limit=1_000_000)))
    total = 300
    # All three workers poll before the backlog arrives, so each can take a share of it.
    with processes.running_cluster(database_url, config, tmp_path, workers=3, extra_env=TIMINGS) as cluster:
        async with httpx.AsyncClient(base_url=cluster.api.base_url, timeout=10) as client:
            slots = asyncio.Semaphore(16)

            async def one(n: int) -> int:
                async with slots:
                    response = await client.post(
                        "/v1/outbound-sms",
                        headers=HEADERS,
                        json={"message": f"Hello {n}", "user_number": f"+1415555{4000 + n:04d}"},
                    )
                    return response.status_code

            assert set(await asyncio.gather(*(one(n) for n in range(total)))) == {202}

        database = open_database(database_url)
        try:
            await processes.wait_until_delivered(database, total)
            async with database.read() as session:
                owners = set((await session.execute(select(Message.lease_owner).distinct())).scalars()) - {
                    None
                }
                handoffs = (
                    await session.execute(
                        select(Event.message_id, func.count())
                        .where(Event.source == "dispatcher")
                        .group_by(Event.message_id)
                    )
                ).all()
                handoff_details = (
                    (await session.execute(select(Event.details).where(Event.source == "dispatcher")))
                    .scalars()
                    .all()
                )
        finally:
            await database.dispose()
        assert len(handoffs) == total
        assert {count for _, count in handoffs} == {1}, "a message was handed to the carrier twice"
        assert owners == set(), "leases are released once a message is handed off"
        # SQLite has one writer at a time, so a worker can lose every race for the lock during a short
        # backlog; PostgreSQL's SKIP LOCKED claims let all three run side by side.
        sharing = 3 if database_url.startswith("postgresql") else 2
        assert len({d["worker"] for d in handoff_details}) >= sharing, "the workers shared the backlog"
