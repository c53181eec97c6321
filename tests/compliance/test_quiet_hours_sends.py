"""Quiet hours end to end: a first message outside 08:00-21:00 in the recipient's time zone is accepted and
held until the window opens, never dropped or sent early; replies in an open conversation are not held."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from reachout.kit.clock import FakeClock
from reachout.tenancy.settings import OPT_OUT_TEXT
from tests.support.provisioning import API_KEY, CONNECTOR, POOL, SENDER, USE_CASE, use_case_document
from tests.support.service import Service

HEADERS = {"Authorization": f"Bearer {API_KEY}"}
HONOLULU = "+18085551234"  # Pacific/Honolulu, UTC-10 all year
NEW_YORK = "+12125551234"  # America/New_York, UTC-4 in March after the clocks change
# 10:30 in New York, 04:30 in Honolulu: one window open, the other not until 08:00 HST, 18:00 UTC.
INSTANT = datetime(2026, 3, 10, 14, 30, tzinfo=UTC)
HONOLULU_OPENS = datetime(2026, 3, 10, 18, 0, tzinfo=UTC)


def at(clock: FakeClock, moment: datetime) -> None:
    clock.advance((moment - clock.now()).total_seconds())


async def quiet(service: Service, project: dict[str, Any] | None = None, **use_case: Any) -> None:
    await service.provision(
        use_case_document(project={"quiet_hours": True} | (project or {}), use_case=use_case)
    )


async def send(service: Service, to: str) -> str:
    response = await service.client.post(
        "/v1/sms/",
        json={"use_case_id": USE_CASE, "to_phone_number": to, "message": "Your appointment is tomorrow"},
        headers=HEADERS,
    )
    assert response.status_code == 201, response.text
    message_id = response.json()["id"]
    assert isinstance(message_id, str)
    return message_id


async def state(service: Service, message_id: str) -> dict[str, Any]:
    response = await service.client.get(f"/v1/sms/{message_id}", headers=HEADERS)
    body = response.json()
    assert isinstance(body, dict)
    return body


async def test_honolulu_is_held_while_new_york_goes_at_the_same_instant(service: Service) -> None:
    await quiet(service)
    at(service.clock, INSTANT)
    new_york, honolulu = await send(service, NEW_YORK), await send(service, HONOLULU)
    await service.work()
    assert (await state(service, new_york))["status"] == "sent"
    assert (await state(service, honolulu))["status"] == "pending"

    at(service.clock, datetime(2026, 3, 10, 17, 59, 59, tzinfo=UTC))
    await service.work()
    assert (await state(service, honolulu))["status"] == "pending"

    at(service.clock, HONOLULU_OPENS)
    await service.work()
    sent = await state(service, honolulu)
    assert sent["status"] == "sent"
    assert sent["handed_off_at"] == HONOLULU_OPENS.isoformat()


async def test_quiet_hours_are_off_by_default(service: Service) -> None:
    await service.provision(use_case_document())
    at(service.clock, INSTANT)
    honolulu = await send(service, HONOLULU)
    await service.work()
    assert (await state(service, honolulu))["status"] == "sent"


@pytest.mark.parametrize(
    ("project_setting", "use_case_setting", "held"),
    [(False, True, True), (True, False, False), (True, None, True), (False, None, False)],
)
async def test_a_use_case_setting_overrides_its_projects(
    service: Service, project_setting: bool, use_case_setting: bool | None, held: bool
) -> None:
    await quiet(service, {"quiet_hours": project_setting}, quiet_hours=use_case_setting)
    at(service.clock, INSTANT)
    honolulu = await send(service, HONOLULU)
    await service.work()
    assert (await state(service, honolulu))["status"] == ("pending" if held else "sent")


async def test_a_message_due_after_the_window_closed_is_held_when_dispatched(service: Service) -> None:
    """Accepted at 20:59:59 in New York, but no worker ran until 21:00:01: it waits for 08:00 the next day."""
    await quiet(service)
    at(service.clock, datetime(2026, 3, 11, 0, 59, 59, tzinfo=UTC))  # 20:59:59 EDT
    message_id = await send(service, NEW_YORK)
    service.clock.advance(2)
    await service.work()
    assert (await state(service, message_id))["status"] == "pending"
    at(service.clock, datetime(2026, 3, 11, 11, 59, 59, tzinfo=UTC))  # 07:59:59 EDT
    await service.work()
    assert (await state(service, message_id))["status"] == "pending"
    service.clock.advance(1)
    await service.work()
    assert (await state(service, message_id))["status"] == "sent"


async def test_a_night_spent_held_does_not_use_up_the_validity_period(service: Service) -> None:
    """From 21:00 to 08:00 is 11 hours, longer than the 10-hour validity period, which counts from 08:00."""
    await quiet(service)
    at(service.clock, datetime(2026, 3, 11, 1, 0, tzinfo=UTC))  # 21:00 EDT, just closed
    message_id = await send(service, NEW_YORK)
    at(service.clock, datetime(2026, 3, 11, 12, 0, tzinfo=UTC))  # 08:00 EDT
    await service.work()
    message = await state(service, message_id)
    assert (message["status"], message["error_code"]) == ("sent", None)


async def test_a_greeting_is_held_but_a_reply_in_its_conversation_is_not(service: Service) -> None:
    document = use_case_document()
    document["accounts"][0]["projects"][0]["quiet_hours"] = True  # the PolyAI project, `clinic`
    await service.provision(document)
    at(service.clock, INSTANT)
    greeting = await service.client.post(
        "/v1/outbound-sms",
        json={"message": "Hi, it's the clinic", "user_number": HONOLULU, "agent_number": SENDER},
        headers={"X-PolyAi-Auth-Token": API_KEY, "X-TOKEN-ID": CONNECTOR},
    )
    assert greeting.status_code == 202
    await service.work()
    assert await handset(service) == []

    # 04:30 in Honolulu: the person texts HELP, and the answer goes at once.
    text = await service.client.post(
        "/sandbox/inbound", json={"from": HONOLULU, "to": SENDER, "body": "HELP"}
    )
    assert text.status_code == 201
    await service.work()
    service.clock.advance(5)
    await service.work()
    received = await handset(service)
    assert [m["body"] for m in received if m["direction"] == "to_handset"] == [
        "Reply STOP to unsubscribe. Msg&Data Rates May Apply."
    ]

    at(service.clock, HONOLULU_OPENS)
    await service.work()
    service.clock.advance(5)
    await service.work()
    assert [m["body"] for m in await handset(service) if m["direction"] == "to_handset"] == [
        "Reply STOP to unsubscribe. Msg&Data Rates May Apply.",
        "Hi, it's the clinic",
    ]


async def handset(service: Service) -> list[dict[str, Any]]:
    response = await service.client.get(f"/sandbox/handsets/{HONOLULU}/messages")
    body = response.json()
    assert isinstance(body, list)
    return body


async def test_a_person_who_opts_out_while_their_message_is_held_never_gets_it(service: Service) -> None:
    await quiet(service)
    at(service.clock, INSTANT)  # 04:30 in Honolulu
    message_id = await send(service, HONOLULU)
    stop = await service.client.post(
        "/sandbox/inbound", json={"from": HONOLULU, "to": POOL[0], "body": "STOP"}
    )
    assert stop.status_code == 201
    at(service.clock, HONOLULU_OPENS)
    await service.settle()
    message = await state(service, message_id)
    assert (message["status"], message["error_code"], message["handed_off_at"]) == ("failed", 21610, None)
    received = [m["body"] for m in await handset(service) if m["direction"] == "to_handset"]
    assert received == [OPT_OUT_TEXT]  # the confirmation, a reply, went; the held message did not
