"""Sender choice from a use case's pool, made when the message is dispatched: each routing policy end to end,
through `POST /v1/sms/` and the dispatcher, with the sticky mapping kept in the database."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from reachout.db.engine import Database
from reachout.kit.clock import FakeClock
from reachout.messaging.models import Message
from reachout.provisioning import loader
from reachout.provisioning import service as provisioning
from reachout.routing import service as routing
from reachout.routing.models import StickySender
from reachout.routing.selection import STICKY_IDLE_EXPIRY
from reachout.tenancy import service as tenancy
from tests.support import databases
from tests.support.provisioning import (
    API_KEY,
    POOL,
    POOL_212,
    POOL_415,
    POOL_646,
    USE_CASE,
    use_case_document,
)
from tests.support.service import Service

HEADERS = {"Authorization": f"Bearer {API_KEY}"}
SAN_FRANCISCO = "+14155551234"
NEW_YORK_646 = "+16465551234"
NEW_YORK_212 = "+12125551234"
CHICAGO = "+13125551234"
TORONTO = "+14165551234"


async def provision(service: Service, **use_case: Any) -> None:
    await service.provision(use_case_document(use_case=use_case))


async def accepted(service: Service, recipient: str) -> str:
    """Send through the use case; the message's id once accepted, its sender not chosen yet."""
    response = await service.client.post(
        "/v1/sms/",
        json={"use_case_id": USE_CASE, "to_phone_number": recipient, "message": "Hello"},
        headers=HEADERS,
    )
    assert response.status_code == 201, response.text
    assert response.json()["from_number"] is None  # chosen at dispatch, not at accept
    message_id = response.json()["id"]
    assert isinstance(message_id, str)
    return message_id


async def sent_from(service: Service, recipient: str) -> str:
    """Send through the use case, dispatch, and return the number it went from."""
    message_id = await accepted(service, recipient)
    await service.work()
    message = await service.client.get(f"/v1/sms/{message_id}", headers=HEADERS)
    assert message.json()["status"] == "sent"
    sender = message.json()["from_number"]
    assert isinstance(sender, str)
    return sender


async def test_geomatch_picks_the_recipients_area_code(service: Service) -> None:
    await provision(service)
    assert await sent_from(service, SAN_FRANCISCO) == POOL_415
    assert await sent_from(service, NEW_YORK_212) == POOL_212
    assert await sent_from(service, NEW_YORK_646) == POOL_646


async def test_an_overlay_area_code_of_the_same_place_comes_next(service: Service) -> None:
    await provision(service, sender_pool=[POOL_415, POOL_212])
    assert await sent_from(service, NEW_YORK_646) == POOL_212
    await provision(service, sender_pool=[POOL_415, POOL_646], sticky_sender=False)
    assert await sent_from(service, NEW_YORK_212) == POOL_646


async def test_a_number_of_the_same_country_comes_next_least_loaded_first(service: Service) -> None:
    """Chicago (312) has no number in the pool: each send goes to the sender with the fewest waiting, so
    three sends in one batch spread over the three senders."""
    await provision(service, sticky_sender=False)
    senders = await send_batch(service, [CHICAGO, "+13125551235", "+13125551236"])
    assert sorted(senders) == sorted(POOL)


async def test_any_allowed_sender_reaches_a_recipient_abroad(service: Service) -> None:
    await provision(service, sender_pool=[POOL_212])
    assert await sent_from(service, TORONTO) == POOL_212


async def send_batch(service: Service, recipients: list[str]) -> list[str]:
    """Send to each recipient, dispatch them in one batch, and return the senders in order."""
    ids = [await accepted(service, recipient) for recipient in recipients]
    await service.work()
    return [
        (await service.client.get(f"/v1/sms/{message_id}", headers=HEADERS)).json()["from_number"]
        for message_id in ids
    ]


@pytest.mark.parametrize(("geomatch", "distinct"), [(True, 1), (False, 3)])
async def test_geomatch_off_puts_every_sender_in_one_tier(
    service: Service, geomatch: bool, distinct: int
) -> None:
    """Three San Francisco recipients in one batch: all from 415 with geomatch, spread by load without."""
    await provision(service, area_code_geomatch=geomatch)
    senders = await send_batch(service, [SAN_FRANCISCO, "+14155551235", "+14155551236"])
    assert len(set(senders)) == distinct and set(senders) <= set(POOL)


async def test_the_sticky_sender_wins_over_the_area_code(service: Service) -> None:
    """The person first heard from 212 (415 was not in the pool then); once 415 joins, they still hear from
    212, as long as the mapping is used within 8 days."""
    await provision(service, sender_pool=[POOL_212])
    assert await sent_from(service, SAN_FRANCISCO) == POOL_212
    await provision(service)
    service.clock.advance((STICKY_IDLE_EXPIRY - timedelta(seconds=1)).total_seconds())
    assert await sent_from(service, SAN_FRANCISCO) == POOL_212
    # That send refreshed the mapping: another 8 days minus a second later it still holds.
    service.clock.advance((STICKY_IDLE_EXPIRY - timedelta(seconds=1)).total_seconds())
    assert await sent_from(service, SAN_FRANCISCO) == POOL_212


async def test_a_sticky_mapping_idle_for_8_days_expires(service: Service) -> None:
    await provision(service, sender_pool=[POOL_212])
    assert await sent_from(service, SAN_FRANCISCO) == POOL_212
    await provision(service)
    service.clock.advance(STICKY_IDLE_EXPIRY.total_seconds())
    assert await sent_from(service, SAN_FRANCISCO) == POOL_415
    async with service.runtime.database.read() as session:
        [mapping] = (await session.execute(select(StickySender))).scalars().all()
    assert (mapping.recipient, mapping.sender, mapping.last_used) == (
        SAN_FRANCISCO,
        POOL_415,
        service.clock.now(),
    )


async def test_a_sticky_sender_taken_out_of_the_pool_is_not_used(service: Service) -> None:
    await provision(service, sender_pool=[POOL_212])
    assert await sent_from(service, SAN_FRANCISCO) == POOL_212
    await provision(service, sender_pool=[POOL_415, POOL_646])
    assert await sent_from(service, SAN_FRANCISCO) == POOL_415


async def test_without_sticky_sender_the_area_code_wins_again(service: Service) -> None:
    await provision(service, sender_pool=[POOL_212])
    assert await sent_from(service, SAN_FRANCISCO) == POOL_212
    await provision(service, sticky_sender=False)
    assert await sent_from(service, SAN_FRANCISCO) == POOL_415


@pytest.mark.parametrize(("sticky", "distinct"), [(True, 1), (False, 2)])
async def test_two_sends_to_one_person_in_one_batch_share_a_sender_only_when_sticky(
    service: Service, sticky: bool, distinct: int
) -> None:
    await provision(service, sticky_sender=sticky)
    assert len(set(await send_batch(service, [CHICAGO, CHICAGO]))) == distinct


async def test_a_pool_whose_numbers_all_left_fails_the_message_with_21703(service: Service) -> None:
    """Accepted while the pool had a number; by dispatch none of its numbers is provisioned any more."""
    await provision(service)
    message_id = await accepted(service, CHICAGO)
    document = use_case_document(use_case={"sender_pool": []})
    document["accounts"][0]["projects"][-1]["numbers"] = []
    await service.provision(document)
    await service.work()
    message = (await service.client.get(f"/v1/sms/{message_id}", headers=HEADERS)).json()
    assert (message["status"], message["error_code"], message["from_number"]) == ("failed", 21703, None)


async def test_a_pool_number_that_cannot_text_is_never_chosen(service: Service) -> None:
    document = use_case_document()
    [number_415] = [n for n in document["accounts"][0]["projects"][-1]["numbers"] if n["number"] == POOL_415]
    number_415["capabilities"] = ["voice"]
    await service.provision(document)
    assert await sent_from(service, SAN_FRANCISCO) in (POOL_212, POOL_646)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"active": False}, 21703),
        ({"brand": "suspended"}, 30034),
        ({"campaign": "rejected"}, 30034),
        ({"sender_pool": []}, 21703),
    ],
)
async def test_a_use_case_that_can_no_longer_send_fails_what_it_accepted(
    service: Service, change: dict[str, Any], code: int
) -> None:
    await provision(service)
    message_id = await accepted(service, CHICAGO)
    await provision(service, **change)
    await service.settle()
    message = (await service.client.get(f"/v1/sms/{message_id}", headers=HEADERS)).json()
    assert (message["status"], message["error_code"], message["handed_off_at"]) == ("failed", code, None)
    handset = await service.client.get(f"/sandbox/handsets/{CHICAGO}/messages")
    assert handset.json() == []


async def test_a_deleted_use_cases_queued_messages_are_not_sent(service: Service) -> None:
    """Its numbers may since belong to another account: nothing goes out through it."""
    await provision(service)
    message_id = await accepted(service, CHICAGO)
    document = use_case_document()
    outreach = document["accounts"][0]["projects"][-1]
    outreach["use_cases"] = []
    outreach["numbers"] = [n for n in outreach["numbers"] if n["number"] != POOL_415]
    document["accounts"][1]["projects"][0]["numbers"].append({"number": POOL_415})
    await service.provision(document)
    await service.settle()
    async with service.runtime.database.read() as session:
        message = await session.get(Message, message_id)
    assert message is not None
    assert (message.status, message.error_code, message.from_number) == ("failed", 21703, None)


async def test_two_workers_choosing_at_once_for_a_new_recipient_agree(
    database: Database, clock: FakeClock, backend: str
) -> None:
    """Each worker sees other loads and would pick another number; the first mapping stored wins for both."""
    if backend != "postgresql":
        pytest.skip("SQLite has one writer: its transactions never interleave")
    async with database.write.begin() as session:
        await provisioning.apply(session, loader.parse(use_case_document(), "test"), clock.now())
        use_case = (await tenancy.use_cases(session, [USE_CASE]))[USE_CASE]

    def send(message_id: str) -> routing.PoolSend:
        return routing.PoolSend(message_id, use_case, CHICAGO, frozenset(POOL))

    async with database.write() as first, database.write() as second:
        await first.begin()
        await second.begin()
        mine = await routing.choose_senders(first, [send("m1")], {POOL_415: 5, POOL_646: 5}, clock.now())
        theirs = asyncio.create_task(
            routing.choose_senders(second, [send("m2")], {POOL_415: 5, POOL_212: 5}, clock.now())
        )
        await databases.until_a_transaction_waits_for_a_lock(database)
        assert not theirs.done()  # waiting for the first worker's mapping to commit or roll back
        await first.commit()
        their_choice = (await theirs)["m2"]
        await second.commit()
    my_choice = mine["m1"]
    assert my_choice is not None and their_choice is not None
    assert my_choice.sender == their_choice.sender == POOL_212
