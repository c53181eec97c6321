"""Events reach a customer's endpoint as Standard Webhooks, verified by the reference library's receiver."""

from __future__ import annotations

import pytest

from reachout.api.webhooks import DATA_FOR
from reachout.events.types import EventType, subject_of
from reachout.kit.clock import FakeClock
from tests.support.chat import DEBOUNCE, Chat, conversations, greet
from tests.support.polyai import EXAMPLE_MESSAGE
from tests.support.provisioning import SENDER, USER
from tests.support.service import messages
from tests.support.webhook_receiver import WebhookReceiver
from tests.support.webhooks import near_real_clock


@pytest.fixture
def clock() -> FakeClock:
    return near_real_clock()


GREETING_AND_REPLY = [
    "conversation.started",
    "message.queued",
    "message.sending",
    "message.sent",
    "message.delivered",
    "message.received",
    "message.queued",
    "message.sending",
    "message.sent",
    "message.delivered",
]


async def converse(chat: Chat) -> None:
    """The PolyAI reference greeting, the person's reply, and the agent's answer, all delivered."""
    await greet(chat)
    await chat.settle(5)
    await chat.text("Can we make it 3pm?")
    await chat.settle(DEBOUNCE + 5)


async def test_a_conversation_s_events_arrive_signed_with_their_subjects(
    webhooked: Chat, receiver: WebhookReceiver
) -> None:
    await converse(webhooked)
    # In the order they were recorded (their ids are UUIDv7s): deliveries are concurrent, so may overtake.
    events = sorted(receiver.events(), key=lambda e: str(e.webhook_id))
    assert [e.type for e in events] == GREETING_AND_REPLY
    assert receiver.rejected == [] and receiver.duplicates == {}
    greeting, reply, answer = await messages(webhooked.service)
    [conversation] = await conversations(webhooked)
    started = events[0]
    assert started.data["id"] == conversation.id and started.data["status"] == "open"
    assert (started.data["agent_number"], started.data["user_number"]) == (SENDER, USER)
    delivered = events[4]
    assert delivered.data == delivered.data | {
        "id": greeting.id,
        "conversation_id": conversation.id,
        "direction": "outbound",
        "channel": "sms",
        "from": SENDER,
        "to": USER,
        "body": EXAMPLE_MESSAGE,
        "status": "delivered",
        "error_code": None,
        "segments": greeting.num_segments,
        "carrier_sid": greeting.carrier_sid,
        "metadata": {},
    }
    assert delivered.body is not None and delivered.body["timestamp"].endswith("Z")
    received = events[5]
    assert (received.data["id"], received.data["body"], received.data["direction"]) == (
        reply.id,
        "Can we make it 3pm?",
        "inbound",
    )
    assert events[-1].data["id"] == answer.id and events[-1].data["body"] == "you said: Can we make it 3pm?"
    assert len({e.webhook_id for e in events}) == len(events)
    for event in events:  # each as the OpenAPI document's webhooks describe it
        assert event.body is not None and set(event.body) == {"type", "timestamp", "data"}
        DATA_FOR[subject_of(EventType(event.type))].model_validate(event.data)


async def test_every_event_arrives_once_though_its_first_two_attempts_fail(
    webhooked: Chat, receiver: WebhookReceiver
) -> None:
    receiver.fail_first(2)
    await converse(webhooked)
    await webhooked.settle(
        400
    )  # the first attempt at once, the next about 5 s later, the third 4 to 6 min on
    events = receiver.events()
    assert sorted(e.type for e in events) == sorted(GREETING_AND_REPLY)
    assert receiver.duplicates == {}
    for event in events:
        assert [a.status for a in receiver.attempts(event.webhook_id)] == [500, 500, 200]
