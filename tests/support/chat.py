"""Fixtures: a reachout whose project is answered by a scripted agent, and a handset to text it (a plugin)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from reachout.agents.base import Agent, AgentKind, AgentTurn, ConversationView, EndReason
from reachout.agents.registry import AgentRegistry
from reachout.app import create_app
from reachout.carriers.plugin import CarrierFactory
from reachout.carriers.registry import FACTORIES
from reachout.conversations.models import Conversation
from reachout.kit.clock import FakeClock
from tests.support import pending
from tests.support.polyai import EXAMPLE, PATH
from tests.support.provisioning import (
    API_KEY,
    POLYAI_HEADERS,
    SENDER,
    USE_CASE,
    USER,
    standard_document,
)
from tests.support.service import Service, make_settings

DEBOUNCE = 2.0
AGENT_TIMEOUT = 0.05  # real seconds: a hanging agent is given up on quickly


@dataclass
class ScriptedAgent:
    """Answers "you said: <text>" (`prefix`: its first words); ends on "bye"; raises while `failures` remain;
    records what it heard, and the history it saw when it did."""

    failures: int = 0
    hangs: int = 0  # turns on which it never answers (the worker's timeout gives up on it)
    heard: list[str] = field(default_factory=list)
    started: list[str] = field(default_factory=list)
    histories: list[list[str]] = field(default_factory=list)
    prefix: str = "you said"

    async def start(self, conversation: ConversationView) -> AgentTurn:
        self.started.append(conversation.conversation_id)
        return AgentTurn(reply=None, state={"turns": 0})

    async def respond(self, conversation: ConversationView, text: str) -> AgentTurn:
        if self.hangs > 0:
            self.hangs -= 1
            await asyncio.Event().wait()
        if self.failures > 0:
            self.failures -= 1
            raise RuntimeError("the model is down")
        self.heard.append(text)
        self.histories.append([line.text for line in conversation.history])
        turns = int(conversation.state.get("turns", 0)) + 1
        end = EndReason.COMPLETED if text.strip().lower() == "bye" else None
        return AgentTurn(
            reply=f"{self.prefix}: {text}", variables={"turns": turns}, state={"turns": turns}, end=end
        )


@dataclass
class Chat:
    """The service, its scripted agent, and a handset's view of it."""

    service: Service
    agent: ScriptedAgent

    @property
    def clock(self) -> FakeClock:
        return self.service.clock

    async def text(self, body: str, *, from_: str = USER, to: str = SENDER) -> httpx.Response:
        payload = {"from": from_, "to": to, "body": body}
        response = await self.service.client.post("/sandbox/inbound", json=payload)
        assert response.status_code == 201, response.text
        return response

    async def received(self, number: str = USER) -> list[str]:
        """What the handset received, oldest first."""
        response = await self.service.client.get(f"/sandbox/handsets/{number}/messages")
        return [m["body"] for m in response.json() if m["direction"] == "to_handset"]

    async def settle(self, seconds: float = 30.0) -> None:
        """Let `seconds` pass, working at each due time in them: turns fire, texts are sent and delivered."""
        end = self.clock.now() + timedelta(seconds=seconds)
        await pending.settle(self.service.runtime.database, self.clock, self.service.work, within=seconds)
        # Exactly `seconds` on (tests place events at the window's edges), unless a paced send went past.
        self.clock.set(max(end, self.clock.now()))
        await self.service.work()


async def greet(chat: Chat) -> None:
    """The PolyAI example greeting from SENDER, handed to the handset (a conversation opens)."""
    response = await chat.service.client.post(
        PATH, json=EXAMPLE | {"agent_number": SENDER}, headers=POLYAI_HEADERS
    )
    assert response.status_code == 202
    await chat.settle(2)


async def conversations(chat: Chat) -> list[Conversation]:
    """Every conversation, oldest first."""
    async with chat.service.runtime.database.read() as session:
        return list((await session.execute(select(Conversation).order_by(Conversation.opened_at))).scalars())


def project_document(**conversations: Any) -> dict[str, Any]:
    document = standard_document()
    project = document["accounts"][0]["projects"][0]
    project["agent"] = {"pathway": "scripted"}
    if conversations:
        project["conversations"] = conversations
    return document


# A text through a use case that has nothing to do with the greeting's appointment.
USE_CASE_TEXT = "Our summer sale starts Monday: reply YES for early access."


def use_case_chat_document(replies: Any = None, **conversations: Any) -> dict[str, Any]:
    """`project_document` with a use case sending from SENDER; `replies`: its setting (None leaves it out)."""
    document = project_document(**conversations)
    use_case: dict[str, Any] = {
        "id": USE_CASE,
        "name": "promotions",
        "sender_pool": [SENDER],
        "campaign": "verified",
    }
    if replies is not None:
        use_case["replies"] = replies
    document["accounts"][0]["projects"][0]["use_cases"] = [use_case]
    return document


async def send_through_use_case(chat: Chat, body: str = USE_CASE_TEXT) -> str:
    """An Amigo send through the use case to USER, handed to the handset; its message id."""
    response = await chat.service.client.post(
        "/v1/sms/",
        json={"use_case_id": USE_CASE, "to_phone_number": USER, "message": body},
        headers={"Authorization": f"Bearer {API_KEY}"},
    )
    assert response.status_code == 201, response.text
    await chat.settle(2)
    return str(response.json()["id"])


def registry_of(agent: Agent, **pathways: Agent) -> AgentRegistry:
    """Every pathway runs `agent`, but those named in `pathways`, which run theirs."""

    async def factory(_session: Any, config: Mapping[str, Any], _state: Mapping[str, Any]) -> Agent:
        return pathways.get(str(config.get("pathway")), agent)

    return AgentRegistry({AgentKind.PATHWAY: factory})


@pytest.fixture
def agent() -> ScriptedAgent:
    return ScriptedAgent()


@contextlib.asynccontextmanager
async def chat_on(
    database_url: str,
    clock: FakeClock,
    agent: ScriptedAgent,
    document: dict[str, Any],
    registry: AgentRegistry | None = None,
    carriers: Mapping[str, CarrierFactory] = FACTORIES,
    **settings: Any,
) -> AsyncIterator[Chat]:
    """reachout in this process, provisioned with `document`, its agent `agent` (or the agents of
    `registry`), its carriers built by `carriers`; `settings` override ours."""
    values: dict[str, Any] = {
        "debounce_seconds": DEBOUNCE,
        "agent_retry_base_seconds": 1.0,
        "agent_timeout_seconds": AGENT_TIMEOUT,
    }
    app = create_app(
        make_settings(database_url, **(values | settings)),
        clock=clock,
        run_worker=False,
        agents=registry_of(agent) if registry is None else registry,
        carriers=carriers,
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://reachout.test") as client:
            service = Service(runtime=app.state.runtime, client=client, clock=clock)
            await service.provision(document)
            yield Chat(service, agent)


@pytest.fixture
def chat_factory(database_url: str, clock: FakeClock, agent: ScriptedAgent) -> Callable[..., Any]:
    """Build a Chat with project conversation settings; use as `async with chat_factory(...) as chat`."""

    def build(**conversations: Any) -> Any:
        return chat_on(database_url, clock, agent, project_document(**conversations))

    return build


@pytest.fixture
async def chat(chat_factory: Callable[..., Any]) -> AsyncIterator[Chat]:
    async with chat_factory() as built:
        yield built
