"""A person's reply to a use case's text: it opens a conversation holding that text, answered as the use case
says (`replies`: nobody by default, the project's agent, or one of its own), keywords first as always."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from reachout.compliance.models import OptOut
from reachout.conversations.models import Conversation
from reachout.kit.clock import FakeClock
from reachout.messaging.models import Message
from reachout.tenancy.settings import HELP_TEXT, OPT_OUT_TEXT
from tests.support.chat import (
    USE_CASE_TEXT,
    Chat,
    ScriptedAgent,
    chat_on,
    conversations,
    greet,
    registry_of,
    send_through_use_case,
    use_case_chat_document,
)
from tests.support.events import recorded
from tests.support.polyai import EXAMPLE
from tests.support.provisioning import API_KEY, USE_CASE, USER

REPLY = "yes see you then"


async def transcript(chat: Chat, conversation: Conversation) -> list[tuple[str, str]]:
    """The conversation's messages, oldest first, as (direction, body)."""
    async with chat.service.runtime.database.read() as session:
        rows = await session.execute(
            select(Message.direction, Message.body)
            .where(Message.conversation_id == conversation.id)
            .order_by(Message.created_at, Message.id)
        )
        return [(direction, body) for direction, body in rows]


async def events(chat: Chat) -> list[tuple[str | None, str, dict[str, Any]]]:
    """What the project was told of its conversations beyond their start, oldest first, as (conversation
    id, event type, details): their ends, and each text received in one nobody answers."""
    kept = await recorded(chat.service.runtime.database.read, types=TOLD)
    answered_by_nobody = {c.id for c in await conversations(chat) if c.answered_by == "nobody"}
    return [
        (e.conversation_id, e.type, e.details)
        for e in kept
        if e.type != "message.received" or e.conversation_id in answered_by_nobody
    ]


TOLD = ("conversation.ended", "message.received")


async def inbound_id(chat: Chat, body: str) -> str:
    async with chat.service.runtime.database.read() as session:
        query = select(Message.id).where(Message.direction == "inbound", Message.body == body)
        return (await session.execute(query)).scalar_one()


@pytest.fixture
async def chat_on_none(database_url: str, clock: FakeClock, agent: ScriptedAgent) -> AsyncIterator[Chat]:
    async with chat_on(database_url, clock, agent, use_case_chat_document("none")) as chat:
        yield chat


@pytest.mark.parametrize("greeted", [True, False], ids=["during-an-appointment-chat", "out-of-the-blue"])
async def test_the_agent_that_answers_a_reply_to_a_use_case_text_has_seen_that_text(
    database_url: str, clock: FakeClock, agent: ScriptedAgent, greeted: bool
) -> None:
    """The trial: a person whose appointment conversation is open answers an unrelated use-case text."""
    async with chat_on(database_url, clock, agent, use_case_chat_document("project")) as chat:
        if greeted:
            await greet(chat)
        await send_through_use_case(chat)
        await chat.text(REPLY)
        await chat.settle()
        assert agent.histories == [[USE_CASE_TEXT, REPLY]], "the text it answered, and not the appointment"
        *earlier, replied = await conversations(chat)
        assert [(c.status, c.end_reason) for c in earlier] == ([("ended", "superseded")] if greeted else [])
        assert (replied.status, replied.use_case_id, replied.answered_by) == ("open", USE_CASE, "agent")
        assert replied.agent == {"pathway": "scripted"}
        assert await transcript(chat, replied) == [
            ("outbound", USE_CASE_TEXT),
            ("inbound", REPLY),
            ("outbound", f"you said: {REPLY}"),
        ]


async def test_later_texts_stay_in_the_use_case_conversation(
    database_url: str, clock: FakeClock, agent: ScriptedAgent
) -> None:
    async with chat_on(database_url, clock, agent, use_case_chat_document("project")) as chat:
        await send_through_use_case(chat)
        await chat.text("what sale?")
        await chat.settle()
        await chat.text("ok thanks")
        await chat.settle()
        [conversation] = await conversations(chat)
        assert agent.histories[-1] == [USE_CASE_TEXT, "what sale?", "you said: what sale?", "ok thanks"]
        assert len(await transcript(chat, conversation)) == 5


async def test_a_greeting_sent_after_the_use_case_text_is_what_a_reply_answers(
    database_url: str, clock: FakeClock, agent: ScriptedAgent
) -> None:
    async with chat_on(database_url, clock, agent, use_case_chat_document("project")) as chat:
        await send_through_use_case(chat)
        clock.advance(60)
        await greet(chat)
        await chat.text("Can I move it to 3pm instead?")
        await chat.settle()
        assert agent.histories == [[EXAMPLE["message"], "Can I move it to 3pm instead?"]]
        [conversation] = await conversations(chat)
        assert conversation.use_case_id is None
        assert (await transcript(chat, conversation))[0] == ("outbound", EXAMPLE["message"])


async def test_a_use_case_text_older_than_the_last_conversation_is_not_what_a_text_answers(
    database_url: str, clock: FakeClock, agent: ScriptedAgent
) -> None:
    async with chat_on(database_url, clock, agent, use_case_chat_document("none")) as chat:
        await send_through_use_case(chat)
        clock.advance(60)
        await greet(chat)
        await chat.text("bye")  # the scripted agent ends the conversation
        await chat.settle()
        await chat.text("one more thing")
        await chat.settle()
        assert (await chat.received())[-1] == "you said: one more thing"
        assert [c.use_case_id for c in await conversations(chat)] == [None, None]


async def test_a_use_case_with_its_own_agent_has_it_answer(database_url: str, clock: FakeClock) -> None:
    project_agent, survey = ScriptedAgent(), ScriptedAgent(prefix="survey says")
    document = use_case_chat_document({"pathway": "survey"})
    registry = registry_of(project_agent, survey=survey)
    async with chat_on(database_url, clock, project_agent, document, registry) as chat:
        await greet(chat)
        await send_through_use_case(chat)
        await chat.text(REPLY)
        await chat.settle()
        assert (await chat.received())[-1] == f"survey says: {REPLY}"
        assert survey.histories == [[USE_CASE_TEXT, REPLY]]
        assert project_agent.heard == []
        [_, replied] = await conversations(chat)
        assert (replied.agent, replied.answered_by) == ({"pathway": "survey"}, "agent")


@pytest.mark.parametrize("replies", [None, "none"], ids=["by-default", "replies-none"])
async def test_a_reply_nobody_answers_is_kept_with_the_text_and_an_event(
    database_url: str, clock: FakeClock, agent: ScriptedAgent, replies: str | None
) -> None:
    """Nobody answers by default: the project's agent knows nothing of what a use case sends."""
    async with chat_on(database_url, clock, agent, use_case_chat_document(replies)) as chat:
        await greet(chat)
        await send_through_use_case(chat)
        await chat.text(REPLY)
        await chat.settle()
        assert await chat.received() == [EXAMPLE["message"], USE_CASE_TEXT]
        assert agent.heard == []
        greeting, replied = await conversations(chat)
        assert (replied.status, replied.answered_by, replied.use_case_id) == ("open", "nobody", USE_CASE)
        assert replied.agent == {} and replied.engaged_at is not None
        assert await transcript(chat, replied) == [("outbound", USE_CASE_TEXT), ("inbound", REPLY)]
        assert await events(chat) == [
            (greeting.id, "conversation.ended", {"reason": "superseded"}),
            (replied.id, "message.received", {}),
        ]
        [received] = await recorded(chat.service.runtime.database.read, types=["message.received"])
        assert received.message_id == await inbound_id(chat, REPLY)


async def test_where_nobody_answers_every_text_is_an_event_and_the_end_comes_without_a_word(
    database_url: str, clock: FakeClock, agent: ScriptedAgent
) -> None:
    inactivity = {
        "warn_after_seconds": 60,
        "end_after_warning_seconds": 30,
        "timeout_message": "Bye for now.",
    }
    document = use_case_chat_document(inactivity=inactivity)
    async with chat_on(database_url, clock, agent, document) as chat:
        await send_through_use_case(chat)
        await chat.text("who is this?")
        clock.advance(50)
        await chat.text("hello?")
        await chat.settle(89)
        [conversation] = await conversations(chat)
        assert conversation.status == "open", "the silence is counted from the last text"
        await chat.settle(2)
        [conversation] = await conversations(chat)
        assert (conversation.status, conversation.end_reason) == ("ended", "inactivity")
        assert await chat.received() == [USE_CASE_TEXT], "no warning, no timeout text, no answer"
        assert [kind for _, kind, _ in await events(chat)] == [
            "message.received",
            "message.received",
            "conversation.ended",
        ]


@pytest.mark.parametrize("body", ["STOP", "unsubscribe"])
async def test_stop_opts_out_where_nobody_answers(chat_on_none: Chat, body: str) -> None:
    chat = chat_on_none
    await send_through_use_case(chat)
    await chat.text(body)
    await chat.settle()
    assert await chat.received() == [USE_CASE_TEXT, OPT_OUT_TEXT]
    async with chat.service.runtime.database.read() as session:
        assert list((await session.execute(select(OptOut.number))).scalars()) == [USER]
    [conversation] = await conversations(chat)
    assert (conversation.status, conversation.end_reason) == ("ended", "opted_out")
    assert await transcript(chat, conversation) == [
        ("outbound", USE_CASE_TEXT),
        ("inbound", body),
        ("outbound", OPT_OUT_TEXT),
    ]
    refused = await chat.service.client.post(
        "/v1/sms/",
        json={"use_case_id": USE_CASE, "to_phone_number": USER, "message": "Last chance!"},
        headers={"Authorization": f"Bearer {API_KEY}"},
    )
    assert refused.status_code == 422 and "opted out" in refused.json()["detail"]


async def test_help_is_answered_where_nobody_answers(chat_on_none: Chat) -> None:
    chat = chat_on_none
    await send_through_use_case(chat)
    await chat.text("HELP")
    await chat.settle()
    assert await chat.received() == [USE_CASE_TEXT, HELP_TEXT]
    [conversation] = await conversations(chat)
    assert await transcript(chat, conversation) == [
        ("outbound", USE_CASE_TEXT),
        ("inbound", "HELP"),
        ("outbound", HELP_TEXT),
    ]
    assert chat.agent.heard == [] and [kind for _, kind, _ in await events(chat)] == ["message.received"]


async def test_a_reply_to_a_deleted_use_case_is_answered_by_nobody(
    database_url: str, clock: FakeClock, agent: ScriptedAgent
) -> None:
    async with chat_on(database_url, clock, agent, use_case_chat_document("project")) as chat:
        await send_through_use_case(chat)
        document = use_case_chat_document()
        document["accounts"][0]["projects"][0]["use_cases"] = []
        await chat.service.provision(document)
        await chat.text(REPLY)
        await chat.settle()
        assert agent.heard == [] and await chat.received() == [USE_CASE_TEXT]
        [conversation] = await conversations(chat)
        assert conversation.answered_by == "nobody"
