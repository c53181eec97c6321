"""`POST /v1/sms/` through a use case whose pool is on Twilio: the page's lifecycle seen through
`GET /v1/sms/{id}` as the emulator's signed callbacks arrive, the use case's Messaging Service, and Twilio
Lookup v2 answering the landline check (kept per number, and never blocking a send when it is down)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from reachout.app import Runtime, create_app
from reachout.kit.clock import FakeClock
from reachout.provisioning import loader
from reachout.provisioning import service as provisioning
from tests.support.processes import free_port
from tests.support.provisioning import API_KEY, POOL, POOL_415, USE_CASE, use_case_document
from tests.support.twilio_emulator import TwilioEmulator, reachout_settings, running_emulator, serving

HEADERS = {"Authorization": f"Bearer {API_KEY}"}
RECIPIENT = "+14155551234"
SERVICE = "MG" + "5" * 32


@dataclass
class Live:
    runtime: Runtime
    client: httpx.AsyncClient
    emulator: TwilioEmulator

    async def provision(self, **use_case: Any) -> None:
        document = use_case_document(use_case=use_case, carrier="twilio")
        async with self.runtime.database.write.begin() as session:
            await provisioning.apply(session, loader.parse(document, "test"), self.runtime.clock.now())
        self.runtime.directory.forget()

    async def send(self, to: str = RECIPIENT) -> httpx.Response:
        return await self.client.post(
            "/v1/sms/",
            json={"use_case_id": USE_CASE, "to_phone_number": to, "message": "Your table is ready"},
            headers=HEADERS,
        )

    async def state(self, message_id: str) -> dict[str, Any]:
        response = await self.client.get(f"/v1/sms/{message_id}", headers=HEADERS)
        assert response.status_code == 200, response.text
        body = response.json()
        assert isinstance(body, dict)
        return body


@pytest.fixture
async def live(database_url: str, clock: FakeClock) -> AsyncIterator[Live]:
    async with running_emulator() as emulator:
        port = free_port()
        settings = reachout_settings(
            emulator,
            database_url,
            port,
            twilio_timeout_seconds=0.3,
            line_type_lookup="twilio",
            twilio_lookup_base_url=emulator.base_url,
        )
        app = create_app(settings, clock=clock, run_worker=False)
        async with serving(app, port):
            live = Live(app.state.runtime, httpx.AsyncClient(base_url=settings.public_url), emulator)
            await live.provision()
            async with live.client:
                yield live


async def test_pending_then_sent_then_delivered_through_twilio(live: Live) -> None:
    created = await live.send()
    assert created.status_code == 201
    message_id = created.json()["id"]
    pending = await live.state(message_id)
    assert (pending["status"], pending["from_number"], pending["message_sid"]) == ("pending", None, None)

    await live.runtime.worker.run_once()
    [create] = live.emulator.creates()
    assert create["From"] == POOL_415 and create["To"] == RECIPIENT  # geomatch: a 415 recipient, from 415
    sent = await live.state(message_id)
    assert sent["status"] == "sent" and sent["from_number"] == POOL_415
    assert sent["message_sid"] in live.emulator.messages and sent["handed_off_at"] is not None
    assert sent["delivered_at"] is None

    assert (await live.emulator.report(sent["message_sid"], "sent")).status_code == 204
    assert (await live.state(message_id))["status"] == "sent"
    assert (await live.emulator.report(sent["message_sid"], "delivered")).status_code == 204
    delivered = await live.state(message_id)
    assert delivered["status"] == "delivered" and delivered["delivered_at"] is not None
    assert delivered["num_segments"] == 1


async def test_a_route_without_receipts_stops_at_sent(live: Live) -> None:
    message_id = (await live.send("+16045551234")).json()["id"]
    await live.runtime.worker.run_once()
    sid = (await live.state(message_id))["message_sid"]
    await live.emulator.report(sid, "sent")
    message = await live.state(message_id)
    assert (message["status"], message["delivered_at"]) == ("sent", None)
    assert message["handed_off_at"] is not None


async def test_an_undelivered_callback_reads_undelivered_with_its_code(live: Live) -> None:
    message_id = (await live.send()).json()["id"]
    await live.runtime.worker.run_once()
    sid = (await live.state(message_id))["message_sid"]
    await live.emulator.report(sid, "undelivered", error_code=30003)
    message = await live.state(message_id)
    assert (message["status"], message["error_code"]) == ("undelivered", 30003)
    assert message["errored_at"] is not None


async def test_the_use_cases_messaging_service_is_named_with_the_chosen_sender(live: Live) -> None:
    live.emulator.services[SERVICE] = list(POOL)
    await live.provision(messaging_service_sid=SERVICE)
    await live.send()
    await live.runtime.worker.run_once()
    [create] = live.emulator.creates()
    assert (create["MessagingServiceSid"], create["From"]) == (SERVICE, POOL_415)


async def test_a_landline_by_twilio_lookup_is_refused_and_the_answer_is_kept(live: Live) -> None:
    live.emulator.line_types[RECIPIENT] = "landline"
    for _ in range(2):
        response = await live.send()
        assert response.status_code == 422
        assert response.json() == {
            "detail": f"to_phone_number: {RECIPIENT} is a landline, which cannot receive text messages."
        }
    assert live.emulator.lookups == [RECIPIENT]  # the second send asked no one


async def test_a_mobile_by_twilio_lookup_is_sent_and_asked_about_once(live: Live) -> None:
    for _ in range(2):
        assert (await live.send()).status_code == 201
    assert live.emulator.lookups == [RECIPIENT]


async def test_a_number_twilio_says_does_not_exist_is_refused(live: Live) -> None:
    live.emulator.invalid.add(RECIPIENT)
    response = await live.send()
    assert response.status_code == 422
    assert "not a real phone number" in response.json()["detail"]


async def test_a_lookup_outage_does_not_stop_sends(live: Live) -> None:
    live.emulator.lookup_fault = 503
    assert (await live.send()).status_code == 201
    live.emulator.lookup_fault = None
    assert (await live.send()).status_code == 201  # the outage was not kept as an answer
    assert live.emulator.lookups == [RECIPIENT, RECIPIENT]


async def test_numbers_libphonenumber_can_type_are_never_looked_up(live: Live) -> None:
    await live.provision(allowed_countries=["US", "GB"])
    assert (await live.send("+447400123456")).status_code == 201  # a UK mobile
    assert (await live.send("+442071838750")).status_code == 422  # a London landline
    assert live.emulator.lookups == []
