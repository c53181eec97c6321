"""The Twilio carrier, with the real `twilio` library talking to the Twilio emulator on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from twilio.request_validator import RequestValidator

from reachout.carriers.base import Accepted, CarrierUnavailable, OutboundText, Rejected, SendResult
from reachout.carriers.twilio.carrier import TwilioCarrier, TwilioSettings
from reachout.delivery.channels import Channel
from tests.support.processes import free_port
from tests.support.twilio_emulator import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    EmulatedMessage,
    TwilioEmulator,
    running_emulator,
)

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


def text(to: str = USER, channel: Channel = Channel.SMS, body: str = "Hi Jane") -> OutboundText:
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
        "StatusCallback": f"{PUBLIC_URL}/v1/webhook/twilio/sms-status?reference=ref-1",
    }


async def test_whatsapp_addresses_carry_the_channel_prefix(emulator: TwilioEmulator) -> None:
    carrier = carrier_for(emulator)
    try:
        assert isinstance(await carrier.send(text(channel=Channel.WHATSAPP)), Accepted)
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
    assert found == (Accepted(stored.sid),) and other == ()
    assert len(emulator.creates()) == 1


SERVICE, OTHER_SERVICE = "MG" + "1" * 32, "MG" + "2" * 32
POOL_SENDER = "+14155550142"
CONTENT = "HX" + "3" * 32
TEMPLATE = "Hi {{1}}, your visit is on {{2}}."


def service_text(**changes: Any) -> OutboundText:
    return replace(text(), messaging_service_sid=SERVICE, **changes)


def content_text(**changes: Any) -> OutboundText:
    variables = {"1": "Jane", "2": "Friday"}
    return replace(text(), content_sid=CONTENT, content_variables=variables, **changes)


@pytest.fixture
def account(emulator: TwilioEmulator) -> TwilioEmulator:
    """The emulator with a Messaging Service and a content template, as a Twilio account would have them."""
    emulator.services[SERVICE] = [POOL_SENDER]
    emulator.services[OTHER_SERVICE] = ["+14155550143"]
    emulator.contents[CONTENT] = TEMPLATE
    return emulator


async def send_all(emulator: TwilioEmulator, *texts: OutboundText) -> list[SendResult]:
    carrier = carrier_for(emulator)
    try:
        return [await carrier.send(t) for t in texts]
    finally:
        await carrier.close()


async def test_a_messaging_service_send_names_the_service_and_the_chosen_sender(
    account: TwilioEmulator,
) -> None:
    account.services[SERVICE].append(SENDER)
    [result] = await send_all(account, service_text())
    assert isinstance(result, Accepted)
    [form] = account.creates()
    assert form == {
        "To": USER,
        "From": SENDER,
        "MessagingServiceSid": SERVICE,
        "Body": "Hi Jane",
        "StatusCallback": f"{PUBLIC_URL}/v1/webhook/twilio/sms-status?reference=ref-1",
    }
    # The conversation is keyed by the number reachout chose, so that is the one the person sees.
    assert account.messages[result.sid].sender == SENDER


async def test_a_content_template_is_sent_instead_of_the_body(account: TwilioEmulator) -> None:
    [result] = await send_all(account, content_text(channel=Channel.WHATSAPP))
    assert isinstance(result, Accepted)
    [form] = account.creates()
    assert "Body" not in form
    assert (form["ContentSid"], json.loads(form["ContentVariables"])) == (
        CONTENT,
        {"1": "Jane", "2": "Friday"},
    )
    assert (form["To"], form["From"]) == (f"whatsapp:{USER}", f"whatsapp:{SENDER}")
    assert account.messages[result.sid].body == "Hi Jane, your visit is on Friday."


async def test_a_template_without_variables_sends_none(account: TwilioEmulator) -> None:
    [result] = await send_all(account, replace(content_text(), content_variables=None))
    assert isinstance(result, Accepted)
    [form] = account.creates()
    assert form["ContentSid"] == CONTENT and "ContentVariables" not in form and "Body" not in form


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"messaging_service_sid": "MG" + "9" * 32}, 21701),
        ({"content_sid": "HX" + "9" * 32}, 21655),
        ({"content_sid": CONTENT, "content_variables": {"1": ""}}, 21656),
    ],
    ids=["unknown-service", "unknown-template", "empty-variable"],
)
async def test_twilios_refusals_of_services_and_templates_are_permanent(
    account: TwilioEmulator, changes: dict[str, Any], code: int
) -> None:
    [result] = await send_all(account, replace(text(), **changes))
    assert isinstance(result, Rejected)
    assert (result.failure.code, result.failure.retryable) == (code, False)
    assert account.messages == {}


async def test_an_unsubscribed_recipient_is_refused_with_21610_which_opts_out(
    account: TwilioEmulator,
) -> None:
    account.unsubscribed.add(USER)
    [result] = await send_all(account, text())
    assert isinstance(result, Rejected)
    assert (result.failure.code, result.failure.retryable, result.failure.opts_out) == (21610, False, True)


@pytest.mark.parametrize(
    ("form", "code", "message"),
    [
        ({"From": SENDER, "Body": "hi"}, 21604, "A 'To' phone number is required."),
        ({"To": USER, "Body": "hi"}, 21603, "A 'From' phone number is required."),
        ({"To": USER, "From": SENDER}, 21602, "Message body is required."),
        (
            {"To": USER, "MessagingServiceSid": SERVICE},
            21619,
            "A Message Body, Media URL or Content SID is required.",
        ),
        (
            {"To": USER, "From": SENDER, "Body": "hi", "ContentVariables": "{}"},
            21654,
            "A ContentSid must be specified if ContentVariables are provided in the request.",
        ),
        (
            {"To": USER, "From": SENDER, "ContentSid": CONTENT, "ContentVariables": "not json"},
            21656,
            "The ContentVariables Parameter is invalid.",
        ),
    ],
    ids=["no-to", "no-from-or-service", "no-body", "service-without-content", "variables-alone", "bad-json"],
)
async def test_the_emulator_refuses_incomplete_creates_with_twilios_codes(
    account: TwilioEmulator, form: dict[str, str], code: int, message: str
) -> None:
    async with httpx.AsyncClient(auth=(ACCOUNT_SID, AUTH_TOKEN)) as client:
        response = await client.post(
            f"{account.base_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json", data=form
        )
    assert response.status_code == 400
    assert response.json() == {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": 400,
    }
    assert account.messages == {}


async def test_the_emulator_accepts_media_without_a_body(account: TwilioEmulator) -> None:
    form = {"To": USER, "From": SENDER, "MediaUrl": "https://example.test/a.png"}
    async with httpx.AsyncClient(auth=(ACCOUNT_SID, AUTH_TOKEN)) as client:
        response = await client.post(
            f"{account.base_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json", data=form
        )
    assert response.status_code == 201
    assert account.messages[response.json()["sid"]].media_urls == ["https://example.test/a.png"]


async def find_after_timeout(emulator: TwilioEmulator, sent: OutboundText, *others: OutboundText) -> Any:
    """Send `sent` with the answer lost, then each of `others`; what `find` says about `sent` afterwards."""
    since = datetime.now(UTC)
    emulator.hang_after_accept = 1
    carrier = carrier_for(emulator, timeout=0.2)
    try:
        with pytest.raises(CarrierUnavailable):
            await carrier.send(sent)
        for other in others:
            assert isinstance(await carrier.send(other), Accepted)
        matches = await carrier.find(sent, since)
        return matches[0] if matches else None
    finally:
        await carrier.close()


def sid_of(emulator: TwilioEmulator, **fields: Any) -> str:
    [sid] = [
        sid
        for sid, m in emulator.messages.items()
        if all(getattr(m, name) == value for name, value in fields.items())
    ]
    return sid


async def test_find_matches_a_service_send_by_recipient_sender_and_service(
    account: TwilioEmulator,
) -> None:
    # The same body to the same person through another service is another send, not this one.
    other = replace(service_text(), messaging_service_sid=OTHER_SERVICE)
    found = await find_after_timeout(account, service_text(), other)
    assert found == Accepted(sid_of(account, messaging_service_sid=SERVICE))
    [listed] = [params for method, _, params in account.requests if method == "GET"]
    assert (listed["To"], listed["From"]) == (USER, SENDER) and "DateSent>" in listed


async def test_find_does_not_match_another_services_send(account: TwilioEmulator) -> None:
    assert isinstance(
        (await send_all(account, replace(service_text(), messaging_service_sid=OTHER_SERVICE)))[0], Accepted
    )
    carrier = carrier_for(account)
    try:
        assert await carrier.find(service_text(), datetime.now(UTC) - timedelta(seconds=5)) == ()
    finally:
        await carrier.close()


async def test_find_matches_a_content_send_by_the_earliest_message_since_it_was_queued(
    account: TwilioEmulator,
) -> None:
    # A reply sent to the same person after the template, with a body nothing could have predicted either.
    later = replace(text(), body="you said: hi")
    found = await find_after_timeout(account, content_text(), later)
    assert found == Accepted(sid_of(account, content_sid=CONTENT))


async def test_find_of_a_content_send_ignores_what_came_before_the_window(account: TwilioEmulator) -> None:
    [old] = await send_all(account, text())
    assert isinstance(old, Accepted)
    account.messages[old.sid].date_created -= timedelta(minutes=5)  # long before this text was queued
    carrier = carrier_for(account)
    try:
        assert await carrier.find(content_text(), datetime.now(UTC)) == ()
    finally:
        await carrier.close()


async def test_find_of_a_content_send_counts_only_messages_created_through_the_api(
    account: TwilioEmulator,
) -> None:
    # A TwiML reply another app on the number sent: Twilio lists it with direction "outbound-reply".
    account.messages["SM" + "e" * 32] = EmulatedMessage(
        sid="SM" + "e" * 32,
        to=USER,
        from_=SENDER,
        body="Thanks!",
        status="delivered",
        status_callback=None,
        messaging_service_sid=None,
        date_created=datetime.now(UTC).replace(microsecond=0),
        num_segments=1,
        direction="outbound-reply",
    )
    carrier = carrier_for(account)
    try:
        assert await carrier.find(content_text(), datetime.now(UTC) - timedelta(seconds=5)) == ()
    finally:
        await carrier.close()
