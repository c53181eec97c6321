"""PolyAI's inactivity rule, driven by the fake clock: once the person has replied, a warning after the
inactivity period; a reply within the window keeps the conversation open, silence ends it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from reachout.conversations import jobs_repository
from reachout.kit.jobs.leases import Lease
from reachout.tenancy.settings import WARNING_TEXT
from tests.support.chat import Chat, conversations, greet

DAY = 24 * 3600.0


async def test_no_timer_runs_until_the_person_has_replied(chat: Chat) -> None:
    await greet(chat)
    await chat.settle(2 * DAY)
    [conversation] = await conversations(chat)
    assert conversation.status == "open"
    assert len(await chat.received()) == 1  # the greeting only


async def test_warned_then_revived(chat: Chat) -> None:
    await greet(chat)
    await chat.text("Can I move it?")
    await chat.settle(60)
    await chat.settle(DAY - 120)
    assert WARNING_TEXT not in await chat.received()
    await chat.settle(300)
    assert (await chat.received())[-1] == WARNING_TEXT
    await chat.text("still here")  # within the 10 minutes
    await chat.settle(60)
    await chat.settle(DAY - 300)  # a new 24 h starts with the activity
    [conversation] = await conversations(chat)
    assert conversation.status == "open"
    assert (await chat.received()).count(WARNING_TEXT) == 1


async def test_warned_then_ended(chat: Chat) -> None:
    await greet(chat)
    await chat.text("Can I move it?")
    await chat.settle(60)
    await chat.settle(DAY + 60)
    assert (await chat.received())[-1] == WARNING_TEXT
    await chat.settle(11 * 60)
    [conversation] = await conversations(chat)
    assert (conversation.status, conversation.end_reason) == ("ended", "inactivity")
    await chat.text("sorry, I was away")  # a text after the end opens a new session
    await chat.settle(60)
    assert [c.status for c in await conversations(chat)] == ["ended", "open"]


async def test_durations_and_messages_are_per_project(chat_factory: Any) -> None:
    inactivity = {
        "warn_after_seconds": 600,
        "end_after_warning_seconds": 120,
        "warning_message": "Still there?",
        "timeout_message": "Closing this chat. Text us any time.",
    }
    async with chat_factory(inactivity=inactivity) as chat:
        await greet(chat)
        await chat.text("hi")
        await chat.settle(60)
        await chat.settle(600)
        assert (await chat.received())[-1] == "Still there?"
        await chat.settle(150)
        assert (await chat.received())[-1] == "Closing this chat. Text us any time."
        [conversation] = await conversations(chat)
        assert conversation.end_reason == "inactivity"


async def test_a_timer_leased_by_a_worker_that_died_fires_once_its_lease_expires(chat: Chat) -> None:
    await greet(chat)
    await chat.text("hi")
    await chat.settle(60)
    chat.clock.advance(DAY)
    runtime = chat.service.runtime
    async with runtime.database.write.begin() as session:  # a worker leases the due warning, then dies
        lease = Lease.take("dead", chat.clock.now() + timedelta(seconds=runtime.settings.lease_seconds))
        [leased] = await jobs_repository.claim(session, chat.clock.now(), lease, limit=10)
    assert leased.kind == "inactivity_warning"
    await chat.service.work()
    assert WARNING_TEXT not in await chat.received()  # still held by the dead worker's lease
    await chat.settle(runtime.settings.lease_seconds + 5)
    assert (await chat.received()).count(WARNING_TEXT) == 1
