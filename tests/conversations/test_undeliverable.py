"""A greeting that fails for good before the person answers ends its conversation as `undeliverable`, whether
the carrier refuses it at the hand-off, reports it undelivered later, or the dispatcher gives up on it; a
failed reply in a conversation the person took part in ends nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from reachout.carriers.base import StatusReport
from reachout.carriers.registry import FACTORIES
from reachout.conversations.models import Conversation
from reachout.delivery.status import MessageStatus
from reachout.kit.clock import FakeClock
from reachout.messaging.models import Message
from reachout.messaging.schemas import DEFAULT_VALIDITY_SECONDS
from tests.support.carriers import sandbox_without_lookup
from tests.support.chat import DEBOUNCE, Chat, ScriptedAgent, chat_on, conversations, project_document
from tests.support.events import recorded
from tests.support.polyai import PATH
from tests.support.provisioning import API_KEY, POLYAI_HEADERS, SENDER, USER

INVALID = "+15005550001"  # the sandbox refuses it at the hand-off: 21211
UNROUTABLE = "+15005550002"  # likewise: 21612
UNSUBSCRIBED = "+15005550004"  # likewise: 21610, the person replied STOP to the carrier
LANDLINE = "+14155550001"  # +1 NPA 555 00xx: the sandbox takes it, then reports it undelivered (30006)
BLAND_HEADERS = {"authorization": API_KEY}


@pytest.fixture
async def chat(database_url: str, clock: FakeClock, agent: ScriptedAgent) -> AsyncIterator[Chat]:
    """reachout with the scripted agent, whose send gates cannot look lines up."""
    carriers = {**FACTORIES, "sandbox": sandbox_without_lookup}
    async with chat_on(database_url, clock, agent, project_document(), carriers=carriers) as built:
        yield built


async def greet(chat: Chat, number: str) -> Conversation:
    """A PolyAI greeting from SENDER to `number`, accepted (nothing sent yet); the conversation it opened."""
    body = {"message": "Hi, see you tomorrow at 2pm.", "user_number": number, "agent_number": SENDER}
    response = await chat.service.client.post(PATH, json=body, headers=POLYAI_HEADERS)
    assert response.status_code == 202, response.text
    [conversation] = await conversations(chat)
    return conversation


async def conversation(chat: Chat, conversation_id: str) -> Conversation:
    async with chat.service.runtime.database.read() as session:
        found = await session.get(Conversation, conversation_id)
    assert found is not None
    return found


async def events(chat: Chat, conversation_id: str) -> list[tuple[str, dict[str, Any]]]:
    """The conversation's events past its start, as (what happened, details)."""
    kept = await recorded(chat.service.runtime.database.read, conversation_id=conversation_id, types=ENDINGS)
    return [(event.type.removeprefix("conversation."), event.details) for event in kept]


ENDINGS = ("conversation.ended", "conversation.agent_failed")


async def outbound(chat: Chat, conversation_id: str) -> list[Message]:
    async with chat.service.runtime.database.read() as session:
        rows = await session.execute(
            select(Message)
            .where(Message.conversation_id == conversation_id, Message.direction == "outbound")
            .order_by(Message.created_at, Message.id)
        )
    return list(rows.scalars())


async def bland_detail(chat: Chat, conversation_id: str) -> dict[str, Any]:
    response = await chat.service.client.get(
        f"/v1/sms/conversations/{conversation_id}", headers=BLAND_HEADERS
    )
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def bland_inactive_ids(chat: Chat) -> list[str]:
    filters = '[{"field": "is_active", "operator": "eq", "value": false}]'
    response = await chat.service.client.get(
        "/v1/sms/conversations", params={"filters": filters}, headers=BLAND_HEADERS
    )
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["data"]]


async def report(chat: Chat, message_id: str, status: MessageStatus, error_code: int | None) -> None:
    """A carrier's status callback for a message, down the path every carrier's takes."""
    runtime = chat.service.runtime
    async with runtime.database.write.begin() as session:
        await runtime.events.statuses(
            session, [StatusReport("", status, chat.clock.now(), reference=message_id, error_code=error_code)]
        )


@pytest.mark.parametrize(("number", "code"), [(INVALID, 21211), (UNROUTABLE, 21612)])
async def test_a_greeting_refused_at_the_hand_off_ends_its_conversation_as_undeliverable(
    chat: Chat, number: str, code: int
) -> None:
    opened = await greet(chat, number)
    await chat.service.settle()
    ended = await conversation(chat, opened.id)
    assert (ended.status, ended.end_reason) == ("ended", "undeliverable")
    [greeting] = await outbound(chat, opened.id)
    assert (greeting.status, greeting.error_code) == ("failed", code)
    assert ended.ended_at == greeting.errored_at
    assert await events(chat, opened.id) == [
        (
            "ended",
            {"reason": "undeliverable", "message_id": greeting.id, "status": "failed", "error_code": code},
        )
    ]
    detail = await bland_detail(chat, opened.id)
    assert (detail["is_active"], detail["timed_out_at"]) == (False, None)
    assert [(m["sender"], m["status"], m["error_code"]) for m in detail["messages"]] == [
        ("AGENT", "failed", code)
    ]
    assert await bland_inactive_ids(chat) == [opened.id]
    assert chat.agent.heard == []


async def test_a_greeting_refused_because_the_person_unsubscribed_ends_it_as_opted_out(chat: Chat) -> None:
    opened = await greet(chat, UNSUBSCRIBED)
    await chat.service.settle()
    ended = await conversation(chat, opened.id)
    assert (ended.status, ended.end_reason) == ("ended", "opted_out")
    [(kind, details)] = await events(chat, opened.id)
    assert (kind, details["reason"], details["error_code"]) == ("ended", "opted_out", 21610)


async def test_a_greeting_the_carrier_reports_undelivered_ends_its_conversation_then(chat: Chat) -> None:
    opened = await greet(chat, LANDLINE)
    await chat.service.work()  # handed off: the carrier took it
    [greeting] = await outbound(chat, opened.id)
    assert greeting.status == "sending"
    assert (await conversation(chat, opened.id)).status == "open"
    await chat.service.settle()
    [greeting] = await outbound(chat, opened.id)
    assert (greeting.status, greeting.error_code) == ("undelivered", 30006)
    ended = await conversation(chat, opened.id)
    assert (ended.status, ended.end_reason, ended.ended_at) == ("ended", "undeliverable", greeting.errored_at)
    assert (await bland_detail(chat, opened.id))["is_active"] is False

    await report(chat, greeting.id, MessageStatus.UNDELIVERED, 30006)  # the carrier's callback, again
    assert [kind for kind, _ in await events(chat, opened.id)] == ["ended"]


async def test_a_greeting_that_outlives_its_validity_ends_its_conversation(chat: Chat) -> None:
    opened = await greet(chat, USER)
    chat.clock.advance(DEFAULT_VALIDITY_SECONDS + 1)  # no worker ran meanwhile
    await chat.service.settle()
    [greeting] = await outbound(chat, opened.id)
    assert (greeting.status, greeting.error_code) == ("canceled", 30036)
    ended = await conversation(chat, opened.id)
    assert (ended.status, ended.end_reason) == ("ended", "undeliverable")
    assert await chat.received() == []


async def test_a_failed_reply_does_not_end_a_conversation_the_person_answered(chat: Chat) -> None:
    opened = await greet(chat, USER)
    await chat.settle(5)
    await chat.text("Can I move it?")
    await chat.settle(DEBOUNCE)  # the agent answers; its reply is handed off, not yet delivered
    [greeting, reply] = await outbound(chat, opened.id)
    assert (greeting.status, reply.status) == ("delivered", "sending")
    await report(chat, reply.id, MessageStatus.UNDELIVERED, 30003)
    await chat.settle(30)
    [_, reply] = await outbound(chat, opened.id)
    assert (reply.status, reply.error_code) == ("undelivered", 30003)
    still = await conversation(chat, opened.id)
    assert (still.status, still.end_reason) == ("open", None)
    assert await events(chat, opened.id) == []
    assert (await bland_detail(chat, opened.id))["is_active"] is True


async def test_a_refused_first_reply_does_not_end_a_conversation_the_person_opened(chat: Chat) -> None:
    await chat.text("Hello?", from_=UNROUTABLE)
    await chat.settle(DEBOUNCE + 5)
    [opened] = await conversations(chat)
    [reply] = await outbound(chat, opened.id)  # the conversation's first outbound message, refused
    assert (reply.body, reply.status, reply.error_code) == ("you said: Hello?", "failed", 21612)
    still = await conversation(chat, opened.id)
    assert (still.status, still.end_reason) == ("open", None)
    assert await events(chat, opened.id) == []


async def test_a_superseded_greeting_that_fails_leaves_its_conversation_superseded(chat: Chat) -> None:
    first = await greet(chat, LANDLINE)
    await chat.service.work()  # handed off; the landline's failure is reported later
    body = {"message": "Another reminder.", "user_number": LANDLINE, "agent_number": SENDER}
    response = await chat.service.client.post(PATH, json=body, headers=POLYAI_HEADERS)
    assert response.status_code == 202
    chat.clock.advance(0.5)
    await chat.service.settle()
    older, newer = await conversations(chat)
    assert older.id == first.id
    assert (older.status, older.end_reason) == ("ended", "superseded")
    assert await events(chat, older.id) == [("ended", {"reason": "superseded"})], "ended once, superseded"
    assert (newer.status, newer.end_reason) == ("ended", "undeliverable")
