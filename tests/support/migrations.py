"""Fixtures and helpers for testing one migration: a database with no schema, and rows written as an older
schema held them (the models describe only the newest)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from reachout.db.base import UTCDateTime
from reachout.provisioning import loader
from reachout.provisioning import service as provisioning
from tests.support import databases


@pytest.fixture
def empty_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A database with no schema at all, so the migrations can be run one by one."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'migrating.db'}"
        return
    reason = databases.postgres_unavailable_reason()
    if reason is not None:
        pytest.skip(f"PostgreSQL not available ({reason})")
    admin = databases.postgres_admin_url()
    name = f"reachout_migrate_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(admin, f'CREATE DATABASE "{name}"'))
    try:
        yield databases.sqlalchemy_url(admin, name)
    finally:
        asyncio.run(_admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _admin(url: str, sql: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


# The use_cases table as migrations 0007 to 0010 left it.
_OLD_USE_CASES = sa.table(
    "use_cases",
    sa.column("id"),
    sa.column("project_id"),
    sa.column("name"),
    sa.column("active", sa.Boolean()),
    sa.column("sender_pool", sa.JSON()),
    sa.column("sticky_sender", sa.Boolean()),
    sa.column("area_code_geomatch", sa.Boolean()),
    sa.column("campaign"),
    sa.column("brand"),
    sa.column("allowed_countries", sa.JSON()),
    sa.column("created_at", UTCDateTime()),
    sa.column("updated_at", UTCDateTime()),
)


async def provision_before_0011(session: AsyncSession, document: dict[str, Any], now: datetime) -> None:
    """Apply a provisioning document to a schema older than 0011: its use cases are written as such a
    schema holds them (sticky and campaign as given, the rest as the file's defaults)."""
    projects = [p for account in document["accounts"] for p in account["projects"]]
    use_cases = [(p["id"], u) for p in projects for u in p.pop("use_cases", [])]
    with pytest.MonkeyPatch.context() as patch:
        # Such a schema has no webhook endpoints to apply (migration 0012 adds them).
        patch.setattr(provisioning.events, "apply_endpoints", _no_endpoints)
        await provisioning.apply(session, loader.parse(document, "test"), now)
    if use_cases:
        rows = [
            {
                "id": u["id"],
                "project_id": project_id,
                "name": u["name"],
                "active": True,
                "sender_pool": u.get("sender_pool", []),
                "sticky_sender": u.get("sticky_sender", True),
                "area_code_geomatch": True,
                "campaign": u.get("campaign"),
                "brand": "verified",
                "allowed_countries": u.get("allowed_countries", ["US"]),
                "created_at": now,
                "updated_at": now,
            }
            for project_id, u in use_cases
        ]
        await session.execute(sa.insert(_OLD_USE_CASES), rows)


async def _no_endpoints(*_: Any) -> None:
    return None
