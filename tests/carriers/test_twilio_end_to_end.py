"""A greeting through the PolyAI dialect on a Twilio number: the twilio library's real request reaches the
emulator, whose signed callbacks bring the message to `delivered`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from sqlalchemy import select

from reachout.app import Runtime, create_app
from reachout.kit.clock import FakeClock
from reachout.messaging.models import Message
from reachout.provisioning import loader
from reachout.provisioning import service as provisioning
from tests.conftest import make_settings
from tests.dialects.test_polyai import EXAMPLE, HEADERS
from tests.support.processes import free_port
from tests.support.provisioning import SENDER, USER, standard_document
from tests.support.twilio_emulator import ACCOUNT_SID, AUTH_TOKEN, TwilioEmulator, running_emulator


@dataclass
class Live:
    runtime: Runtime
    client: httpx.AsyncClient
    emulator: TwilioEmulator


@pytest.fixture
async def live(database_url: str, clock: FakeClock) -> AsyncIterator[Live]:
    async with running_emulator() as emulator:
        port = free_port()
        settings = make_settings(
            database_url,
            public_url=f"http://127.0.0.1:{port}",
            twilio_account_sid=ACCOUNT_SID,
            twilio_auth_token=AUTH_TOKEN,
            twilio_api_base_url=emulator.base_url,
        )
        app = create_app(settings, clock=clock, run_worker=False)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        task = asyncio.create_task(server.serve())
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        runtime: Runtime = app.state.runtime
        document = standard_document()
        for number in document["accounts"][0]["projects"][0]["numbers"]:
            number["carrier"] = "twilio"
        async with runtime.database.write.begin() as session:
            await provisioning.apply(session, loader.parse(document, "test"), clock.now())
        runtime.directory.forget()
        try:
            async with httpx.AsyncClient(base_url=settings.public_url) as client:
                yield Live(runtime, client, emulator)
        finally:
            server.should_exit = True
            await task


async def the_message(live: Live) -> Message:
    async with live.runtime.database.read() as session:
        return (await session.execute(select(Message))).scalar_one()


async def test_a_greeting_on_a_twilio_number_is_delivered(live: Live) -> None:
    body = EXAMPLE | {"agent_number": SENDER}
    assert (await live.client.post("/v1/outbound-sms", json=body, headers=HEADERS)).status_code == 202
    await live.runtime.worker.run_once()
    [form] = live.emulator.creates()
    assert (form["To"], form["From"], form["Body"]) == (USER, SENDER, EXAMPLE["message"])
    assert form["StatusCallback"] == f"{live.runtime.settings.public_url}/v1/webhook/twilio/sms-status"
    [sid] = live.emulator.messages
    handed = await the_message(live)
    assert (handed.status, handed.carrier_sid, handed.carrier) == ("sending", sid, "twilio")

    assert (await live.emulator.report(sid, "sent")).status_code == 204
    assert (await live.emulator.report(sid, "delivered", NumSegments="1")).status_code == 204
    delivered = await the_message(live)
    assert (delivered.status, delivered.num_segments) == ("delivered", 1)
    assert delivered.handed_off_at is not None and delivered.delivered_at is not None


async def test_a_forged_callback_is_refused_and_changes_nothing(live: Live) -> None:
    body = EXAMPLE | {"agent_number": SENDER}
    assert (await live.client.post("/v1/outbound-sms", json=body, headers=HEADERS)).status_code == 202
    await live.runtime.worker.run_once()
    [sid] = live.emulator.messages
    forged = {"MessageSid": sid, "MessageStatus": "delivered"}
    response = await live.client.post(
        "/v1/webhook/twilio/sms-status", data=forged, headers={"X-Twilio-Signature": "Zm9yZ2Vk"}
    )
    assert response.status_code == 403
    assert (await the_message(live)).status == "sending"
