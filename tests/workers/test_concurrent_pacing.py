"""Three worker processes share one sender's pace through its row in PostgreSQL.

The sender runs at 5 segments a second instead of 1 so the test takes seconds, not half a minute; every
figure scales with the emission interval. Slots are checked exactly. Carrier times (when the sandbox took
each message, stamped in the worker process) are checked with a margin for the moment between a slot coming
and the process waking up on a loaded two-core machine.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy import select

from reachout.carriers.sandbox.models import SandboxMessage
from reachout.db.engine import open_database
from reachout.events.models import Event
from reachout.messaging.models import Message
from tests.support import processes
from tests.support.provisioning import API_KEY, CONNECTOR, SENDER, standard_document

pytestmark = pytest.mark.slow

HEADERS = {"X-PolyAi-Auth-Token": API_KEY, "X-TOKEN-ID": CONNECTOR}
MPS = 5.0
INTERVAL = 1 / MPS
WAKE_UP_MARGIN = INTERVAL / 5
TIMINGS = {"REACHOUT_WORKER_POLL_SECONDS": "0.02", "REACHOUT_SANDBOX_DELIVERED_AFTER_SECONDS": "0.1"}
THREE_SEGMENTS = "Three segments. " * 25  # 400 GSM-7 characters
SINGLES = 30


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_three_workers_pace_one_sender_and_count_segments(database_url: str, tmp_path: Path) -> None:
    document = standard_document(rate_limit=1_000_000)
    document["accounts"][0]["projects"][0]["numbers"][0]["throughput_mps"] = MPS
    config = tmp_path / "reachout.yaml"
    config.write_text(yaml.safe_dump(document))
    bodies = [f"Hello {n}" for n in range(SINGLES)]
    bodies.insert(SINGLES // 2, THREE_SEGMENTS)
    with processes.running_cluster(database_url, config, tmp_path, workers=3, extra_env=TIMINGS) as cluster:
        async with httpx.AsyncClient(base_url=cluster.api.base_url, timeout=10) as client:
            for n, body in enumerate(bodies):  # one at a time, so the outbox holds them in this order
                response = await client.post(
                    "/v1/outbound-sms",
                    headers=HEADERS,
                    json={"message": body, "user_number": f"+1415555{3000 + n:04d}", "agent_number": SENDER},
                )
                assert response.status_code == 202, response.text

        database = open_database(database_url)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                async with database.read() as session:
                    taken = (
                        await session.execute(
                            select(SandboxMessage.created_at, SandboxMessage.num_segments)
                            .where(SandboxMessage.from_number == SENDER)
                            .order_by(SandboxMessage.created_at)
                        )
                    ).all()
                if len(taken) == len(bodies):
                    break
                await asyncio.sleep(0.2)
            async with database.read() as session:
                handoffs = (
                    await session.execute(
                        select(Event.details, Message.num_segments)
                        .join(Message, Message.id == Event.message_id)
                        .where(Event.source == "dispatcher", Event.type == "message.sending")
                    )
                ).all()
        finally:
            await database.dispose()

    assert len(taken) == len(bodies) == len(handoffs), "every message reached the carrier exactly once"
    assert sorted(cost for _, cost in taken) == [1] * SINGLES + [3]

    # The slots the workers reserved, across processes, never overlap: exact.
    assert len({details["worker"] for details, _ in handoffs}) >= 2, "several workers shared the sender"
    slots = sorted((datetime.fromisoformat(details["slot"]), cost) for details, cost in handoffs)
    for (slot, cost), (next_slot, _) in itertools.pairwise(slots):
        assert (next_slot - slot).total_seconds() >= cost * INTERVAL - 1e-6, (slot, cost, next_slot)
    carrier = [(at, cost) for at, cost in taken]
    # At the carrier: each message holds the line for its segments, so the next comes no sooner.
    for (at, cost), (next_at, _) in itertools.pairwise(carrier):
        assert (next_at - at).total_seconds() >= cost * INTERVAL - WAKE_UP_MARGIN, (at, cost, next_at)
    # 30 single-segment messages and one of three: 32 intervals from the first to the last at least.
    span = (carrier[-1][0] - carrier[0][0]).total_seconds()
    assert span >= (sum(cost for _, cost in carrier[:-1])) * INTERVAL - WAKE_UP_MARGIN
