"""Fixtures (a plugin): reachout on a real socket with its project on Twilio numbers, texted through the
Twilio emulator and answered by a scripted agent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select

from reachout.app import Runtime, create_app
from reachout.carriers.twilio.carrier import INBOUND_PATH
from reachout.conversations.models import Conversation
from reachout.kit.clock import FakeClock
from reachout.messaging.models import Message
from reachout.provisioning import loader
from reachout.provisioning import service as provisioning
from tests.support import pending
from tests.support.chat import AGENT_TIMEOUT, DEBOUNCE, ScriptedAgent, project_document, registry_of
from tests.support.processes import free_port
from tests.support.twilio_emulator import (
    TwilioEmulator,
    numbers_on_twilio,
    reachout_settings,
    running_emulator,
    serving,
)

SID = "SM" + "a" * 32  # a MessageSid of Twilio's shape


@dataclass
class TwilioChat:
    """reachout on a real socket with its project on Twilio numbers, answered by a scripted agent."""

    runtime: Runtime
    emulator: TwilioEmulator
    agent: ScriptedAgent
    clock: FakeClock

    async def turn(self) -> None:
        """Let the debounce window pass and work once: the agent answers and the reply is handed to Twilio."""
        self.clock.advance(DEBOUNCE)
        await self.runtime.worker.run_once()

    async def settle(self) -> None:
        """Work, moving time to whatever is due next, until nothing is left to do (`pending.settle`)."""
        await pending.settle(self.runtime.database, self.clock, self.runtime.worker.run_once)

    async def inbound(self) -> list[Message]:
        """Every inbound message stored."""
        async with self.runtime.database.read() as session:
            query = select(Message).where(Message.direction == "inbound")
            return list((await session.execute(query)).scalars())

    async def conversations(self) -> int:
        """How many conversations are stored."""
        async with self.runtime.database.read() as session:
            return int((await session.execute(select(func.count()).select_from(Conversation))).scalar_one())


@pytest.fixture
async def twilio_chat(database_url: str, clock: FakeClock, agent: ScriptedAgent) -> AsyncIterator[TwilioChat]:
    """reachout served on a free port, its Twilio the emulator, whose inbound webhook points at it."""
    async with running_emulator() as emulator:
        port = free_port()
        settings = reachout_settings(
            emulator,
            database_url,
            port,
            debounce_seconds=DEBOUNCE,
            agent_timeout_seconds=AGENT_TIMEOUT,
        )
        app = create_app(settings, clock=clock, run_worker=False, agents=registry_of(agent))
        async with serving(app, port):
            runtime: Runtime = app.state.runtime
            async with runtime.database.write.begin() as session:
                document = loader.parse(numbers_on_twilio(project_document()), "test")
                await provisioning.apply(session, document, clock.now())
            runtime.directory.forget()
            emulator.inbound_url = settings.public_url + INBOUND_PATH
            yield TwilioChat(runtime, emulator, agent, clock)
