"""The sandbox carrier: virtual handsets over HTTP, Twilio's magic numbers, and idempotent sends."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from reachout.carriers.base import Accepted, OutboundText, Rejected, TextCarrier
from reachout.carriers.sandbox.models import SandboxMessage
from reachout.carriers.sandbox.rules import MAGIC_TO_NUMBERS, SandboxLookup, fate_of
from reachout.delivery.channels import Channel
from reachout.phones.lookup import LineType
from reachout.phones.numbers import parse_e164
from tests.support.provisioning import POLYAI_HEADERS, SENDER, USER
from tests.support.service import Service, messages

# Requests that must write nothing share one app per backend: `quiet_service` (tests.support.polyai).

SID = re.compile(r"SM[0-9a-f]{32}")
REPLY = "Can I move it to 3pm instead?"


async def text_agent(service: Service, body: str = REPLY, *, sender: str = USER, to: str = SENDER) -> str:
    """A handset texts an agent number; returns the sid."""
    response = await service.client.post("/sandbox/inbound", json={"from": sender, "to": to, "body": body})
    assert response.status_code == 201, response.text
    sid: str = response.json()["sid"]
    return sid


async def greet(service: Service, body: str, user: str = USER) -> None:
    payload = {"message": body, "user_number": user, "agent_number": SENDER}
    response = await service.client.post("/v1/outbound-sms", json=payload, headers=POLYAI_HEADERS)
    assert response.status_code == 202, response.text


async def handset(service: Service, number: str = USER) -> list[dict[str, Any]]:
    response = await service.client.get(f"/sandbox/handsets/{number}/messages")
    assert response.status_code == 200, response.text
    history: list[dict[str, Any]] = response.json()
    return history


async def sandbox_rows(service: Service) -> int:
    async with service.runtime.database.read() as session:
        return (await session.execute(select(func.count()).select_from(SandboxMessage))).scalar_one()


# --- a handset texts an agent -------------------------------------------------------------------------------


async def test_inbound_text_is_recorded_with_a_twilio_shaped_sid(service: Service) -> None:
    response = await service.client.post("/sandbox/inbound", json={"from": USER, "to": SENDER, "body": REPLY})
    assert response.status_code == 201
    assert set(response.json()) == {"sid"}
    assert SID.fullmatch(response.json()["sid"])


async def test_inbound_text_appears_in_the_handsets_record(service: Service) -> None:
    await text_agent(service)
    [entry] = await handset(service)
    assert set(entry) == {"direction", "from", "to", "body", "at"}
    assert (entry["direction"], entry["from"], entry["to"], entry["body"]) == (
        "from_handset",
        USER,
        SENDER,
        REPLY,
    )
    assert datetime.fromisoformat(entry["at"]) == service.clock.now()
    assert await handset(service, SENDER) == []  # agent numbers are not handsets: only the texter's record


async def test_inbound_text_is_stored_as_a_received_message(service: Service) -> None:
    sid = await text_agent(service)
    [message] = await messages(service)
    assert (message.direction, message.status, message.channel) == ("inbound", "received", "sms")
    assert (message.carrier, message.carrier_sid) == ("sandbox", sid)
    assert (message.from_number, message.to_number, message.body) == (USER, SENDER, REPLY)
    assert message.project_id == "clinic"
    assert message.created_at == service.clock.now()


async def test_a_reply_joins_the_conversation_its_greeting_opened(service: Service) -> None:
    await greet(service, "Hi Jane, your appointment is at 2pm.")
    await text_agent(service)
    greeting, reply = await messages(service)
    assert reply.direction == "inbound"
    assert reply.conversation_id is not None and reply.conversation_id == greeting.conversation_id


async def test_a_text_to_a_number_nobody_owns_is_refused_and_kept_nowhere(service: Service) -> None:
    response = await service.client.post(
        "/sandbox/inbound", json={"from": USER, "to": "+14155550188", "body": REPLY}
    )
    assert response.status_code == 403
    assert "+14155550188 is not a sandbox number" in response.json()["detail"]
    assert await messages(service) == []


BAD_INBOUND: dict[str, tuple[Any, tuple[str, ...]]] = {
    "from-not-e164": ({"from": "4155551234", "to": SENDER, "body": "hi"}, ("from", "E.164")),
    "from-with-spaces": ({"from": "+1 415 555 1234", "to": SENDER, "body": "hi"}, ("from", "E.164")),
    "from-too-short": ({"from": "+1415", "to": SENDER, "body": "hi"}, ("from", "+1415")),
    "to-words": ({"from": USER, "to": "hello", "body": "hi"}, ("to", "E.164")),
    "to-too-long": ({"from": USER, "to": "+1" + "4" * 40, "body": "hi"}, ("to",)),
    "missing-from": ({"to": SENDER, "body": "hi"}, ("from", "required")),
    "missing-to": ({"from": USER, "body": "hi"}, ("to", "required")),
    # These name the problem but not the field: see test_a_bad_body_field_is_named_in_the_detail.
    "missing-body": ({"from": USER, "to": SENDER}, ("required",)),
    "empty-body": ({"from": USER, "to": SENDER, "body": ""}, ("at least 1 character",)),
    "body-too-long": ({"from": USER, "to": SENDER, "body": "x" * 1601}, ("1600",)),
    "body-as-list": ({"from": USER, "to": SENDER, "body": ["hi"]}, ("string",)),
    "from-as-number": ({"from": 14155551234, "to": SENDER, "body": "hi"}, ("from", "string")),
    "unknown-field": ({"from": USER, "to": SENDER, "body": "hi", "media": "x"}, ("media",)),
    "json-array": ([{"from": USER, "to": SENDER, "body": "hi"}], ("dictionary",)),
    "not-json": (b"from=+14155551234&to=+14155550100&body=hi", ("JSON",)),
    "empty-request": (b"", ("body", "required")),
}


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(("payload", "words"), BAD_INBOUND.values(), ids=BAD_INBOUND.keys())
async def test_bad_inbound_is_400_with_a_detail(
    quiet_service: Service, payload: Any, words: tuple[str, ...]
) -> None:
    service = quiet_service
    handed_to_the_sandbox = await sandbox_rows(service)
    if isinstance(payload, bytes):
        response = await service.client.post(
            "/sandbox/inbound", content=payload, headers={"Content-Type": "application/json"}
        )
    else:
        response = await service.client.post("/sandbox/inbound", json=payload)
    assert response.status_code == 400, response.text
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"detail"}
    assert isinstance(body["detail"], str) and body["detail"]
    for word in words:
        assert word.lower() in body["detail"].lower(), body["detail"]
    assert await messages(service) == []
    assert await sandbox_rows(service) == handed_to_the_sandbox


BAD_BODY_FIELD = {
    k: BAD_INBOUND[k][0] for k in ("missing-body", "empty-body", "body-too-long", "body-as-list")
}


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("payload", BAD_BODY_FIELD.values(), ids=BAD_BODY_FIELD.keys())
async def test_a_bad_body_field_is_named_in_the_detail(quiet_service: Service, payload: Any) -> None:
    response = await quiet_service.client.post("/sandbox/inbound", json=payload)
    assert response.status_code == 400
    assert response.json()["detail"].startswith("body: ")


async def test_a_nul_character_in_an_inbound_body_is_a_400(service: Service) -> None:
    try:
        response = await service.client.post(
            "/sandbox/inbound", json={"from": USER, "to": SENDER, "body": "hi\x00there"}
        )
    except Exception as error:  # ASGITransport re-raises what a real server answers with a 500
        pytest.fail(f"the request crashed the app instead of being refused: {error!r}")
    assert response.status_code == 400
    assert (await messages(service), await sandbox_rows(service)) == ([], 0)


@pytest.mark.parametrize(
    "number", ["12345", "hello", "+1415", "+1 415 555 1234"], ids=["digits", "words", "too-short", "spaces"]
)
@pytest.mark.asyncio(loop_scope="module")
async def test_a_bad_handset_number_is_400_with_a_detail(quiet_service: Service, number: str) -> None:
    response = await quiet_service.client.get(f"/sandbox/handsets/{number}/messages")
    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"detail"} and isinstance(body["detail"], str)
    assert "number" in body["detail"]


@pytest.mark.asyncio(loop_scope="module")
async def test_a_handset_that_never_texted_has_an_empty_record(quiet_service: Service) -> None:
    assert await handset(quiet_service, "+14155559876") == []


# --- the handset's record -----------------------------------------------------------------------------------


async def test_the_record_is_oldest_first_across_sent_and_received(service: Service) -> None:
    await greet(service, "1. Hi Jane, your appointment is at 2pm.")
    await service.work()  # hands it to the sandbox
    service.clock.advance(5)
    await text_agent(service, "2. Can I move it to 3pm instead?")
    service.clock.advance(5)
    await greet(service, "3. Of course, see you at 3pm.")
    await service.work()
    service.clock.advance(5)
    await text_agent(service, "4. Thanks!")
    # The reports on 1. and 3.; not what 2. and 4. start in their conversation (this project has no agent: its
    # fallback text, later the inactivity warning), which would add to the record.
    await service.settle(within=5)

    history = await handset(service)
    assert [h["body"][:2] for h in history] == ["1.", "2.", "3.", "4."]
    assert [h["direction"] for h in history] == ["to_handset", "from_handset", "to_handset", "from_handset"]
    assert [(h["from"], h["to"]) for h in history] == [(SENDER, USER), (USER, SENDER)] * 2
    times = [datetime.fromisoformat(h["at"]) for h in history]
    assert times == sorted(times) and len(set(times)) == 4


async def test_a_greeting_reaches_the_handset_once(service: Service) -> None:
    await greet(service, "Hi Jane")
    await service.settle()  # sent after 1 s, delivered after 3 s
    await service.settle()  # and nothing more happens
    [entry] = await handset(service)
    assert (entry["direction"], entry["from"], entry["to"], entry["body"]) == (
        "to_handset",
        SENDER,
        USER,
        "Hi Jane",
    )


# --- Twilio's magic numbers ---------------------------------------------------------------------------------


# The sandbox's lookup knows the invalid and the not-SMS-capable numbers, so the send gates refuse those at
# accept (tests/dialects); the others are accepted and fail at the hand-off, as Twilio fails them.
CARRIER_SIDE = {number: code for number, code in MAGIC_TO_NUMBERS.items() if code not in (21211, 21614)}


@pytest.mark.parametrize(("number", "code"), CARRIER_SIDE.items(), ids=CARRIER_SIDE.keys())
async def test_a_magic_number_fails_the_message_with_its_code(
    service: Service, number: str, code: int
) -> None:
    await greet(service, "Hi there", user=number)
    await service.work()

    [message] = await messages(service)
    assert (message.status, message.error_code) == ("failed", code)
    assert message.error_message and message.errored_at == service.clock.now()
    assert message.carrier_sid is None and await sandbox_rows(service) == 0
    assert await handset(service, number) == []


# --- landlines ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("landline", ["+442071838750", "+12125550042"])
async def test_a_landline_the_gates_did_not_see_is_accepted_then_undelivered_with_30006(
    service: Service, landline: str
) -> None:
    """A carrier takes a text to a landline and fails it on the network's side, as Twilio does."""
    sandbox = sandbox_of(service)
    result = await sandbox.send(outbound(str(uuid.uuid4()), to=landline))
    assert isinstance(result, Accepted)
    await service.settle()
    assert await handset(service, landline) == []
    assert fate_of(landline).final_error_code == 30006


@pytest.mark.parametrize(
    ("number", "line_type"),
    [
        ("+442071838750", LineType.LANDLINE),  # libphonenumber: a London fixed line
        ("+447400123456", LineType.MOBILE),  # libphonenumber: a UK mobile
        ("+12125550042", LineType.LANDLINE),  # the sandbox's reserved landlines, +1 NPA 555 00xx
        ("+12125550099", LineType.LANDLINE),
        ("+12125550100", LineType.MOBILE),
        ("+12125551042", LineType.MOBILE),
        ("+18005550042", LineType.TOLL_FREE),  # libphonenumber knows toll-free prefixes
    ],
)
async def test_the_sandbox_lookup_answers_by_its_rules(number: str, line_type: LineType) -> None:
    facts = await SandboxLookup().look_up(parse_e164(number))
    assert (facts.number, facts.valid, facts.line_type) == (number, True, line_type)


# --- idempotency --------------------------------------------------------------------------------------------


def sandbox_of(service: Service) -> TextCarrier:
    return service.runtime.carriers.get("sandbox")


def outbound(reference: str, to: str = USER) -> OutboundText:
    return OutboundText(
        reference=reference,
        channel=Channel.SMS,
        from_number=SENDER,
        to_number=to,
        body="Hi Jane",
        num_segments=1,
    )


async def test_a_repeated_send_is_the_same_send(service: Service) -> None:
    reference = str(uuid.uuid4())
    first = await sandbox_of(service).send(outbound(reference))
    second = await sandbox_of(service).send(outbound(reference))

    assert isinstance(first, Accepted) and SID.fullmatch(first.sid)
    assert second == first
    assert await sandbox_rows(service) == 1


async def test_concurrent_repeats_are_one_send(service: Service) -> None:
    reference = str(uuid.uuid4())
    results = await asyncio.gather(*(sandbox_of(service).send(outbound(reference)) for _ in range(4)))
    assert len(set(results)) == 1 and isinstance(results[0], Accepted)
    assert await sandbox_rows(service) == 1


async def test_different_references_are_different_sends(service: Service) -> None:
    first = await sandbox_of(service).send(outbound(str(uuid.uuid4())))
    second = await sandbox_of(service).send(outbound(str(uuid.uuid4())))
    assert isinstance(first, Accepted) and isinstance(second, Accepted)
    assert first.sid != second.sid
    assert await sandbox_rows(service) == 2


async def test_a_refused_send_stores_nothing(service: Service) -> None:
    result = await sandbox_of(service).send(outbound(str(uuid.uuid4()), to="+15005550001"))
    assert isinstance(result, Rejected) and result.failure.code == 21211
    assert await sandbox_rows(service) == 0


# --- status reports -----------------------------------------------------------------------------------------


async def reports_made(service: Service) -> list[tuple[str, str | None]]:
    """(status, reference) of each report the sandbox makes in one pass, in order."""
    async with service.runtime.database.write.begin() as session:
        reports = await sandbox_of(service).take_due_reports(session)
    return [(r.status, r.reference) for r in reports]


async def test_sent_then_delivered_each_when_due(service: Service) -> None:
    # make_settings: `sent` 1 s after the hand-off, `delivered` 3 s after it.
    reference = str(uuid.uuid4())
    assert isinstance(await sandbox_of(service).send(outbound(reference)), Accepted)
    assert await reports_made(service) == []
    service.clock.advance(1)
    assert await reports_made(service) == [("sent", reference)]
    assert await reports_made(service) == []
    service.clock.advance(2)
    assert await reports_made(service) == [("delivered", reference)]
    service.clock.advance(60)
    assert await reports_made(service) == []


async def test_a_worker_that_fell_behind_gets_both_reports_in_one_pass_in_order(service: Service) -> None:
    reference = str(uuid.uuid4())
    assert isinstance(await sandbox_of(service).send(outbound(reference)), Accepted)
    service.clock.advance(5)  # past `delivered` as well as `sent`
    assert await reports_made(service) == [("sent", reference), ("delivered", reference)]
    assert await reports_made(service) == []
