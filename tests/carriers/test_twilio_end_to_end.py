"""A greeting through the PolyAI dialect on a Twilio number: the twilio library's real request reaches the
emulator, whose signed callbacks bring the message to `delivered`; Twilio's 21610 opts the recipient out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from reachout.app import Runtime, create_app
from reachout.compliance import service as compliance
from reachout.kit.clock import FakeClock
from reachout.messaging.models import Message
from reachout.provisioning import loader
from reachout.provisioning import service as provisioning
from tests.support.polyai import EXAMPLE
from tests.support.processes import free_port
from tests.support.provisioning import POLYAI_HEADERS, SENDER, USER, standard_document
from tests.support.twilio_emulator import (
    TwilioEmulator,
    numbers_on_twilio,
    reachout_settings,
    running_emulator,
    serving,
)

SERVICE = "MG" + "4" * 32


def on_twilio(**project: Any) -> dict[str, Any]:
    """The standard document with the project's numbers on Twilio (and any other project settings)."""
    document = numbers_on_twilio(standard_document())
    document["accounts"][0]["projects"][0].update(project)
    return document


@dataclass
class Live:
    runtime: Runtime
    client: httpx.AsyncClient
    emulator: TwilioEmulator

    async def provision(self, document: dict[str, Any]) -> None:
        async with self.runtime.database.write.begin() as session:
            await provisioning.apply(session, loader.parse(document, "test"), self.runtime.clock.now())
        self.runtime.directory.forget()

    async def greet(self) -> httpx.Response:
        return await self.client.post(
            "/v1/outbound-sms", json=EXAMPLE | {"agent_number": SENDER}, headers=POLYAI_HEADERS
        )

    async def opted_out(self) -> bool:
        async with self.runtime.database.read() as session:
            return await compliance.is_opted_out(session, "clinic", USER)


@pytest.fixture
async def live(database_url: str, clock: FakeClock) -> AsyncIterator[Live]:
    async with running_emulator() as emulator:
        port = free_port()
        settings = reachout_settings(emulator, database_url, port, twilio_timeout_seconds=0.3)
        app = create_app(settings, clock=clock, run_worker=False)
        async with serving(app, port):
            live = Live(app.state.runtime, httpx.AsyncClient(base_url=settings.public_url), emulator)
            await live.provision(on_twilio())
            async with live.client:
                yield live


async def the_message(live: Live) -> Message:
    async with live.runtime.database.read() as session:
        return (await session.execute(select(Message))).scalar_one()


async def test_a_greeting_on_a_twilio_number_is_delivered(live: Live) -> None:
    body = EXAMPLE | {"agent_number": SENDER}
    assert (await live.client.post("/v1/outbound-sms", json=body, headers=POLYAI_HEADERS)).status_code == 202
    await live.runtime.worker.run_once()
    [form] = live.emulator.creates()
    assert (form["To"], form["From"], form["Body"]) == (USER, SENDER, EXAMPLE["message"])
    [sid] = live.emulator.messages
    handed = await the_message(live)
    assert form["StatusCallback"] == (
        f"{live.runtime.settings.public_url}/v1/webhook/twilio/sms-status?reference={handed.id}"
    )
    assert (handed.status, handed.carrier_sid, handed.carrier) == ("sending", sid, "twilio")

    assert (await live.emulator.report(sid, "sent")).status_code == 204
    assert (await live.emulator.report(sid, "delivered", NumSegments="1")).status_code == 204
    delivered = await the_message(live)
    assert (delivered.status, delivered.num_segments) == ("delivered", 1)
    assert delivered.handed_off_at is not None and delivered.delivered_at is not None


async def test_a_forged_callback_is_refused_and_changes_nothing(live: Live) -> None:
    body = EXAMPLE | {"agent_number": SENDER}
    assert (await live.client.post("/v1/outbound-sms", json=body, headers=POLYAI_HEADERS)).status_code == 202
    await live.runtime.worker.run_once()
    [sid] = live.emulator.messages
    forged = {"MessageSid": sid, "MessageStatus": "delivered"}
    response = await live.client.post(
        "/v1/webhook/twilio/sms-status", data=forged, headers={"X-Twilio-Signature": "Zm9yZ2Vk"}
    )
    assert response.status_code == 403
    assert (await the_message(live)).status == "sending"


async def test_twilios_21610_fails_the_greeting_and_opts_the_recipient_out(live: Live) -> None:
    live.emulator.unsubscribed.add(USER)  # they replied STOP to this account at some point
    assert (await live.greet()).status_code == 202
    await live.runtime.worker.run_once()
    failed = await the_message(live)
    assert (failed.status, failed.error_code, failed.carrier_sid) == ("failed", 21610, None)
    assert await live.opted_out()

    again = await live.greet()
    assert again.status_code == 400
    assert again.json()["detail"].startswith(f"{USER} has opted out")
    await live.runtime.worker.run_once()
    assert len(live.emulator.creates()) == 1  # nothing more went to Twilio


async def test_a_status_callback_with_21610_opts_the_recipient_out(live: Live) -> None:
    assert (await live.greet()).status_code == 202
    await live.runtime.worker.run_once()
    [sid] = live.emulator.messages
    assert not await live.opted_out()
    assert (await live.emulator.report(sid, "failed", error_code=21610)).status_code == 204
    failed = await the_message(live)
    assert (failed.status, failed.error_code) == ("failed", 21610)
    assert await live.opted_out()
    assert (await live.greet()).status_code == 400


async def test_a_project_with_a_messaging_service_sends_through_its_pool(live: Live) -> None:
    live.emulator.services[SERVICE] = [SENDER]
    await live.provision(on_twilio(twilio={"messaging_service_sid": SERVICE}))
    assert (await live.greet()).status_code == 202
    await live.runtime.worker.run_once()
    [form] = live.emulator.creates()
    assert (form["To"], form["MessagingServiceSid"], form["Body"]) == (USER, SERVICE, EXAMPLE["message"])
    assert form["From"] == SENDER, "the sender the conversation is keyed by, from the service's pool"
    [sid] = live.emulator.messages
    assert (await live.emulator.report(sid, "delivered")).status_code == 204
    delivered = await the_message(live)
    assert (delivered.status, delivered.carrier_sid) == ("delivered", sid)


async def handed_off(live: Live) -> str:
    """Greet, let the worker hand the greeting to Twilio, and return the sid Twilio gave it."""
    assert (await live.greet()).status_code == 202
    await live.runtime.worker.run_once()
    [sid] = live.emulator.messages
    return sid


async def test_callbacks_out_of_order_twice_and_after_the_end_leave_the_right_status(live: Live) -> None:
    sid = await handed_off(live)
    assert (await live.emulator.report(sid, "delivered", RawDlrDoneDate="2611231200")).status_code == 204
    delivered = await the_message(live)
    assert (delivered.status, delivered.handed_off_at is not None) == ("delivered", True)
    live.runtime.clock.advance(5)  # type: ignore[attr-defined]
    for late in ("sent", "delivered", "undelivered", "failed"):  # overtaken, repeated, after the end
        assert (await live.emulator.report(sid, late, error_code=30003)).status_code == 204
    after = await the_message(live)
    assert (after.status, after.delivered_at, after.error_code) == ("delivered", delivered.delivered_at, None)


async def test_a_send_that_timed_out_after_twilio_accepted_it_is_not_sent_again(live: Live) -> None:
    live.emulator.hang_after_accept = 1
    assert (await live.greet()).status_code == 202
    await live.runtime.worker.run_once()  # Twilio took it; the answer never came
    waiting = await the_message(live)
    assert (waiting.status, waiting.carrier_sid, waiting.attempts) == ("queued", None, 1)
    live.runtime.clock.advance(60)  # type: ignore[attr-defined]
    await live.runtime.worker.run_once()
    [sid] = live.emulator.messages
    assert len(live.emulator.creates()) == 1, "the retry found Twilio's message instead of sending again"
    found = await the_message(live)
    assert (found.status, found.carrier_sid, found.attempts) == ("sending", sid, 2)
    assert (await live.emulator.report(sid, "delivered")).status_code == 204
    assert (await the_message(live)).status == "delivered"


async def test_a_lost_answer_is_not_mistaken_for_an_identical_earlier_message(live: Live) -> None:
    first = await handed_off(live)
    live.emulator.hang_after_accept = 1
    assert (await live.greet()).status_code == 202  # the same words to the same person
    live.runtime.clock.advance(1)  # type: ignore[attr-defined]
    await live.runtime.worker.run_once()
    live.runtime.clock.advance(60)  # type: ignore[attr-defined]
    await live.runtime.worker.run_once()
    assert len(live.emulator.creates()) == 2
    async with live.runtime.database.read() as session:
        sids = sorted((await session.execute(select(Message.carrier_sid))).scalars())
    assert sids == sorted(live.emulator.messages) and first in sids, "each message has its own Twilio sid"


async def test_a_callback_that_overtakes_the_record_of_the_hand_off_finds_its_message(live: Live) -> None:
    live.emulator.hang_after_accept = 1  # Twilio took it; its answer (the sid) has not reached reachout
    assert (await live.greet()).status_code == 202
    await live.runtime.worker.run_once()
    [sid] = live.emulator.messages
    assert (await the_message(live)).carrier_sid is None
    assert (await live.emulator.report(sid, "delivered")).status_code == 204
    delivered = await the_message(live)
    assert (delivered.status, delivered.carrier_sid) == ("delivered", sid), (
        "matched by the callback URL's reference"
    )
    live.runtime.clock.advance(60)  # type: ignore[attr-defined]
    await live.runtime.worker.run_once()
    assert len(live.emulator.creates()) == 1, "a delivered message is not retried"
