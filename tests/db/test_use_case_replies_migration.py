"""Migration 0011: use cases stored before it answer replies with nobody (a file that does not say gets the
same), conversations before it were answered by their agents, and a downgrade takes it all back out."""

from __future__ import annotations

import asyncio
from typing import Any

import sqlalchemy as sa
from alembic import command

from reachout.db import migrate
from reachout.db.base import UTCDateTime
from reachout.db.engine import open_database
from reachout.kit.clock import FakeClock
from tests.support.migrations import provision_before_0011
from tests.support.provisioning import SENDER, USE_CASE, USER, use_case_document

CONVERSATION = "convo_0123456789abcdef01234567"
ADDED = {"use_cases": {"replies", "reply_agent"}, "conversations": {"answered_by", "use_case_id"}}
THREAD_INDEX = "ix_messages_use_case_thread"


async def test_existing_rows_get_nobody_for_use_cases_and_the_agent_for_conversations(empty_url: str) -> None:
    await _at_0010_with_rows(empty_url)
    await asyncio.to_thread(migrate.upgrade, empty_url)
    assert await _rows(empty_url) == ([(USE_CASE, "none", None)], [(CONVERSATION, "agent", None)])
    assert THREAD_INDEX in await _indexes(empty_url)


async def test_a_downgrade_takes_the_columns_and_the_index_out_and_upgrades_again(empty_url: str) -> None:
    await _at_0010_with_rows(empty_url)
    await asyncio.to_thread(migrate.upgrade, empty_url)
    await asyncio.to_thread(command.downgrade, migrate.alembic_config(empty_url), "0010")
    columns = await _columns(empty_url)
    assert all(not (added & columns[table]) for table, added in ADDED.items())
    assert THREAD_INDEX not in await _indexes(empty_url)
    await asyncio.to_thread(migrate.upgrade, empty_url)
    assert await _rows(empty_url) == ([(USE_CASE, "none", None)], [(CONVERSATION, "agent", None)])


async def _at_0010_with_rows(url: str) -> None:
    """Migrate to 0010, provision a use case, and store a conversation as reachout did before 0011."""
    await asyncio.to_thread(migrate.upgrade, url, "0010")
    now = FakeClock().now()
    old_conversations = sa.table(
        "conversations",
        *(
            sa.column(name)
            for name in ("id", "project_id", "channel", "agent_number", "user_number", "status")
        ),
        *(sa.column(name, sa.JSON()) for name in ("metadata", "agent", "variables", "agent_state")),
        *(sa.column(name, UTCDateTime()) for name in ("opened_at", "last_activity_at")),
    )
    database = open_database(url)
    try:
        async with database.write.begin() as session:
            await provision_before_0011(session, use_case_document(), now)
            await session.execute(
                sa.insert(old_conversations),
                [
                    {
                        "id": CONVERSATION,
                        "project_id": "clinic",
                        "channel": "sms",
                        "agent_number": SENDER,
                        "user_number": USER,
                        "status": "open",
                        "metadata": {},
                        "agent": {"pathway": "scripted"},
                        "variables": {},
                        "agent_state": {},
                        "opened_at": now,
                        "last_activity_at": now,
                    }
                ],
            )
    finally:
        await database.dispose()


async def _rows(url: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    database = open_database(url)
    try:
        async with database.read() as session:
            use_cases = await session.execute(
                sa.text("SELECT id, replies, reply_agent FROM use_cases WHERE project_id = 'outreach'")
            )
            conversations = await session.execute(
                sa.text("SELECT id, answered_by, use_case_id FROM conversations")
            )
            return [tuple(r) for r in use_cases], [tuple(r) for r in conversations]
    finally:
        await database.dispose()


async def _columns(url: str) -> dict[str, set[str]]:
    return await _inspect(
        url, lambda inspector: {t: {c["name"] for c in inspector.get_columns(t)} for t in ADDED}
    )


async def _indexes(url: str) -> set[str]:
    return await _inspect(url, lambda inspector: {i["name"] for i in inspector.get_indexes("messages")})


async def _inspect(url: str, read: Any) -> Any:
    database = open_database(url)
    try:
        async with database.writer_engine.connect() as connection:
            return await connection.run_sync(lambda sync: read(sa.inspect(sync)))
    finally:
        await database.dispose()
