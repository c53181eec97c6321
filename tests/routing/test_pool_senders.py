"""Sender choice from a use case's pool, made when the message is dispatched: each routing policy end to end,
through `POST /v1/sms/` and the dispatcher, with the sticky mapping kept in the database."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from reachout.routing.models import StickySender
from reachout.routing.selection import STICKY_IDLE_EXPIRY
from tests.conftest import Service
from tests.support.provisioning import (
    API_KEY,
    POOL,
    POOL_212,
    POOL_415,
    POOL_646,
    USE_CASE,
    use_case_document,
)

HEADERS = {"Authorization": f"Bearer {API_KEY}"}
SAN_FRANCISCO = "+14155551234"
NEW_YORK_646 = "+16465551234"
NEW_YORK_212 = "+12125551234"
CHICAGO = "+13125551234"
TORONTO = "+14165551234"


async def provision(service: Service, **use_case: Any) -> None:
    await service.provision(use_case_document(use_case=use_case))


async def sent_from(service: Service, recipient: str) -> str:
    """Send through the use case, dispatch, and return the number it went from."""
    response = await service.client.post(
        "/v1/sms/",
        json={"use_case_id": USE_CASE, "to_phone_number": recipient, "message": "Hello"},
        headers=HEADERS,
    )
    assert response.status_code == 201, response.text
    assert response.json()["from_number"] is None  # chosen at dispatch, not at accept
    await service.work()
    message = await service.client.get(f"/v1/sms/{response.json()['id']}", headers=HEADERS)
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
    ids = []
    for recipient in recipients:
        response = await service.client.post(
            "/v1/sms/",
            json={"use_case_id": USE_CASE, "to_phone_number": recipient, "message": "Hello"},
            headers=HEADERS,
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
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
    response = await service.client.post(
        "/v1/sms/",
        json={"use_case_id": USE_CASE, "to_phone_number": CHICAGO, "message": "Hello"},
        headers=HEADERS,
    )
    document = use_case_document(use_case={"sender_pool": []})
    document["accounts"][0]["projects"][-1]["numbers"] = []
    await service.provision(document)
    await service.work()
    message = (await service.client.get(f"/v1/sms/{response.json()['id']}", headers=HEADERS)).json()
    assert (message["status"], message["error_code"], message["from_number"]) == ("failed", 21703, None)
