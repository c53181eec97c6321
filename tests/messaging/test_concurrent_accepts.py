"""Two API processes accepting for one project at the same moment: both succeed, the invariants hold."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import func, select, text

from reachout.conversations.models import Conversation
from reachout.db.engine import Database, open_database
from reachout.db.group_commit import GroupCommitter
from reachout.kit.clock import FakeClock
from reachout.messaging.schemas import AcceptedMessage, OutboundRequest
from reachout.outreach.service import accept_first_messages, plan_greeting
from reachout.provisioning import loader
from reachout.provisioning import service as provisioning
from reachout.tenancy.service import Directory, RateLimiter
from tests.support.provisioning import CONNECTOR, SENDER, USER, standard_document


async def waiting_on_a_lock(database: Database, timeout: float = 10.0) -> None:
    """Return once some backend of this database waits for a lock another transaction holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        async with database.read() as session:
            waiting = await session.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
            if waiting.scalar_one() > 0:
                return
        await asyncio.sleep(0.01)
    raise TimeoutError("no backend started waiting for the lock")


@pytest.mark.parametrize("backend", ["postgresql"])  # SQLite has one writer: its transactions never overlap
async def test_first_greetings_of_a_project_from_two_processes_both_succeed(
    database_url: str, clock: FakeClock
) -> None:
    first, second = open_database(database_url), open_database(database_url)
    try:
        async with first.write.begin() as session:
            await provisioning.apply(session, loader.parse(standard_document(), "test"), clock.now())
        project = await Directory(first.read, 0).project_for_connector("acme", CONNECTOR)
        greeting = await plan_greeting(project, to_number=USER, body="Hi", agent_number=SENDER)
        other_process: GroupCommitter[OutboundRequest, AcceptedMessage] = GroupCommitter(
            second.write,
            lambda session, requests: accept_first_messages(session, requests, clock.now(), RateLimiter()),
            max_batch=10,
        )
        async with first.write.begin() as session:
            # This process creates the project's rate-limit row and the user's open session...
            await accept_first_messages(session, [greeting], clock.now(), RateLimiter())
            # ...while the other process's transaction tries to create the same row and waits for ours.
            racing = asyncio.create_task(other_process.submit(greeting))
            await waiting_on_a_lock(first)
        accepted = await asyncio.wait_for(racing, timeout=10)  # lost the race, decided again: accepted
        async with first.read() as session:
            statuses = dict(
                (
                    await session.execute(
                        select(Conversation.status, func.count()).group_by(Conversation.status)
                    )
                ).all()
            )
            open_id = (
                await session.execute(select(Conversation.id).where(Conversation.status == "open"))
            ).scalar_one()
        assert statuses == {"open": 1, "ended": 1}
        assert open_id == accepted.conversation_id  # the later greeting superseded the earlier one
    finally:
        await first.dispose()
        await second.dispose()
