"""reachout in the test's own process: its settings, the app with its worker driven by hand, a client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import select

from reachout.app import Runtime, create_app
from reachout.carriers.plugin import CarrierFactory
from reachout.carriers.registry import FACTORIES
from reachout.config import Settings
from reachout.kit.clock import FakeClock
from reachout.messaging.models import Message
from reachout.provisioning import loader
from reachout.provisioning import service as provisioning
from tests.support import pending

BACKENDS = ["sqlite", "postgresql"]


def make_settings(database_url: str, **overrides: Any) -> Settings:
    """Settings for a test's reachout on `database_url`: no provisioning file, no caching; `overrides` win."""
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
        """Run one worker pass at the current fake time, and wait for the webhook requests it made."""
        handled = await self.runtime.worker.run_once()
        await self.runtime.webhooks.drain()
        return handled

    async def settle(self, within: float | None = None) -> None:
        """Work, moving time to whatever is due next, until nothing is left to do (`pending.settle`);
        `within`: only what falls due in that many seconds."""
        await pending.settle(self.runtime.database, self.clock, self.work, within=within)

    async def provision(self, document: dict[str, Any]) -> None:
        """Apply a provisioning document now, and make the service read it at once."""
        async with self.runtime.database.write.begin() as session:
            await provisioning.apply(session, loader.parse(document, "test"), self.clock.now())
        self.runtime.directory.forget()


async def messages(service: Service) -> list[Message]:
    """Every stored message, oldest first."""
    async with service.runtime.database.read() as session:
        return list((await session.execute(select(Message).order_by(Message.created_at))).scalars())


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
