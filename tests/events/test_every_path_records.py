"""Every path that changes state records its event, once, in the log (what webhooks are made from). A send
retried after a carrier's outage records `message.retry_scheduled`: tests/messaging/test_retries.py."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from reachout.carriers.base import StatusReport
from reachout.carriers.registry import FACTORIES
from reachout.delivery.status import MessageStatus
from reachout.kit.clock import FakeClock
from reachout.messaging.schemas import DEFAULT_VALIDITY_SECONDS
from tests.support.carriers import sandbox_without_lookup
from tests.support.chat import DEBOUNCE, Chat, ScriptedAgent, chat_on, conversations, project_document
from tests.support.events import recorded
from tests.support.polyai import PATH
from tests.support.provisioning import POLYAI_HEADERS, SENDER, USER
from tests.support.service import messages

INVALID = "+15005550001"  # refused at the hand-off: 21211
UNSUBSCRIBED = "+15005550004"  # refused at the hand-off: 21610, which opts the person out
LANDLINE = "+14155550001"  # taken, then reported undelivered (30006)
INACTIVITY = {"warn_after_seconds": 60, "end_after_warning_seconds": 30, "timeout_message": "Bye for now."}


@pytest.fixture
async def walk(database_url: str, clock: FakeClock, agent: ScriptedAgent) -> AsyncIterator[Chat]:
    carriers = {**FACTORIES, "sandbox": sandbox_without_lookup}
    document = project_document(inactivity=INACTIVITY)
    async with chat_on(database_url, clock, agent, document, carriers=carriers) as chat:
        yield chat


async def greet(chat: Chat, number: str = USER) -> None:
    body = {"message": "Hi, see you tomorrow at 2pm.", "user_number": number, "agent_number": SENDER}
    response = await chat.service.client.post(PATH, json=body, headers=POLYAI_HEADERS)
    assert response.status_code == 202, response.text


async def types(chat: Chat, **filters: str) -> list[str]:
    return [event.type for event in await recorded(chat.service.runtime.database.read, **filters)]


async def test_accept_hand_off_and_each_carrier_report(walk: Chat) -> None:
    await greet(walk)
    [conversation] = await conversations(walk)
    assert await types(walk) == ["conversation.started", "message.queued"], "the accept"
    await walk.service.work()
    [greeting] = await messages(walk.service)
    assert (await types(walk, message_id=greeting.id))[-1] == "message.sending", "the hand-off"
    await walk.settle(5)
    assert await types(walk, message_id=greeting.id) == [
        "message.queued",
        "message.sending",
        "message.sent",
        "message.delivered",
    ]
    events = await recorded(walk.service.runtime.database.read, message_id=greeting.id)
    assert [e.data["status"] for e in events] == ["queued", "sending", "sent", "delivered"]
    assert {e.conversation_id for e in events} == {conversation.id}
    assert {e.project_id for e in events} == {"clinic"}


async def test_a_report_that_changes_nothing_is_kept_for_audit(walk: Chat) -> None:
    await greet(walk)
    await walk.settle(5)
    [greeting] = await messages(walk.service)
    report = StatusReport(
        sid=greeting.carrier_sid or "", status=MessageStatus.SENT, occurred_at=walk.clock.now(), source="test"
    )
    async with walk.service.runtime.database.write.begin() as session:
        await walk.service.runtime.events.statuses(session, [report])
    [ignored] = await recorded(walk.service.runtime.database.read, types=["message.report_ignored"])
    assert ignored.details == {"status": "sent", "outcome": "stale"} and ignored.source == "test"


@pytest.mark.parametrize(
    ("number", "ending", "code"),
    [(LANDLINE, "message.undelivered", 30006), (INVALID, "message.failed", 21211)],
)
async def test_a_greeting_that_ends_badly_records_its_end_and_its_conversation_s(
    walk: Chat, number: str, ending: str, code: int
) -> None:
    await greet(walk, number)
    await walk.settle(5)
    [greeting] = await messages(walk.service)
    [failed] = await recorded(walk.service.runtime.database.read, types=[ending])
    assert (failed.message_id, failed.data["error_code"], failed.data["error_message"] is not None) == (
        greeting.id,
        code,
        True,
    )
    [ended] = await recorded(walk.service.runtime.database.read, types=["conversation.ended"])
    assert ended.data["end_reason"] == "undeliverable"


async def test_a_carrier_s_21610_opts_the_person_out(walk: Chat) -> None:
    await greet(walk, UNSUBSCRIBED)
    await walk.settle(5)
    [opted_out] = await recorded(walk.service.runtime.database.read, types=["contact.opted_out"])
    assert opted_out.data == opted_out.data | {"phone_number": UNSUBSCRIBED, "keyword": "carrier:21610"}
    [ended] = await recorded(walk.service.runtime.database.read, types=["conversation.ended"])
    assert ended.data["end_reason"] == "opted_out"


async def test_a_greeting_past_its_validity_is_canceled(walk: Chat) -> None:
    await greet(walk)
    walk.clock.advance(DEFAULT_VALIDITY_SECONDS + 1)
    await walk.settle(5)
    [canceled] = await recorded(walk.service.runtime.database.read, types=["message.canceled"])
    assert canceled.data["error_code"] == 30036


async def test_inbound_opt_out_and_opt_in(walk: Chat) -> None:
    await greet(walk)
    await walk.settle(5)
    await walk.text("STOP")
    await walk.settle(5)
    [stop] = await recorded(walk.service.runtime.database.read, types=["message.received"])
    assert stop.data["body"] == "STOP" and stop.data["direction"] == "inbound"
    [opted_out] = await recorded(walk.service.runtime.database.read, types=["contact.opted_out"])
    assert opted_out.data["keyword"] == "STOP" and opted_out.data["opted_out"] is True
    [ended] = await recorded(walk.service.runtime.database.read, types=["conversation.ended"])
    assert ended.details["reason"] == "opted_out"
    await walk.text("START")
    await walk.settle(5)
    [opted_in] = await recorded(walk.service.runtime.database.read, types=["contact.opted_in"])
    assert (opted_in.data["keyword"], opted_in.data["opted_out"]) == ("START", False)
    await walk.text("START")  # already in: no second event
    await walk.settle(5)
    assert len(await types(walk, types=["contact.opted_in"])) == 1


async def test_a_new_greeting_supersedes_the_open_conversation(walk: Chat) -> None:
    await greet(walk)
    await greet(walk)
    older, newer = await conversations(walk)
    assert await types(walk, conversation_id=older.id) == [
        "conversation.started",
        "message.queued",
        "conversation.ended",
    ]
    [ended] = await recorded(
        walk.service.runtime.database.read, conversation_id=older.id, types=["conversation.ended"]
    )
    assert (ended.details, ended.data["end_reason"]) == ({"reason": "superseded"}, "superseded")
    assert "conversation.ended" not in await types(walk, conversation_id=newer.id)


async def test_silence_brings_the_warning_then_the_end(walk: Chat) -> None:
    await greet(walk)
    await walk.settle(5)
    await walk.text("Hello?")
    await walk.settle(DEBOUNCE + 5)  # the agent answers; the inactivity clock starts
    await walk.settle(61)
    assert (await types(walk, types=["conversation.warning_sent"])) == ["conversation.warning_sent"]
    await walk.settle(31)
    [conversation] = await conversations(walk)
    ended = await recorded(walk.service.runtime.database.read, types=["conversation.ended"])
    assert [(e.conversation_id, e.data["end_reason"]) for e in ended] == [(conversation.id, "inactivity")]


async def test_an_agent_that_fails_every_attempt_records_it(walk: Chat, agent: ScriptedAgent) -> None:
    await greet(walk)
    await walk.settle(5)
    agent.failures = 100
    await walk.text("Hello?")
    await walk.settle(60)
    [failed] = await recorded(walk.service.runtime.database.read, types=["conversation.agent_failed"])
    assert failed.details["attempts"] == 3
    [conversation] = await conversations(walk)
    assert failed.conversation_id == conversation.id
    fallback = (await messages(walk.service))[-1]
    assert fallback.id in {
        e.message_id for e in await recorded(walk.service.runtime.database.read, types=["message.queued"])
    }
