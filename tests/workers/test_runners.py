"""The worker's runners: each in a loop of its own, and a carrier added through the registry alone."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fastapi import APIRouter
from sqlalchemy import select

from reachout.carriers.base import Accepted, OutboundText, SendResult
from reachout.carriers.plugin import CarrierContext, CarrierRoutes
from reachout.carriers.registry import FACTORIES
from reachout.kit.clock import FakeClock
from reachout.kit.jobs.runner import Runner
from reachout.messaging.models import Message
from reachout.phones.lookup import LineTypeLookup
from tests.support.carriers import move_number
from tests.support.chat import ScriptedAgent, chat_on, project_document
from tests.support.provisioning import POLYAI_HEADERS, SENDER, USER, standard_document
from tests.support.service import in_process, make_settings


class HeldClock(FakeClock):
    """A fake clock whose waits for a later instant last until `release` (a paced send waiting its slot)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.waiting = asyncio.Event()

    async def sleep_until(self, instant: datetime) -> None:
        if instant > self.now():
            self.waiting.set()
            await self.release.wait()
        await super().sleep_until(instant)


async def test_a_conversation_turn_does_not_wait_behind_a_paced_batch(database_url: str) -> None:
    clock = HeldClock()
    document = project_document()
    for number in document["accounts"][0]["projects"][0]["numbers"]:
        number["throughput_mps"] = 1.0  # paced: each send waits for its slot
    agent = ScriptedAgent()
    async with chat_on(database_url, clock, agent, document, worker_poll_seconds=0.01) as chat:
        response = await chat.service.client.post(
            "/v1/outbound-sms",
            json={"message": "Hi, how can I help?", "user_number": USER, "agent_number": SENDER},
            headers=POLYAI_HEADERS,
        )
        assert response.status_code == 202, response.text
        stop = asyncio.Event()
        worker = asyncio.create_task(chat.service.runtime.worker.run(stop))
        try:
            await asyncio.wait_for(clock.waiting.wait(), 5)  # the dispatcher holds the greeting for its slot
            await chat.text("hi")  # meanwhile the person answers, and the turn comes due
            clock.advance(5)
            await asyncio.wait_for(reply_queued(chat.service.runtime.database), 5)
            assert agent.heard == ["hi"], "the turn ran while the paced batch waited"
            assert not clock.release.is_set()
        finally:
            clock.release.set()
            stop.set()
            await asyncio.wait_for(worker, 10)


async def reply_queued(database: Any) -> None:
    while True:
        async with database.read() as session:
            bodies = (await session.execute(select(Message.body))).scalars().all()
        if "you said: hi" in bodies:
            return
        await asyncio.sleep(0.01)


@dataclass
class FakeCarrier:
    """A carrier that takes every text, with a route of its own and a runner that counts its passes."""

    sent: list[OutboundText] = field(default_factory=list)
    passes: int = 0
    closed: bool = False

    # --- the plugin ---
    kind = "fake"

    @property
    def text(self) -> FakeCarrier:
        return self

    def routes(self) -> Sequence[CarrierRoutes]:
        router = APIRouter()

        @router.get("/v1/webhook/fake/ping")
        async def ping() -> dict[str, int]:
            return {"sent": len(self.sent)}

        return (CarrierRoutes(router),)

    def runners(self) -> Sequence[Runner]:
        return (self,)

    def line_type_lookup(self) -> LineTypeLookup | None:
        return None

    async def close(self) -> None:
        self.closed = True

    # --- its runner ---
    name = "fake-reports"
    batch_size = 1

    async def run_once(self) -> int:
        self.passes += 1
        return 0

    # --- its text port ---
    async def send(self, text: OutboundText) -> SendResult:
        self.sent.append(text)
        return Accepted(f"FAKE{len(self.sent)}")

    async def find(self, text: OutboundText, since: datetime) -> Sequence[Accepted]:
        return ()


async def test_a_carrier_is_added_through_the_registry_alone(database_url: str, clock: FakeClock) -> None:
    fake = FakeCarrier()

    def build(_context: CarrierContext) -> FakeCarrier:
        return fake

    carriers = {**FACTORIES, "fake": build}
    async with in_process(make_settings(database_url), clock, standard_document(), carriers) as service:
        await move_number(service, SENDER, "fake")
        payload = {"message": "Hello", "user_number": USER, "agent_number": SENDER}
        response = await service.client.post("/v1/outbound-sms", json=payload, headers=POLYAI_HEADERS)
        assert response.status_code == 202, response.text
        await service.work()

        assert [(t.from_number, t.to_number, t.body) for t in fake.sent] == [(SENDER, USER, "Hello")]
        assert fake.passes == 1, "its runner ran in the worker's pass"
        assert (await service.client.get("/v1/webhook/fake/ping")).json() == {"sent": 1}
        async with service.runtime.database.read() as session:
            message = (await session.execute(select(Message))).scalar_one()
            assert (message.carrier, message.carrier_sid, message.status) == ("fake", "FAKE1", "sending")
    assert fake.closed
