"""The reference page's example conversation, verbatim, on the demo configuration that `make run` serves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from reachout.app import create_app
from reachout.kit.clock import FakeClock
from tests.conftest import Service, make_settings

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
    app = create_app(make_settings(database_url, config=DEMO), clock=clock, run_worker=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://reachout.test") as client:
            yield Service(runtime=app.state.runtime, client=client, clock=clock)


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
