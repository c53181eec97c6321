"""The reference page's example conversation, verbatim, on the demo configuration that `make run` serves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from reachout.kit.clock import FakeClock
from tests.support.service import Service, in_process, make_settings

DEMO = Path(__file__).parents[1] / "demo.yaml"
HEADERS = {"X-PolyAi-Auth-Token": "rk_demo_key_123456", "X-TOKEN-ID": "conn_demo_clinic"}
USER = "+14155551234"
GREETING = " ".join(
    [
        "Hi Jane, your appointment is confirmed for tomorrow at 2pm.",
        "Reply to this message if you need to reschedule.",
    ]
)
REPLY = "Can I move it to 3pm instead?"
ANSWER = "Of course \u2014 I\u2019ve rescheduled your appointment to 3pm tomorrow. See you then!"


@pytest.fixture
async def demo(database_url: str, clock: FakeClock) -> AsyncIterator[Service]:
    async with in_process(make_settings(database_url, config=DEMO), clock) as service:
        yield service


async def transcript(demo: Service) -> list[tuple[str, str]]:
    response = await demo.client.get(f"/sandbox/handsets/{USER}/messages")
    return [(m["direction"], m["body"]) for m in response.json()]


async def test_the_reference_conversation_plays_out_verbatim(demo: Service) -> None:
    response = await demo.client.post(
        "/v1/outbound-sms", json={"message": GREETING, "user_number": USER}, headers=HEADERS
    )
    assert (response.status_code, response.content) == (202, b"")
    await demo.settle()
    [greeting] = (await demo.client.get(f"/sandbox/handsets/{USER}/messages")).json()
    reply = {"from": USER, "to": greeting["from"], "body": REPLY}
    assert (await demo.client.post("/sandbox/inbound", json=reply)).status_code == 201
    await demo.settle()
    assert await transcript(demo) == [
        ("to_handset", GREETING),
        ("from_handset", REPLY),
        ("to_handset", ANSWER),
    ]


async def test_the_readmes_use_case_send_works_on_the_demo(demo: Service) -> None:
    """README: `POST /v1/sms/` through the demo's use case, then `GET /v1/sms/{id}` until it is delivered."""
    headers = {"Authorization": "Bearer rk_demo_key_123456"}
    created = await demo.client.post(
        "/v1/sms/",
        json={
            "use_case_id": "3f6c2a3e-5b0e-4a8e-9d3c-0f1e2d3c4b5a",
            "to_phone_number": USER,
            "message": "Hi",
        },
        headers=headers,
    )
    assert created.status_code == 201
    assert (created.json()["status"], created.json()["from_number"]) == ("pending", None)
    await demo.settle()
    message = (await demo.client.get(f"/v1/sms/{created.json()['id']}", headers=headers)).json()
    assert message["status"] == "delivered"
    assert message["from_number"] in ("+14155550100", "+14155550101")


async def test_a_reply_to_the_demos_use_case_is_answered_by_the_reminder_that_read_it(demo: Service) -> None:
    """The demo's use case answers replies with the project's pathway, which starts from the text it sent."""
    headers = {"Authorization": "Bearer rk_demo_key_123456"}
    reminder = "Hi Jane, a reminder of your appointment tomorrow at 2pm. Reply YES to confirm."
    created = await demo.client.post(
        "/v1/sms/",
        json={
            "use_case_id": "3f6c2a3e-5b0e-4a8e-9d3c-0f1e2d3c4b5a",
            "to_phone_number": USER,
            "message": reminder,
        },
        headers=headers,
    )
    assert created.status_code == 201
    await demo.settle()
    [sent] = (await demo.client.get(f"/sandbox/handsets/{USER}/messages")).json()
    reply = {"from": USER, "to": sent["from"], "body": "could we do 10:30am?"}
    assert (await demo.client.post("/sandbox/inbound", json=reply)).status_code == 201
    await demo.settle()
    answer = "Of course \u2014 I\u2019ve rescheduled your appointment to 10:30am tomorrow. See you then!"
    assert await transcript(demo) == [
        ("to_handset", reminder),
        ("from_handset", "could we do 10:30am?"),
        ("to_handset", answer),
    ]
