"""Fixtures shared by the whole suite. Database tests run once on SQLite and once on PostgreSQL."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from reachout.db.engine import Database, open_database
from reachout.kit.clock import FakeClock
from reachout.provisioning import loader
from reachout.provisioning import service as provisioning
from tests.support import databases
from tests.support.provisioning import standard_document
from tests.support.service import BACKENDS, Service, in_process, make_settings

# Fixtures more than one module uses. A plugin comes before those importing it, or pytest cannot rewrite its
# asserts (it would be imported already).
pytest_plugins = [
    "tests.support.polyai",
    "tests.support.chat",
    "tests.support.migrations",
    "tests.support.twilio_callbacks",
    "tests.support.twilio_chat",
    "tests.support.webhooks",
]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return databases.sqlite_template(tmp_path_factory.mktemp("sqlite-template"))


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    reason = databases.postgres_unavailable_reason()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required under CI=true but does not answer: {reason}")
        pytest.skip(f"PostgreSQL not available ({reason}); set REACHOUT_TEST_POSTGRES_URL to run these")
    with databases.postgres_database() as url:
        yield url


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty, migrated database for one test."""
    if backend == "sqlite":
        return databases.sqlite_copy(request.getfixturevalue("sqlite_template"), tmp_path)
    url: str = request.getfixturevalue("postgres_url")
    asyncio.run(databases.truncate_all(url))
    return url


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def database(database_url: str, clock: FakeClock) -> AsyncIterator[Database]:
    """The database of `database_url`, open, with the standard provisioning document applied."""
    db = open_database(database_url)
    async with db.write.begin() as session:
        await provisioning.apply(session, loader.parse(standard_document(), "test"), clock.now())
    yield db
    await db.dispose()


@pytest.fixture
async def service(database_url: str, clock: FakeClock) -> AsyncIterator[Service]:
    async with in_process(make_settings(database_url), clock, standard_document()) as svc:
        yield svc
