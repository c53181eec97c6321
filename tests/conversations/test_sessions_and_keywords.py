"""Session rules, and opt-out, opt-in and help keywords answered before any agent sees the text."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from reachout.compliance.models import OptOut
from reachout.messaging.models import Message
from reachout.tenancy.settings import HELP_TEXT, OPT_IN_TEXT, OPT_OUT_TEXT
from tests.support.chat import Chat, conversations, greet
from tests.support.polyai import EXAMPLE
from tests.support.provisioning import POLYAI_HEADERS, SECOND_SENDER, SENDER, USER


async def opt_outs(chat: Chat) -> list[tuple[str, str]]:
    async with chat.service.runtime.database.read() as session:
        return [(o.number, o.keyword) for o in (await session.execute(select(OptOut))).scalars()]


# --- sessions --------------------------------------------------------------------------------------------


async def test_a_first_text_from_a_person_opens_a_conversation_the_agent_answers(chat: Chat) -> None:
    await chat.text("Hi, is this the clinic?")
    await chat.settle()
    assert await chat.received() == ["you said: Hi, is this the clinic?"]
    [conversation] = await conversations(chat)
    assert (conversation.agent_number, conversation.user_number, conversation.status) == (
        SENDER,
        USER,
        "open",
    )
    assert conversation.engaged_at is not None


async def test_texts_to_two_agent_numbers_are_two_sessions(chat: Chat) -> None:
    await chat.text("one", to=SENDER)
    await chat.text("two", to=SECOND_SENDER)
    await chat.settle()
    assert sorted(c.agent_number for c in await conversations(chat)) == [SENDER, SECOND_SENDER]


async def test_a_new_greeting_closes_the_open_session_and_replies_join_the_new_one(chat: Chat) -> None:
    await greet(chat)
    await chat.text("first reply")
    await chat.settle()
    await greet(chat)
    await chat.text("second reply")
    await chat.settle()
    first, second = await conversations(chat)
    assert (first.status, first.end_reason, second.status) == ("ended", "superseded", "open")
    async with chat.service.runtime.database.read() as session:
        reply = (await session.execute(select(Message).where(Message.body == "second reply"))).scalar_one()
    assert reply.conversation_id == second.id


async def test_after_a_session_ended_a_text_opens_a_new_one(chat: Chat) -> None:
    await greet(chat)
    await chat.text("bye")  # the scripted agent ends the conversation
    await chat.settle()
    await chat.text("actually, one more thing")
    await chat.settle()
    first, second = await conversations(chat)
    assert (first.status, second.status) == ("ended", "open")
    assert (await chat.received())[-1] == "you said: actually, one more thing"


async def test_with_store_only_a_text_after_the_end_is_kept_unanswered(chat_factory) -> None:  # type: ignore[no-untyped-def]
    async with chat_factory(after_timeout="store_only") as chat:
        await greet(chat)
        await chat.text("bye")
        await chat.settle()
        answered = await chat.received()
        await chat.text("hello again")
        await chat.settle()
        assert await chat.received() == answered
        [conversation] = await conversations(chat)
        assert conversation.status == "ended"
        async with chat.service.runtime.database.read() as session:
            kept = (await session.execute(select(Message).where(Message.body == "hello again"))).scalar_one()
        assert kept.conversation_id == conversation.id


# --- keywords --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", ["STOP", "stop", "  Stop  ", "\tunsubscribe\n", "opt out"])
async def test_an_opt_out_keyword_opts_out_with_one_confirmation(chat: Chat, body: str) -> None:
    await greet(chat)
    await chat.text(body)
    await chat.text(body)  # a second STOP gets no second confirmation
    await chat.settle()
    assert (await chat.received())[1:] == [OPT_OUT_TEXT]
    assert chat.agent.heard == []
    assert [number for number, _ in await opt_outs(chat)] == [USER]
    [conversation] = await conversations(chat)
    assert (conversation.status, conversation.end_reason) == ("ended", "opted_out")


async def test_stop_please_is_not_a_keyword_and_reaches_the_agent(chat: Chat) -> None:
    await greet(chat)
    await chat.text("stop please")
    await chat.settle()
    assert chat.agent.heard == ["stop please"]
    assert await opt_outs(chat) == []


async def test_an_opted_out_number_is_refused_greetings_and_its_texts_go_unanswered(chat: Chat) -> None:
    await greet(chat)
    await chat.text("STOP")
    await chat.settle()
    response = await chat.service.client.post("/v1/outbound-sms", json=EXAMPLE, headers=POLYAI_HEADERS)
    assert response.status_code == 400
    assert "opted out" in response.json()["detail"]
    await chat.text("hello?")
    await chat.settle()
    assert (await chat.received())[1:] == [OPT_OUT_TEXT]
    assert chat.agent.heard == []


async def test_start_opts_back_in_and_greetings_flow_again(chat: Chat) -> None:
    await greet(chat)
    await chat.text("STOP")
    await chat.text(" start ")
    await chat.settle()
    assert (await chat.received())[1:] == [OPT_OUT_TEXT, OPT_IN_TEXT]
    assert await opt_outs(chat) == []
    response = await chat.service.client.post("/v1/outbound-sms", json=EXAMPLE, headers=POLYAI_HEADERS)
    assert response.status_code == 202


async def test_yes_is_an_answer_unless_the_number_opted_out(chat: Chat) -> None:
    await greet(chat)
    await chat.text("yes")
    await chat.settle()
    assert chat.agent.heard == ["yes"]
    await chat.text("STOP")
    await chat.text("YES")
    await chat.settle()
    assert (await chat.received())[-2:] == [OPT_OUT_TEXT, OPT_IN_TEXT]
    assert chat.agent.heard == ["yes"]


async def test_help_is_answered_with_the_projects_help_text(chat_factory) -> None:  # type: ignore[no-untyped-def]
    async with chat_factory(help_text="Clinic line: call 415-555-0000. Reply STOP to opt out.") as chat:
        await greet(chat)
        await chat.text("help")
        await chat.text(" INFO ")  # the same answer within the window: not sent twice
        await chat.settle()
        assert (await chat.received())[1:] == ["Clinic line: call 415-555-0000. Reply STOP to opt out."]
        assert chat.agent.heard == []


async def test_the_default_help_text_is_twilios(chat: Chat) -> None:
    await chat.text("HELP")
    await chat.settle()
    assert await chat.received() == [HELP_TEXT]
