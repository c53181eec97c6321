"""Fixtures shared by the whole suite. Database tests run once on SQLite and once on PostgreSQL."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from reachout.app import Runtime, create_app
from reachout.carriers.plugin import CarrierFactory
from reachout.carriers.registry import FACTORIES
from reachout.config import Settings
from reachout.db.engine import Database, open_database
from reachout.kit.clock import FakeClock
from reachout.provisioning import loader
from reachout.provisioning import service as provisioning
from tests.support import databases
from tests.support.provisioning import standard_document

BACKENDS = ["sqlite", "postgresql"]

pytest_plugins = ["tests.support.chat"]


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


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "config": None,
        "tenancy_cache_seconds": 0.0,
        "sandbox_sent_after_seconds": 1.0,
        "sandbox_delivered_after_seconds": 3.0,
        "lease_seconds": 30.0,
    }
    values.update(overrides)
    return Settings(**values)


@dataclass
class Service:
    """An in-process reachout with its worker driven by hand, and a client speaking to it."""

    runtime: Runtime
    client: httpx.AsyncClient
    clock: FakeClock

    async def work(self) -> int:
        """Run one worker pass at the current fake time."""
        return await self.runtime.worker.run_once()

    async def settle(self, step_seconds: float = 1.0, max_steps: int = 20) -> None:
        """Advance time and work until nothing is left to do."""
        for _ in range(max_steps):
            await self.work()
            self.clock.advance(step_seconds)
        await self.work()

    async def provision(self, document: dict[str, Any]) -> None:
        async with self.runtime.database.write.begin() as session:
            await provisioning.apply(session, loader.parse(document, "test"), self.clock.now())
        self.runtime.directory.forget()


@asynccontextmanager
async def in_process(
    settings: Settings,
    clock: FakeClock,
    document: dict[str, Any] | None = None,
    carriers: Mapping[str, CarrierFactory] = FACTORIES,
) -> AsyncIterator[Service]:
    """reachout in this process, its worker driven by hand, provisioned with `document` if one is given;
    `carriers`: the carrier registry's factories."""
    app = create_app(settings, clock=clock, run_worker=False, carriers=carriers)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://reachout.test") as client:
            svc = Service(runtime=app.state.runtime, client=client, clock=clock)
            if document is not None:
                await svc.provision(document)
            yield svc


@pytest.fixture
async def service(database_url: str, clock: FakeClock) -> AsyncIterator[Service]:
    async with in_process(make_settings(database_url), clock, standard_document()) as svc:
        yield svc
