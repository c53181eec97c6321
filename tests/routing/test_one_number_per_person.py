"""A person has one number in a project, whichever dialect sends to them: a PolyAI greeting and an Amigo send
through any of the project's use cases go from the same number wherever the pool allows."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
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
from reachout.routing.selection import STICKY_IDLE_EXPIRY, Reason, choose_sender
from reachout.tenancy import service as tenancy
from tests.support import databases
from tests.support.provisioning import (
    API_KEY,
    OTHER_USE_CASE,
    POOL,
    POOL_212,
    POOL_415,
    POOL_646,
    USE_CASE,
    use_case_document,
)
from tests.support.service import Service

AMIGO = {"Authorization": f"Bearer {API_KEY}"}
OUTREACH_CONNECTOR = "conn_outreach"
POLYAI = {"X-PolyAi-Auth-Token": API_KEY, "X-TOKEN-ID": OUTREACH_CONNECTOR}
SECOND_USE_CASE = "5b2f9d10-2222-4d4d-9999-abcdefabcdef"


def person_not_favouring(sender: str) -> str:
    """A San Francisco number whose rendezvous favourite among the pool is not `sender`, so a greeting left
    to itself would not go from `sender`."""
    for n in range(100):
        person = f"+1415555{2000 + n:04d}"
        if choose_sender(person, POOL) != sender:
            return person
    raise AssertionError("every person favours the same sender")


def document(**use_case: Any) -> dict[str, Any]:
    """The use-case document with a PolyAI connector on the use case's project (`use_case` merged in)."""
    return use_case_document(use_case=use_case, project={"connector_id": OUTREACH_CONNECTOR})


async def greeted_from(service: Service, person: str, agent_number: str | None = None) -> str:
    """Greet `person` through the PolyAI dialect; the number the greeting goes from."""
    body = {"message": "Hello from the clinic", "user_number": person} | (
        {} if agent_number is None else {"agent_number": agent_number}
    )
    response = await service.client.post("/v1/outbound-sms", json=body, headers=POLYAI)
    assert response.status_code == 202, response.text
    async with service.runtime.database.read() as session:
        greeting = (
            await session.execute(
                select(Message)
                .where(Message.to_number == person, Message.use_case_id.is_(None))
                .order_by(Message.created_at.desc(), Message.id.desc())
                .limit(1)
            )
        ).scalar_one()
    assert greeting.from_number is not None
    return greeting.from_number


async def amigo_sent_from(service: Service, person: str, use_case: str = USE_CASE) -> str:
    """Send to `person` through the Amigo dialect, dispatch, and return the number it went from."""
    response = await service.client.post(
        "/v1/sms/", json={"use_case_id": use_case, "to_phone_number": person, "message": "Hi"}, headers=AMIGO
    )
    assert response.status_code == 201, response.text
    await service.work()
    sent = await service.client.get(f"/v1/sms/{response.json()['id']}", headers=AMIGO)
    assert sent.json()["status"] == "sent", sent.json()
    sender = sent.json()["from_number"]
    assert isinstance(sender, str)
    return sender


async def amigo_batch_from(service: Service, people: list[str]) -> list[str]:
    """Send to each of `people` through the Amigo dialect and dispatch them in one batch; their senders."""
    ids = []
    for person in people:
        body = {"use_case_id": USE_CASE, "to_phone_number": person, "message": "Hi"}
        response = await service.client.post("/v1/sms/", json=body, headers=AMIGO)
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    await service.work()
    return [(await service.client.get(f"/v1/sms/{i}", headers=AMIGO)).json()["from_number"] for i in ids]


async def mappings(service: Service) -> list[tuple[str, str, str]]:
    async with service.runtime.database.read() as session:
        rows = (await session.execute(select(StickySender))).scalars().all()
    return sorted((row.project_id, row.recipient, row.sender) for row in rows)


async def mapped_at(service: Service, person: str) -> tuple[str, datetime]:
    """The person's number in the project `outreach`, and when it was last used."""
    async with service.runtime.database.read() as session:
        row = await session.get_one(StickySender, ("outreach", person))
    return row.sender, row.last_used


async def test_an_amigo_send_goes_from_the_number_a_greeting_named(service: Service) -> None:
    """Geomatch alone would pick 415 for a San Francisco person; the greeting made 212 their number."""
    await service.provision(document())
    person = "+14155551234"
    assert await greeted_from(service, person, agent_number=POOL_212) == POOL_212
    assert await amigo_sent_from(service, person) == POOL_212
    assert await mappings(service) == [("outreach", person, POOL_212)]


async def test_an_amigo_send_goes_from_the_number_a_greeting_chose(service: Service) -> None:
    await service.provision(document())
    person = person_not_favouring(POOL_415)
    greeting = await greeted_from(service, person)
    assert greeting != POOL_415
    assert await amigo_sent_from(service, person) == greeting


async def test_a_greeting_goes_from_the_number_an_amigo_send_chose(service: Service) -> None:
    await service.provision(document())
    person = person_not_favouring(POOL_415)
    assert await amigo_sent_from(service, person) == POOL_415  # the area code
    assert await greeted_from(service, person) == POOL_415
    assert await amigo_sent_from(service, person) == POOL_415
    assert await mappings(service) == [("outreach", person, POOL_415)]


async def test_a_pool_without_the_persons_number_chooses_by_policy_and_the_person_keeps_their_number(
    service: Service,
) -> None:
    """The pool narrows this send's choice only: the mapping stays on 212, unrefreshed, so the next greeting
    goes from 212 again."""
    await service.provision(document(sender_pool=[POOL_415, POOL_646]))
    person = "+14155551234"
    greeted_at = service.clock.now()
    assert await greeted_from(service, person, agent_number=POOL_212) == POOL_212
    service.clock.advance(60)
    assert await amigo_sent_from(service, person) == POOL_415  # 212 is not in the pool: the area code wins
    assert await mapped_at(service, person) == (POOL_212, greeted_at)
    assert await greeted_from(service, person) == POOL_212


async def test_a_pool_without_the_persons_number_stands_in_with_one_number_whatever_the_load(
    service: Service,
) -> None:
    """Neither 212 nor 646 shares the San Francisco person's area code or place: by load, two sends in one
    batch would take one each; the person, whose number is 415, hears from one of them twice."""
    await service.provision(document(sender_pool=[POOL_212, POOL_646]))
    person = "+14155551234"
    assert await greeted_from(service, person, agent_number=POOL_415) == POOL_415
    senders = await amigo_batch_from(service, [person, person])
    assert len(set(senders)) == 1 and set(senders) <= {POOL_212, POOL_646}
    assert await amigo_batch_from(service, [person]) == senders[:1]
    assert await mappings(service) == [("outreach", person, POOL_415)]


async def test_the_persons_number_a_pool_lacks_lapses_after_8_days_and_the_pools_choice_takes_over(
    service: Service,
) -> None:
    """Sends from a stand-in do not use the person's number, so they do not keep it alive."""
    await service.provision(document(sender_pool=[POOL_415, POOL_646]))
    person = "+14155551234"
    assert await greeted_from(service, person, agent_number=POOL_212) == POOL_212
    service.clock.advance((STICKY_IDLE_EXPIRY - timedelta(days=1)).total_seconds())
    assert await amigo_sent_from(service, person) == POOL_415
    service.clock.advance(timedelta(days=1).total_seconds())
    assert await amigo_sent_from(service, person) == POOL_415
    assert await mapped_at(service, person) == (POOL_415, service.clock.now())


async def test_a_pool_without_the_persons_number_chooses_its_overlay_by_policy(service: Service) -> None:
    await service.provision(document(sender_pool=[POOL_415, POOL_646]))
    person = "+12125551234"
    assert await greeted_from(service, person, agent_number=POOL_212) == POOL_212
    assert await amigo_sent_from(service, person) == POOL_646


async def test_a_use_case_without_sticky_sender_neither_follows_nor_moves_the_persons_number(
    service: Service,
) -> None:
    await service.provision(document(sticky_sender=False))
    person = "+14155551234"
    assert await greeted_from(service, person, agent_number=POOL_212) == POOL_212
    assert await amigo_sent_from(service, person) == POOL_415
    assert await mappings(service) == [("outreach", person, POOL_212)]
    assert await greeted_from(service, person) == POOL_212


async def test_two_use_cases_of_a_project_share_the_persons_number(service: Service) -> None:
    """Twilio keeps a sticky sender per Messaging Service; here a person keeps one number in the project, so
    the second use case's pool (which holds it) sends from it rather than from the area code's number."""
    doc = document(sender_pool=[POOL_212])
    second = {"id": SECOND_USE_CASE, "name": "follow-ups", "sender_pool": list(POOL), "campaign": "verified"}
    doc["accounts"][0]["projects"][-1]["use_cases"].append(second)
    await service.provision(doc)
    person = "+14155551234"
    assert await amigo_sent_from(service, person) == POOL_212
    assert await amigo_sent_from(service, person, SECOND_USE_CASE) == POOL_212
    assert await mappings(service) == [("outreach", person, POOL_212)]


async def test_the_persons_number_idle_for_8_days_binds_neither_dialect(service: Service) -> None:
    await service.provision(document())
    person = person_not_favouring(POOL_212)
    assert await greeted_from(service, person, agent_number=POOL_212) == POOL_212
    service.clock.advance(STICKY_IDLE_EXPIRY.total_seconds())
    assert await amigo_sent_from(service, person) == POOL_415
    service.clock.advance((STICKY_IDLE_EXPIRY - timedelta(seconds=1)).total_seconds())
    assert await greeted_from(service, person) == POOL_415  # the Amigo send refreshed it


async def test_another_projects_mapping_is_not_this_ones(service: Service) -> None:
    """The other account's use case sends to the same person from its own number, which binds nobody here."""
    await service.provision(document())
    person = "+14155551234"
    assert await amigo_sent_from(service, person) == POOL_415
    response = await service.client.post(
        "/v1/sms/",
        json={"use_case_id": OTHER_USE_CASE, "to_phone_number": person, "message": "Hi"},
        headers={"Authorization": "Bearer rk_test_other_00002"},
    )
    assert response.status_code == 201, response.text
    await service.work()
    assert await greeted_from(service, person) == POOL_415
    assert await mappings(service) == [
        ("other-project", person, "+14155550150"),
        ("outreach", person, POOL_415),
    ]


async def test_a_greeting_waits_for_a_first_mapping_a_dispatch_is_storing_and_follows_it(
    database: Database, clock: FakeClock, backend: str
) -> None:
    """A dispatcher and an accept choose for a new person at once: the first mapping stored wins for both."""
    if backend != "postgresql":
        pytest.skip("SQLite has one writer: its transactions never interleave")
    async with database.write.begin() as session:
        await provisioning.apply(session, loader.parse(document(), "test"), clock.now())
        use_case = (await tenancy.use_cases(session, [USE_CASE]))[USE_CASE]
    person = person_not_favouring(POOL_415)
    pool_send = routing.PoolSend("m1", use_case, person, frozenset(POOL))
    greeting = routing.ProjectSend("m2", "outreach", person, tuple(POOL))

    async with database.write() as first, database.write() as second:
        await first.begin()
        await second.begin()
        dispatched = await routing.choose_senders(first, [pool_send], {}, clock.now())
        accepting = asyncio.create_task(routing.choose_senders(second, [greeting], {}, clock.now()))
        await databases.until_a_transaction_waits_for_a_lock(database)
        assert not accepting.done()  # waiting for the dispatcher's mapping to commit or roll back
        await first.commit()
        accepted = (await accepting)["m2"]
        await second.commit()
    chosen = dispatched["m1"]
    assert chosen is not None and accepted is not None
    assert (chosen.sender, accepted.sender, accepted.reason) == (POOL_415, POOL_415, Reason.STICKY)
