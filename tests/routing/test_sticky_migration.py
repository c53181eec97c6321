"""Migration 0010 folds the sticky senders of a project's use cases into one per person (the latest of its
sticky use cases wins), and its downgrade gives that number back to each of the project's use cases."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from alembic import command
from sqlalchemy import select, text

from reachout.db import migrate
from reachout.db.engine import open_database
from reachout.kit.clock import FakeClock
from reachout.routing.models import StickySender
from tests.support.migrations import provision_before_0011
from tests.support.provisioning import (
    OTHER_USE_CASE,
    POOL_212,
    POOL_415,
    POOL_646,
    USE_CASE,
    use_case_document,
)

SECOND_USE_CASE = "5b2f9d10-2222-4d4d-9999-abcdefabcdef"
UNSTICKY_USE_CASE = "7c3e0a21-3333-4e4e-aaaa-bcdefabcdef0"
EARLY = datetime(2026, 11, 1, 9, tzinfo=UTC)
LATE = datetime(2026, 11, 2, 9, tzinfo=UTC)
LATER = datetime(2026, 11, 3, 9, tzinfo=UTC)


UPGRADED = [
    ("other-project", "+14155551234", "+14155550150", EARLY),
    ("outreach", "+14155551234", POOL_212, LATE),
    ("outreach", "+14155559999", POOL_415, LATE),
]


async def test_each_person_keeps_the_latest_of_their_sticky_use_cases_mappings(empty_url: str) -> None:
    await _at_0009_with_old_rows(empty_url)
    await asyncio.to_thread(migrate.upgrade, empty_url)
    assert await _mappings(empty_url) == UPGRADED


async def test_a_downgrade_gives_each_use_case_the_persons_number_and_upgrades_again(empty_url: str) -> None:
    await _at_0009_with_old_rows(empty_url)
    await asyncio.to_thread(migrate.upgrade, empty_url)
    await asyncio.to_thread(command.downgrade, migrate.alembic_config(empty_url), "0009")
    database = open_database(empty_url)
    try:
        async with database.read() as session:
            rows = (
                await session.execute(text("SELECT use_case_id, recipient, sender FROM sticky_senders"))
            ).all()
    finally:
        await database.dispose()
    assert sorted(tuple(row) for row in rows) == sorted(
        [(OTHER_USE_CASE, "+14155551234", "+14155550150")]
        + [(u, "+14155551234", POOL_212) for u in (USE_CASE, SECOND_USE_CASE, UNSTICKY_USE_CASE)]
        + [(u, "+14155559999", POOL_415) for u in (USE_CASE, SECOND_USE_CASE, UNSTICKY_USE_CASE)]
    )
    await asyncio.to_thread(migrate.upgrade, empty_url)  # the downgrade gave the constraints' names back
    assert await _mappings(empty_url) == UPGRADED


async def _at_0009_with_old_rows(url: str) -> None:
    """Migrate to 0009 and store sticky senders per use case, as reachout did before 0010."""
    await asyncio.to_thread(migrate.upgrade, url, "0009")
    document = use_case_document()
    use_cases = document["accounts"][0]["projects"][-1]["use_cases"]
    use_cases.append(
        {"id": SECOND_USE_CASE, "name": "follow-ups", "sender_pool": [POOL_212], "campaign": "verified"}
    )
    unsticky = {"id": UNSTICKY_USE_CASE, "name": "alerts", "sender_pool": [POOL_646], "campaign": "verified"}
    use_cases.append(unsticky | {"sticky_sender": False})
    rows = [
        (USE_CASE, "+14155551234", POOL_415, EARLY),
        (SECOND_USE_CASE, "+14155551234", POOL_212, LATE),  # the latest of a sticky use case for this person
        (UNSTICKY_USE_CASE, "+14155551234", POOL_646, LATER),  # kept by a use case that no longer keeps any
        (USE_CASE, "+14155559999", POOL_415, LATE),
        (OTHER_USE_CASE, "+14155551234", "+14155550150", EARLY),  # another project's
    ]
    database = open_database(url)
    try:
        async with database.write.begin() as session:
            await provision_before_0011(session, document, FakeClock().now())
            await session.execute(
                text(
                    "INSERT INTO sticky_senders (use_case_id, recipient, sender, last_used)"
                    " VALUES (:use_case, :recipient, :sender, :last_used)"
                ),
                [
                    {"use_case": u, "recipient": r, "sender": s, "last_used": _stored(t, url)}
                    for u, r, s, t in rows
                ],
            )
    finally:
        await database.dispose()


async def _mappings(url: str) -> list[tuple[str, str, str, datetime]]:
    database = open_database(url)
    try:
        async with database.read() as session:
            found = (await session.execute(select(StickySender))).scalars().all()
    finally:
        await database.dispose()
    return sorted((m.project_id, m.recipient, m.sender, m.last_used) for m in found)


def _stored(at: datetime, url: str) -> datetime:
    # SQLite keeps timestamps as naive UTC text, as the column type writes them.
    return at.replace(tzinfo=None) if url.startswith("sqlite") else at
