"""The agent's turns: a reply joins its session and is answered once, after the debounce window."""

from __future__ import annotations

from sqlalchemy import func, select

from reachout.carriers.base import InboundText
from reachout.conversations.carrier_events import ConversationCarrierEvents
from reachout.conversations.models import ConversationJob
from reachout.delivery.channels import Channel
from reachout.messaging.models import Message
from tests.support.chat import DEBOUNCE, Chat, conversations, greet
from tests.support.events import recorded
from tests.support.polyai import EXAMPLE
from tests.support.provisioning import SENDER, USER


async def test_a_reply_to_a_greeting_is_answered_in_the_same_conversation(chat: Chat) -> None:
    await greet(chat)
    await chat.text("Can I move it to 3pm instead?")
    await chat.settle()
    assert await chat.received() == [EXAMPLE["message"], "you said: Can I move it to 3pm instead?"]
    [conversation] = await conversations(chat)
    assert conversation.status == "open" and conversation.variables == {"turns": 1}
    assert chat.agent.started == [conversation.id]  # the start hook ran once, before the first turn


async def test_the_agent_waits_for_the_debounce_window(chat: Chat) -> None:
    await greet(chat)
    await chat.text("Can I")
    chat.clock.advance(DEBOUNCE - 0.5)
    await chat.service.work()
    assert chat.agent.heard == []
    chat.clock.advance(1.0)
    await chat.service.work()
    assert chat.agent.heard == ["Can I"]


async def test_texts_within_the_debounce_window_are_answered_as_one_turn(chat: Chat) -> None:
    await greet(chat)
    await chat.text("Can I move it")
    chat.clock.advance(DEBOUNCE - 0.5)
    await chat.service.work()
    await chat.text("to 3pm?")  # pushes the turn back by a whole window
    chat.clock.advance(DEBOUNCE - 0.5)
    await chat.service.work()
    assert chat.agent.heard == []
    await chat.settle()
    assert chat.agent.heard == ["Can I move it\nto 3pm?"]
    assert (await chat.received())[1:] == ["you said: Can I move it\nto 3pm?"]


async def test_a_duplicate_inbound_webhook_is_one_message_and_one_turn(chat: Chat) -> None:
    await greet(chat)
    text = InboundText(
        sid="SM" + "1" * 32,
        channel=Channel.SMS,
        from_number=USER,
        to_number=SENDER,
        body="Can I move it to 3pm instead?",
        received_at=chat.clock.now(),
        carrier="sandbox",
    )
    events = ConversationCarrierEvents(debounce_seconds=DEBOUNCE)
    for _ in range(2):  # the carrier retries its webhook
        async with chat.service.runtime.database.write.begin() as session:
            await events.inbound(session, text)
    await chat.settle()
    assert chat.agent.heard == ["Can I move it to 3pm instead?"]
    async with chat.service.runtime.database.read() as session:
        stored = await session.execute(
            select(func.count()).select_from(Message).where(Message.direction == "inbound")
        )
        assert stored.scalar_one() == 1


async def test_an_agent_that_raises_is_retried_and_the_text_is_not_lost(chat: Chat) -> None:
    await greet(chat)
    chat.agent.failures = 2  # two failures, then it answers (three attempts allowed)
    await chat.text("Hello?")
    await chat.settle()
    assert chat.agent.heard == ["Hello?"]
    assert (await chat.received())[1:] == ["you said: Hello?"]


async def test_an_agent_that_keeps_failing_gets_the_fallback_text_sent_once(chat: Chat) -> None:
    await greet(chat)
    chat.agent.failures = 100
    await chat.text("Hello?")
    await chat.settle(60)
    project = chat.service.runtime
    assert (await chat.received())[1:] == [
        "Sorry, we can't reply right now. A member of our team will get back to you soon."
    ]
    async with project.database.read() as session:
        pending = await session.execute(
            select(func.count()).select_from(ConversationJob).where(ConversationJob.kind == "turn")
        )
        assert pending.scalar_one() == 0
    [failed] = await recorded(project.database.read, types=["conversation.agent_failed"])
    assert failed.details["attempts"] == 3 and "the model is down" in failed.details["error"]


async def test_an_agent_that_times_out_is_retried(chat: Chat) -> None:
    await greet(chat)
    chat.agent.hangs = 1
    await chat.text("Hello?")
    await chat.settle()
    assert chat.agent.heard == ["Hello?"]
    assert (await chat.received())[1:] == ["you said: Hello?"]


async def test_an_agent_that_ends_the_conversation_ends_it(chat: Chat) -> None:
    await greet(chat)
    await chat.text("bye")
    await chat.settle()
    [conversation] = await conversations(chat)
    assert (conversation.status, conversation.end_reason) == ("ended", "completed")
    events = await recorded(chat.service.runtime.database.read, types=["conversation.ended"])
    assert [e.details for e in events] == [{"reason": "completed"}]
    assert events[0].data["end_reason"] == "completed"
    assert (await chat.received())[-1] == "you said: bye"
