"""Two worker processes on one PostgreSQL fire each due conversation timer exactly once."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

from reachout.conversations import jobs_repository as jobs
from reachout.conversations import repository as conversations
from reachout.conversations.models import ConversationJob, JobKind
from reachout.conversations.schemas import NewConversation, SessionKey
from reachout.db.engine import open_database
from reachout.delivery.channels import Channel
from reachout.kit.clock import SystemClock
from reachout.messaging.models import Message
from reachout.provisioning import loader
from reachout.provisioning import service as provisioning
from tests.support import processes
from tests.support.provisioning import SENDER, standard_document

pytestmark = pytest.mark.slow

WARNING = "Still there? (timer test)"
TIMINGS = {"REACHOUT_WORKER_POLL_SECONDS": "0.02", "REACHOUT_SANDBOX_DELIVERED_AFTER_SECONDS": "0.1"}
CONVERSATIONS = 300


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_two_workers_fire_each_due_timer_once(database_url: str, tmp_path: Path) -> None:
    document = standard_document()
    document["accounts"][0]["projects"][0]["conversations"] = {
        "inactivity": {
            "warn_after_seconds": 3600,
            "end_after_warning_seconds": 3600,
            "warning_message": WARNING,
        }
    }
    config = tmp_path / "reachout.yaml"
    config.write_text(yaml.safe_dump(document))
    workers = [
        processes.worker(database_url, config, tmp_path, extra_env=TIMINGS, name=f"w{i}") for i in range(2)
    ]
    database = open_database(database_url)
    try:
        now = SystemClock().now()
        async with database.write.begin() as session:
            await provisioning.apply(session, loader.parse(document, "test"), now)
            for n in range(CONVERSATIONS):
                conversation_id = f"convo_timer{n:017d}"
                key = SessionKey("clinic", Channel.SMS, SENDER, f"+1415555{5000 + n:04d}")
                await conversations.insert_many(
                    session, [NewConversation(conversation_id, key, now, agent={})]
                )
                await conversations.update(session, conversation_id, {"engaged_at": now})
                await jobs.schedule(session, conversation_id, JobKind.WARN, now, now)
        for worker in workers:  # both race for the same backlog of due timers
            worker.start()

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            async with database.read() as session:
                pending = await session.execute(
                    select(func.count())
                    .select_from(ConversationJob)
                    .where(ConversationJob.kind == JobKind.WARN)
                )
                if pending.scalar_one() == 0:
                    break
            await asyncio.sleep(0.1)
        async with database.read() as session:
            warnings = await session.execute(
                select(Message.conversation_id, func.count())
                .where(Message.body == WARNING)
                .group_by(Message.conversation_id)
            )
            per_conversation = dict(warnings.all())
            ends = await session.execute(
                select(func.count())
                .select_from(ConversationJob)
                .where(ConversationJob.kind == JobKind.EXPIRE)
            )
            assert ends.scalar_one() == CONVERSATIONS  # each warning scheduled exactly one end
    finally:
        for worker in workers:
            worker.stop()
        await database.dispose()
    assert len(per_conversation) == CONVERSATIONS
    assert set(per_conversation.values()) == {1}, "a timer fired twice"
