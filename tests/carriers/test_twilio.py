"""The Twilio carrier, with the real `twilio` library talking to the Twilio emulator on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from twilio.request_validator import RequestValidator

from reachout.carriers.base import Accepted, CarrierUnavailable, OutboundText, Rejected
from reachout.carriers.twilio.carrier import TwilioCarrier, TwilioSettings
from tests.support.processes import free_port
from tests.support.twilio_emulator import ACCOUNT_SID, AUTH_TOKEN, TwilioEmulator, running_emulator

PUBLIC_URL = "https://reachout.example.test"
SENDER, USER = "+14155550100", "+14155551234"


@pytest.fixture
async def emulator() -> AsyncIterator[TwilioEmulator]:
    async with running_emulator() as running:
        yield running


def carrier_for(
    emulator: TwilioEmulator, *, auth_token: str = AUTH_TOKEN, timeout: float = 5.0
) -> TwilioCarrier:
    return TwilioCarrier(
        TwilioSettings(
            ACCOUNT_SID, auth_token, PUBLIC_URL, api_base_url=emulator.base_url, timeout_seconds=timeout
        )
    )


def text(to: str = USER, channel: str = "sms", body: str = "Hi Jane") -> OutboundText:
    return OutboundText(
        reference="ref-1", channel=channel, from_number=SENDER, to_number=to, body=body, num_segments=1
    )


async def test_a_send_is_the_librarys_create_with_a_status_callback(
    emulator: TwilioEmulator,
) -> None:
    carrier = carrier_for(emulator)
    try:
        result = await carrier.send(text())
    finally:
        await carrier.close()
    assert isinstance(result, Accepted) and result.sid.startswith("SM") and result.sid in emulator.messages
    [form] = emulator.creates()
    assert form == {
        "To": USER,
        "From": SENDER,
        "Body": "Hi Jane",
        "StatusCallback": f"{PUBLIC_URL}/v1/webhook/twilio/sms-status",
    }


async def test_whatsapp_addresses_carry_the_channel_prefix(emulator: TwilioEmulator) -> None:
    carrier = carrier_for(emulator)
    try:
        assert isinstance(await carrier.send(text(channel="whatsapp")), Accepted)
    finally:
        await carrier.close()
    [form] = emulator.creates()
    assert (form["To"], form["From"]) == (f"whatsapp:{USER}", f"whatsapp:{SENDER}")


async def test_an_invalid_number_is_a_permanent_rejection_with_twilios_code(emulator: TwilioEmulator) -> None:
    carrier = carrier_for(emulator)
    try:
        result = await carrier.send(text(to="+15005550001"))
    finally:
        await carrier.close()
    assert isinstance(result, Rejected)
    assert (result.failure.code, result.failure.retryable) == (21211, False)


async def test_wrong_credentials_are_refused_not_retried(emulator: TwilioEmulator) -> None:
    carrier = carrier_for(emulator, auth_token="not_the_token")
    try:
        result = await carrier.send(text())
    finally:
        await carrier.close()
    assert isinstance(result, Rejected) and result.failure.code == 20003 and not result.failure.retryable
    assert emulator.messages == {}


async def test_a_timeout_after_twilio_accepted_is_an_unknown_outcome(emulator: TwilioEmulator) -> None:
    emulator.hang_after_accept = 1
    carrier = carrier_for(emulator, timeout=0.2)
    try:
        with pytest.raises(CarrierUnavailable):
            await carrier.send(text())
    finally:
        await carrier.close()
    assert len(emulator.messages) == 1  # Twilio has it: a blind retry would send it twice


async def test_the_emulators_callbacks_are_signed_as_twilio_signs_them(emulator: TwilioEmulator) -> None:
    carrier = carrier_for(emulator)
    try:
        result = await carrier.send(text())
    finally:
        await carrier.close()
    assert isinstance(result, Accepted)
    received: dict[str, Any] = {}

    async def capture(request: Request) -> Response:
        received["form"] = dict(await request.form())
        received["signature"] = request.headers["X-Twilio-Signature"]
        return Response(status_code=204)

    port = free_port()
    app = Starlette(routes=[Route("/cb", capture, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        url = f"http://127.0.0.1:{port}/cb"
        answer = await emulator.report(result.sid, "delivered", url=url)
    finally:
        server.should_exit = True
        await task
    assert answer.status_code == 204
    form = received["form"]
    assert (form["MessageStatus"], form["MessageSid"]) == ("delivered", result.sid)
    assert RequestValidator(AUTH_TOKEN).validate(url, form, received["signature"])


async def test_find_settles_a_timed_out_send_without_sending_again(emulator: TwilioEmulator) -> None:
    emulator.hang_after_accept = 1
    carrier = carrier_for(emulator, timeout=0.2)
    since = datetime.now(UTC)
    try:
        with pytest.raises(CarrierUnavailable):
            await carrier.send(text())
        found = await carrier.find(text(), since)
        other = await carrier.find(text(to="+14155559999"), since)
    finally:
        await carrier.close()
    [stored] = emulator.messages.values()
    assert found == Accepted(stored.sid) and other is None
    assert len(emulator.creates()) == 1
