"""What reachout logs, in this process: an access line per request, a line per step of a message with its
ids, debug detail (claims, pacing, retries with their delays), and never a key, a token, a phone number or
a message body, at any level."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import pytest
import structlog

from reachout import logs
from reachout.carriers.base import Accepted, CarrierUnavailable, OutboundText, SendResult
from reachout.carriers.plugin import CarrierContext, CarrierPlugin
from reachout.carriers.registry import FACTORIES, CarrierRegistry
from reachout.kit.clock import FakeClock
from reachout.tenancy.settings import OPT_OUT_TEXT
from tests.support.carriers import move_number
from tests.support.polyai import EXAMPLE, EXAMPLE_MESSAGE, PATH
from tests.support.provisioning import (
    API_KEY,
    CONNECTOR,
    POLYAI_HEADERS,
    SECOND_SENDER,
    SENDER,
    USER,
    standard_document,
)
from tests.support.service import Service, in_process, make_settings
from tests.support.twilio_chat import TwilioChat
from tests.support.twilio_emulator import ACCOUNT_SID, AUTH_TOKEN

OTHER_USER = "+14155552345"
WRONG_KEY = "rk_test_wrong_key_987654"
INBOUND_BODY = "Can I move it to 3pm instead?"


@pytest.fixture(autouse=True)
def _restore_structlog() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def events(lines: Sequence[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [line for line in lines if line["event"] == name]


# --- the access log -----------------------------------------------------------------------------------------


async def test_each_request_has_one_access_line_naming_the_account_never_the_key(
    service: Service, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.configure("INFO", json=True)
    body = {"message": "Hi Jane, see you at 2pm.", "user_number": USER}
    accepted = await service.client.post(PATH, json=body, headers=POLYAI_HEADERS)
    refused = await service.client.post(
        PATH, json=body, headers={"X-PolyAi-Auth-Token": WRONG_KEY, "X-TOKEN-ID": CONNECTOR}
    )
    handset = await service.client.get(f"/sandbox/handsets/{USER}/messages")
    unknown = await service.client.get(f"/v1/nowhere/{USER}?token=s3cret-query")
    health = await service.client.get("/healthz")
    assert [r.status_code for r in (accepted, refused, handset, unknown, health)] == [202, 401, 200, 404, 200]

    err = capsys.readouterr().err
    access = events(json_lines(err), "http request")
    shown = [(a["method"], a["path"], a["status"], a["account_id"]) for a in access]
    assert shown == [
        ("POST", "/v1/outbound-sms", 202, "acme"),
        ("POST", "/v1/outbound-sms", 401, None),
        ("GET", "/sandbox/handsets/{number}/messages", 200, None),  # the route, not the number in it
        ("GET", "/v1/nowhere/[redacted number]", 404, None),  # no route: the path, numbers out, no query
    ]  # /healthz, polled every few seconds, is a debug line
    assert all(isinstance(a["duration_ms"], float) and a["duration_ms"] >= 0 for a in access)
    assert all(a["component"] == "access" and a["level"] == "info" for a in access)
    for secret in (API_KEY, WRONG_KEY, "s3cret-query", USER):
        assert secret not in err


async def test_health_checks_are_logged_at_debug(
    service: Service, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.configure("DEBUG", json=True)
    assert (await service.client.get("/healthz")).status_code == 200
    [line] = events(json_lines(capsys.readouterr().err), "http request")
    assert (line["level"], line["path"], line["status"]) == ("debug", "/healthz", 200)


# --- the steps of a message, and what debug adds ------------------------------------------------------------


@dataclass
class UnavailableCarrier:
    """A carrier that never answers: every send is retried."""

    sends: list[OutboundText] = field(default_factory=list)

    async def send(self, text: OutboundText) -> SendResult:
        self.sends.append(text)
        raise CarrierUnavailable("no answer")

    async def find(self, text: OutboundText, since: datetime) -> Sequence[Accepted]:
        return ()


def paced_document() -> dict[str, Any]:
    """The standard document with SENDER paced at one segment a second."""
    document = standard_document()
    document["accounts"][0]["projects"][0]["numbers"][0]["throughput_mps"] = 1
    return document


@pytest.mark.parametrize("level", ["debug", "info"])
async def test_debug_adds_claims_pacing_decisions_and_retries_with_their_delays(
    database_url: str, clock: FakeClock, capsys: pytest.CaptureFixture[str], level: str
) -> None:
    unavailable = UnavailableCarrier()

    def build(_context: CarrierContext) -> CarrierPlugin | None:
        return CarrierRegistry.of_texts({"unavailable": unavailable}).plugin("unavailable")

    settings = make_settings(database_url, retry_base_seconds=2.0, retry_jitter=0.0)
    carriers = {**FACTORIES, "unavailable": build}
    async with in_process(settings, clock, paced_document(), carriers) as service:
        await move_number(service, SECOND_SENDER, "unavailable")
        logs.configure(level, json=True)
        for user, sender in ((USER, SENDER), (OTHER_USER, SENDER), (USER, SECOND_SENDER)):
            body = {"message": "Hi, see you at 2pm.", "user_number": user, "agent_number": sender}
            assert (await service.client.post(PATH, json=body, headers=POLYAI_HEADERS)).status_code == 202
        await service.work()
    assert len(unavailable.sends) == 1
    lines = json_lines(capsys.readouterr().err)

    accepted = events(lines, "message accepted")
    assert len(accepted) == 3 and len(events(lines, "message handed off")) == 1  # one waits for its slot
    assert all(line["level"] == "info" for line in accepted + events(lines, "http request"))
    debug = [line for line in lines if line["level"] == "debug" and line["component"] != "access"]
    if level == "info":
        assert debug == []
        return
    [claimed] = events(lines, "dispatch claimed")
    assert (claimed["looked_at"], claimed["leased"], claimed["deferred"]) == (3, 2, 1)
    assert claimed["lease"] and claimed["lease_until"]
    [paced] = events(lines, "message paced")
    [deferred] = events(lines, "message deferred by its sender's pace")
    assert {paced["message_id"], deferred["message_id"]} < {a["message_id"] for a in accepted}
    assert paced["wait_ms"] >= 50 and deferred["in_seconds"] > 0.5  # the lead; past the horizon
    [retry] = events(lines, "send retry scheduled")
    assert (retry["attempt"], retry["error_code"], retry["delay_seconds"]) == (1, 20503, 2.0)
    assert retry["carrier"] == "unavailable" and retry["message_id"] in {a["message_id"] for a in accepted}


# --- no secret, no phone number, no body, at any level ------------------------------------------------------


async def test_no_key_token_phone_number_or_body_is_logged_at_debug(
    twilio_chat: TwilioChat, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """Sends through Twilio (its token signs the webhooks and authenticates each API call), its status
    callbacks, an inbound text, the agent's reply, a STOP, and Twilio's own 21610: all at debug."""
    logs.configure("DEBUG", json=True)
    caplog.set_level(logging.DEBUG)  # every standard-library logger too: the twilio library, httpx...
    runtime, emulator = twilio_chat.runtime, twilio_chat.emulator
    emulator.unsubscribed.add(OTHER_USER)
    async with httpx.AsyncClient(base_url=runtime.settings.public_url) as client:
        greeting = EXAMPLE | {"agent_number": SENDER}
        assert (await client.post(PATH, json=greeting, headers=POLYAI_HEADERS)).status_code == 202
        await runtime.worker.run_once()
        [sid] = emulator.messages
        assert (await emulator.report(sid, "sent")).status_code == 204
        assert (await emulator.report(sid, "delivered")).status_code == 204
        assert (await emulator.text_in(USER, SENDER, INBOUND_BODY)).status_code == 200
        await twilio_chat.turn()  # the agent answers, through Twilio
        assert (await emulator.text_in(USER, SENDER, "STOP")).status_code == 200
        other = {"message": EXAMPLE_MESSAGE, "user_number": OTHER_USER, "agent_number": SENDER}
        assert (await client.post(PATH, json=other, headers=POLYAI_HEADERS)).status_code == 202
        await twilio_chat.settle()

    captured = capsys.readouterr()
    lines = json_lines(captured.err)
    logged = {line["event"] for line in lines}
    assert {
        "http request",
        "message accepted",
        "dispatch claimed",
        "message handed off",
        "message sent",
        "message delivered",
        "inbound text",
        "conversation jobs leased",
        "agent turn",
        "reply queued",
        "opt-out recorded",
        "message failed",
    } <= logged
    [carrier_opt_out] = [o for o in events(lines, "opt-out recorded") if o["reason"] == "carrier:21610"]
    [failed] = events(lines, "message failed")
    assert (failed["error_code"], failed["error"]) == (21610, "Recipient has unsubscribed (replied STOP)")
    assert failed["message_id"] == carrier_opt_out["message_id"]

    basic_auth = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    everything = "\n".join(
        [captured.out, captured.err, caplog.text, *(str(r.__dict__) for r in caplog.records)]
    )
    assert "Twilio API Request" in everything  # the twilio library's own debug lines were captured
    for secret in (API_KEY, AUTH_TOKEN, basic_auth):
        assert secret not in everything
    # reachout's own lines (the libraries' debug lines, which reachout leaves unconfigured, show SQL rows).
    replies = (f"you said: {INBOUND_BODY}", OPT_OUT_TEXT)
    personal = (USER, OTHER_USER, SENDER, USER[2:], SENDER[2:], EXAMPLE_MESSAGE, INBOUND_BODY, *replies)
    for text in personal:
        assert text not in captured.err and text not in captured.out
