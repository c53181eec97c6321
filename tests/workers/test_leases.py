"""A result written after its lease ended changes nothing, for every runner that works outside its claim.

Each test lets a worker claim, lets the lease run out and another claim take the work over, and only then lets
the first worker write what it learned: the row keeps the newer claim's outcome.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select

from reachout.agents.base import AgentTurn, ConversationView
from reachout.carriers.base import Rejected
from reachout.conversations import jobs_repository
from reachout.conversations.turns import ConversationWorker
from reachout.delivery.failures import INVALID_TO_NUMBER
from reachout.events.models import Event
from reachout.kit.clock import FakeClock
from reachout.kit.jobs.leases import Lease
from reachout.kit.jobs.retry import RetryStrategy
from reachout.messaging import claims, results
from reachout.messaging.models import Message
from reachout.messaging.schemas import SendOutcome
from reachout.tenancy.settings import WARNING_TEXT
from tests.support.chat import Chat, ScriptedAgent, chat_on, project_document
from tests.support.provisioning import POLYAI_HEADERS as HEADERS
from tests.support.provisioning import SENDER, USER
from tests.support.service import Service

LEASE = timedelta(seconds=30)


async def greet(service: Service) -> str:
    payload = {"message": "Hello", "user_number": USER, "agent_number": SENDER}
    response = await service.client.post("/v1/outbound-sms", json=payload, headers=HEADERS)
    assert response.status_code == 202, response.text
    async with service.runtime.database.read() as session:
        return (await session.execute(select(Message.id))).scalar_one()


async def test_a_dispatchers_late_result_leaves_the_newer_claims_hand_off(service: Service) -> None:
    message_id = await greet(service)
    runtime = service.runtime
    async with runtime.database.write.begin() as session:  # a dispatcher claims, then stalls past its lease
        stalled = await claims.claim(session, service.clock, "stalled", LEASE, 0.5, 10)
    assert stalled.lease is not None and [m.id for m in stalled.messages] == [message_id]
    service.clock.advance(LEASE.total_seconds() + 1)
    await service.work()  # the lease is over: another claim sends it
    async with runtime.database.read() as session:
        handed = await session.get(Message, message_id)
        assert handed is not None and handed.status == "sending" and handed.carrier_sid is not None
        sid = handed.carrier_sid

    late = SendOutcome(stalled.messages[0], "sandbox", Rejected(INVALID_TO_NUMBER))
    async with runtime.database.write.begin() as session:
        recorded = await results.record_send_results(
            session, [late], service.clock.now(), RetryStrategy(2.0, 3), stalled.lease
        )
    assert recorded == 0
    async with runtime.database.read() as session:
        message = await session.get(Message, message_id)
        assert message is not None
        assert (message.status, message.carrier_sid, message.error_code) == ("sending", sid, None)
        events = (await session.execute(select(Event.type))).scalars().all()
        assert "message.failed" not in events


@dataclass
class StallingAgent(ScriptedAgent):
    """Answers as the scripted agent does, but each of its first two turns waits for its own release."""

    releases: tuple[asyncio.Event, asyncio.Event] = field(
        default_factory=lambda: (asyncio.Event(), asyncio.Event())
    )
    stalls: list[asyncio.Event] = field(default_factory=lambda: [asyncio.Event(), asyncio.Event()])
    calls: int = 0

    async def respond(self, conversation: ConversationView, text: str) -> AgentTurn:
        call, self.calls = self.calls, self.calls + 1
        if call < 2:
            self.stalls[call].set()
            await self.releases[call].wait()
            return AgentTurn(reply=f"answer {call + 1}", state=dict(conversation.state))
        return await super().respond(conversation, text)


async def test_a_turn_answered_after_its_lease_ended_is_not_applied(
    database_url: str, clock: FakeClock
) -> None:
    agent = StallingAgent()
    async with chat_on(database_url, clock, agent, project_document(), agent_timeout_seconds=60) as chat:
        await chat_turn_due(chat)
        turns = conversation_runner(chat)
        first = asyncio.create_task(turns.run_once())  # claims the turn; its agent stalls
        await asyncio.wait_for(agent.stalls[0].wait(), 5)
        chat.clock.advance(chat.service.runtime.settings.lease_seconds + 1)
        second = asyncio.create_task(turns.run_once())  # the lease is over: claimed again, and stalls too
        await asyncio.wait_for(agent.stalls[1].wait(), 5)
        agent.releases[0].set()
        await asyncio.wait_for(first, 5)
        assert await replies(chat) == [], "the first answer came after its lease ended"
        agent.releases[1].set()
        await asyncio.wait_for(second, 5)
        assert await replies(chat) == ["answer 2"]
        await chat.settle(10)
        assert await chat.received() == ["Hi, how can I help?", "answer 2"]


async def test_a_timer_fired_after_its_lease_ended_changes_nothing(
    database_url: str, clock: FakeClock
) -> None:
    async with chat_on(database_url, clock, ScriptedAgent(), project_document()) as chat:
        await chat_turn_due(chat)
        await chat.settle(30)
        chat.clock.advance(86_400)  # the inactivity warning is due
        runtime = chat.service.runtime
        lease = timedelta(seconds=runtime.settings.lease_seconds)
        async with runtime.database.write.begin() as session:
            [stalled] = await jobs_repository.claim(session, chat.clock.now(), lease_for(chat, "stalled"), 10)
        chat.clock.advance(lease.total_seconds() + 1)
        async with runtime.database.write.begin() as session:  # another worker holds it now
            [newer] = await jobs_repository.claim(session, chat.clock.now(), lease_for(chat, "newer"), 10)
        assert newer.id == stalled.id
        before = await replies(chat)
        await conversation_runner(chat)._timer(stalled)
        assert await replies(chat) == before, "the stalled worker's warning was not sent"
        chat.clock.advance(lease.total_seconds() + 1)
        await chat.settle(10)  # the newer lease ran out too: the warning fires once
        assert (await replies(chat)).count(WARNING_TEXT) == 1


def lease_for(chat: Chat, owner: str) -> Lease:
    return Lease.take(
        owner, chat.clock.now() + timedelta(seconds=chat.service.runtime.settings.lease_seconds)
    )


async def replies(chat: Chat) -> list[str]:
    """The texts reachout has queued or sent to the person after the greeting, oldest first."""
    async with chat.service.runtime.database.read() as session:
        rows = await session.execute(
            select(Message.body)
            .where(Message.direction == "outbound", Message.to_number == USER)
            .order_by(Message.created_at, Message.id)
        )
        return list(rows.scalars())[1:]


async def chat_turn_due(chat: Chat) -> None:
    """A greeting, and the person's answer, whose turn is now due."""
    response = await chat.service.client.post(
        "/v1/outbound-sms",
        json={"message": "Hi, how can I help?", "user_number": USER, "agent_number": SENDER},
        headers=HEADERS,
    )
    assert response.status_code == 202, response.text
    await chat.settle(5)
    await chat.text("hi")
    chat.clock.advance(5)


def conversation_runner(chat: Chat) -> ConversationWorker:
    [runner] = [r for r in chat.service.runtime.worker.runners if isinstance(r, ConversationWorker)]
    return runner
