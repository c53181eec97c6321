"""Automatic replies obey the send rules: keyword answers and fallbacks pass the sender's destination gates,
and each person gets at most one of each kind per window, however many texts ask for them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from reachout.compliance import service as compliance
from reachout.compliance.models import OptOut
from reachout.compliance.service import AutoReply
from reachout.conversations.models import Conversation
from reachout.db.engine import open_database
from reachout.kit.clock import FakeClock
from reachout.messaging.models import Message
from reachout.tenancy.settings import FALLBACK_TEXT, HELP_TEXT, OPT_IN_TEXT, OPT_OUT_TEXT
from tests.support.chat import Chat, ScriptedAgent, chat_on
from tests.support.provisioning import (
    API_KEY,
    CONNECTOR,
    POOL,
    SECOND_SENDER,
    SENDER,
    USER,
    use_case_document,
)
from tests.support.service import make_settings

WINDOW = 600.0
LONDON = "+447400123456"  # a UK mobile: the use case sends to US and CA only
TORONTO = "+14165550123"
LANDLINE = "+442079460000"  # a London fixed line, as libphonenumber types it


def document() -> dict[str, Any]:
    """The use case document, its `outreach` project (pool numbers, US and CA only) answered by the agent."""
    doc = use_case_document(project={"agent": {"pathway": "scripted"}})
    doc["accounts"][0]["projects"][0]["agent"] = {"pathway": "scripted"}
    return doc


@pytest.fixture
def chat_with(database_url: str, clock: FakeClock, agent: ScriptedAgent) -> Callable[..., Any]:
    def build(**settings: Any) -> Any:
        return chat_on(
            database_url, clock, agent, document(), **({"auto_reply_window_seconds": WINDOW} | settings)
        )

    return build


@pytest.fixture
async def chat(chat_with: Callable[..., Any]) -> AsyncIterator[Chat]:
    async with chat_with() as built:
        yield built


async def inbound_bodies(chat: Chat, sender: str) -> list[str]:
    async with chat.service.runtime.database.read() as session:
        query = select(Message.body).where(Message.direction == "inbound", Message.from_number == sender)
        return list((await session.execute(query.order_by(Message.created_at))).scalars())


async def outbound_to(chat: Chat, number: str) -> list[str]:
    async with chat.service.runtime.database.read() as session:
        query = select(Message.body).where(Message.direction == "outbound", Message.to_number == number)
        return list((await session.execute(query)).scalars())


async def opted_out(chat: Chat) -> list[str]:
    async with chat.service.runtime.database.read() as session:
        return list((await session.execute(select(OptOut.number))).scalars())


# --- one answer per person and window ---------------------------------------------------------------------


async def test_a_flood_of_twenty_help_texts_from_one_number_yields_one_answer(chat: Chat) -> None:
    for _ in range(20):
        await chat.text("HELP", to=POOL[0])
    await chat.settle()
    assert await chat.received() == [HELP_TEXT]
    assert await inbound_bodies(chat, USER) == ["HELP"] * 20  # every text is still recorded
    assert chat.agent.heard == []


async def test_help_is_answered_again_once_the_window_has_passed(chat: Chat) -> None:
    await chat.text("HELP")
    chat.clock.advance(WINDOW - 1)
    await chat.text("INFO")
    chat.clock.advance(1)
    await chat.text("HELP")
    await chat.settle()
    assert await chat.received() == [HELP_TEXT, HELP_TEXT]


async def test_the_window_is_per_person_and_per_kind_of_answer(chat: Chat) -> None:
    await chat.text("HELP")
    await chat.text("HELP", from_=TORONTO)
    await chat.text("STOP")
    await chat.text("START")
    await chat.text("STOP")  # a second opt-out confirmation within the window: none
    await chat.text("START")
    await chat.settle()
    assert await chat.received() == [HELP_TEXT, OPT_OUT_TEXT, OPT_IN_TEXT]
    assert await chat.received(TORONTO) == [HELP_TEXT]
    assert await opted_out(chat) == []  # each keyword still took effect


async def test_a_window_of_zero_answers_every_help(chat_with: Callable[..., Any]) -> None:
    async with chat_with(auto_reply_window_seconds=0.0) as chat:
        for _ in range(3):
            await chat.text("HELP")
        await chat.settle()
        assert await chat.received() == [HELP_TEXT] * 3


async def test_a_failing_agent_sends_one_fallback_per_window(chat: Chat) -> None:
    chat.agent.failures = 100
    await chat.text("first")
    await chat.settle(seconds=60)
    await chat.text("second")
    await chat.settle(seconds=60)
    assert await chat.received() == [FALLBACK_TEXT]
    chat.clock.advance(WINDOW)
    await chat.text("third")
    await chat.settle(seconds=60)
    assert await chat.received() == [FALLBACK_TEXT, FALLBACK_TEXT]


async def test_two_transactions_racing_for_the_same_answer_grant_it_once(
    database_url: str, clock: FakeClock, chat: Chat
) -> None:
    database = open_database(database_url)
    project = "outreach"
    try:

        async def claim() -> bool:
            async with database.write.begin() as session:
                granted = await compliance.may_auto_reply(
                    session, project, USER, AutoReply.HELP, clock.now(), WINDOW
                )
                await asyncio.sleep(0.05)  # hold the transaction while the other one asks
                return granted

        results = await asyncio.gather(claim(), claim(), claim())
    finally:
        await database.dispose()
    assert sorted(results) == [False, False, True]


# --- the destination gates ----------------------------------------------------------------------------------


async def test_help_from_a_country_the_use_case_may_not_send_to_gets_no_answer(chat: Chat) -> None:
    await chat.text("HELP", from_=LONDON, to=POOL[0])
    await chat.settle()
    assert await inbound_bodies(chat, LONDON) == ["HELP"]  # recorded
    assert await outbound_to(chat, LONDON) == []
    assert await chat.received(LONDON) == []


async def test_stop_from_a_country_the_use_case_may_not_send_to_still_opts_out(chat: Chat) -> None:
    await chat.text("STOP", from_=LONDON, to=POOL[1])
    await chat.settle()
    assert await opted_out(chat) == [LONDON]
    assert await outbound_to(chat, LONDON) == []  # no confirmation could be sent


async def test_a_text_from_a_country_the_use_case_may_not_send_to_is_kept_and_not_answered(
    chat: Chat,
) -> None:
    await chat.text("Hi, who is this?", from_=LONDON, to=POOL[2])
    await chat.settle()
    assert await inbound_bodies(chat, LONDON) == ["Hi, who is this?"]
    assert chat.agent.heard == []
    assert await outbound_to(chat, LONDON) == []
    async with chat.service.runtime.database.read() as session:
        assert (await session.execute(select(Conversation))).scalars().all() == []


async def test_an_allowed_country_is_answered_through_the_use_case(chat: Chat) -> None:
    await chat.text("HELP", from_=TORONTO, to=POOL[0])
    await chat.text("Hi, who is this?", from_=TORONTO, to=POOL[1])
    await chat.settle()
    assert sorted(await chat.received(TORONTO)) == sorted([HELP_TEXT, "you said: Hi, who is this?"])


async def test_a_number_in_no_use_case_answers_any_country(chat: Chat) -> None:
    # The standard project's numbers belong to no use case: a PolyAI send from them may reach any country.
    await chat.text("HELP", from_=LONDON, to=SENDER)
    await chat.settle()
    assert await chat.received(LONDON) == [HELP_TEXT]


async def test_a_landline_gets_no_automatic_answer(chat: Chat) -> None:
    await chat.text("HELP", from_=LANDLINE, to=SENDER)
    await chat.text("hello", from_=LANDLINE, to=SENDER)
    await chat.settle()
    assert await outbound_to(chat, LANDLINE) == []
    assert chat.agent.heard == []
    assert await inbound_bodies(chat, LANDLINE) == ["HELP", "hello"]


async def test_an_agent_reply_to_a_destination_the_gates_now_refuse_is_not_sent(chat: Chat) -> None:
    await chat.text("Hi", from_=TORONTO, to=POOL[0])  # answered: CA is allowed
    await chat.settle()
    await chat.text("one more thing", from_=TORONTO, to=POOL[0])
    use_case_without_canada = use_case_document(
        project={"agent": {"pathway": "scripted"}}, use_case={"allowed_countries": ["US"]}
    )
    await chat.service.provision(use_case_without_canada)
    await chat.settle()
    assert await chat.received(TORONTO) == ["you said: Hi"]
    assert chat.agent.heard == ["Hi", "one more thing"]  # the turn ran; its reply was held back


def test_the_window_default_is_ten_minutes() -> None:
    assert (
        make_settings("sqlite+aiosqlite:///unused.db").auto_reply_window_seconds
        == timedelta(minutes=10).total_seconds()
    )


async def test_a_text_from_one_of_reachouts_own_numbers_is_kept_and_never_answered(chat: Chat) -> None:
    """Two agent numbers answering each other would talk for ever."""
    for body in ("Thanks for your message.", "HELP"):
        await chat.text(body, from_=SECOND_SENDER, to=SENDER)
    await chat.settle()
    assert chat.agent.heard == []
    assert await outbound_to(chat, SECOND_SENDER) == []
    assert await inbound_bodies(chat, SECOND_SENDER) == ["Thanks for your message.", "HELP"]


async def test_a_greeting_to_one_of_the_projects_own_numbers_is_refused(chat: Chat) -> None:
    headers = {"X-PolyAi-Auth-Token": API_KEY, "X-TOKEN-ID": CONNECTOR}
    response = await chat.service.client.post(
        "/v1/outbound-sms", json={"message": "Hi", "user_number": SECOND_SENDER}, headers=headers
    )
    assert response.status_code == 400
    assert response.json() == {
        "detail": f"user_number: {SECOND_SENDER} is one of this project's own numbers."
    }
