"""Where the Twilio account comes from: REACHOUT_TWILIO_* settings first, else the provisioning file's
`carriers: twilio`; the carrier sends and the webhooks validate with that one token, which is never shown."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
import yaml
from twilio.request_validator import RequestValidator

from reachout import logs
from reachout.app import Runtime, create_app
from reachout.carriers.twilio.carrier import INBOUND_PATH
from reachout.config import Settings
from reachout.kit.clock import FakeClock
from reachout.provisioning import loader
from tests.support.polyai import EXAMPLE
from tests.support.processes import free_port
from tests.support.provisioning import POLYAI_HEADERS, SENDER, USER, standard_document
from tests.support.service import make_settings
from tests.support.twilio_emulator import ACCOUNT_SID, AUTH_TOKEN, TwilioEmulator, running_emulator, serving

FILE_TOKEN = "file_token_of_another_account_42"
UNREACHABLE = "http://127.0.0.1:9"  # nothing listens there: a send through it would not reach the emulator


@dataclass
class Served:
    runtime: Runtime
    client: httpx.AsyncClient
    emulator: TwilioEmulator

    async def greet_and_dispatch(self) -> str:
        """A PolyAI greeting on a Twilio number, handed to the carrier; the sid the emulator gave it."""
        body = EXAMPLE | {"agent_number": SENDER}
        assert (
            await self.client.post("/v1/outbound-sms", json=body, headers=POLYAI_HEADERS)
        ).status_code == 202
        await self.runtime.worker.run_once()
        [sid] = self.emulator.messages
        return sid


def config_file(tmp_path: Path, twilio: dict[str, Any] | None) -> Path:
    document = standard_document()
    for number in document["accounts"][0]["projects"][0]["numbers"]:
        number["carrier"] = "twilio"
    if twilio is not None:
        document["carriers"] = {"twilio": twilio}
    path = tmp_path / "reachout.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


@pytest.fixture
async def emulator() -> AsyncIterator[TwilioEmulator]:
    async with running_emulator() as running:
        yield running


@asynccontextmanager
async def served(
    settings: Settings, clock: FakeClock, emulator: TwilioEmulator, port: int
) -> AsyncIterator[Served]:
    app = create_app(settings, clock=clock, run_worker=False)
    async with serving(app, port):  # the lifespan applies the provisioning file
        emulator.inbound_url = settings.public_url + INBOUND_PATH
        async with httpx.AsyncClient(base_url=settings.public_url) as client:
            yield Served(app.state.runtime, client, emulator)


async def test_the_files_credentials_configure_the_carrier_and_the_webhooks(
    database_url: str, clock: FakeClock, emulator: TwilioEmulator, tmp_path: Path
) -> None:
    port = free_port()
    path = config_file(
        tmp_path, {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "api_base_url": emulator.base_url}
    )
    settings = make_settings(database_url, config=path, public_url=f"http://127.0.0.1:{port}")
    assert settings.twilio_account_sid is None and settings.twilio_auth_token is None
    async with served(settings, clock, emulator, port) as live:
        assert live.runtime.carrier("twilio") is not None
        sid = await live.greet_and_dispatch()  # the emulator took the file's account sid and token
        assert (await emulator.report(sid, "delivered")).status_code == 204  # signed with that token
        assert (await emulator.text_in(USER, SENDER, "thanks")).status_code == 200
        assert (await emulator.text_in(USER, SENDER, "forged", signature="Zm9yZ2Vk")).status_code == 403


async def test_settings_take_precedence_over_the_file(
    database_url: str, clock: FakeClock, emulator: TwilioEmulator, tmp_path: Path
) -> None:
    port = free_port()
    path = config_file(
        tmp_path, {"account_sid": "AC" + "f" * 32, "auth_token": FILE_TOKEN, "api_base_url": UNREACHABLE}
    )
    settings = make_settings(
        database_url,
        config=path,
        public_url=f"http://127.0.0.1:{port}",
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_api_base_url=emulator.base_url,
    )
    async with served(settings, clock, emulator, port) as live:
        sid = await live.greet_and_dispatch()
        assert (await emulator.report(sid, "sent")).status_code == 204
        form = {"MessageSid": "SM" + "b" * 32, "From": USER, "To": SENDER, "Body": "hi"}
        url = settings.public_url + INBOUND_PATH
        signed_by_file = RequestValidator(FILE_TOKEN).compute_signature(url, form)
        response = await live.client.post(
            INBOUND_PATH, data=form, headers={"X-Twilio-Signature": signed_by_file}
        )
        assert response.status_code == 403


async def test_the_files_api_base_url_gives_way_to_the_settings(
    database_url: str, clock: FakeClock, emulator: TwilioEmulator, tmp_path: Path
) -> None:
    port = free_port()
    path = config_file(
        tmp_path, {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "api_base_url": UNREACHABLE}
    )
    settings = make_settings(
        database_url,
        config=path,
        public_url=f"http://127.0.0.1:{port}",
        twilio_api_base_url=emulator.base_url,
    )
    async with served(settings, clock, emulator, port) as live:
        await live.greet_and_dispatch()


async def test_without_an_account_anywhere_there_is_no_twilio(
    database_url: str, clock: FakeClock, emulator: TwilioEmulator, tmp_path: Path
) -> None:
    port = free_port()
    settings = make_settings(
        database_url, config=config_file(tmp_path, None), public_url=f"http://127.0.0.1:{port}"
    )
    async with served(settings, clock, emulator, port) as live:
        assert live.runtime.carrier("twilio") is None
        assert (await emulator.text_in(USER, SENDER, "hello")).status_code == 404


@pytest.fixture
def _restore_structlog() -> Iterator[None]:
    yield
    structlog.reset_defaults()


@pytest.mark.usefixtures("_restore_structlog")
async def test_the_auth_token_never_reaches_a_log_line_or_a_repr(
    database_url: str,
    clock: FakeClock,
    emulator: TwilioEmulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    logs.configure("DEBUG", json=True)
    caplog.set_level(logging.DEBUG)  # the twilio library logs each request it makes
    port = free_port()
    path = config_file(
        tmp_path, {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "api_base_url": emulator.base_url}
    )
    settings = make_settings(database_url, config=path, public_url=f"http://127.0.0.1:{port}")
    async with served(settings, clock, emulator, port) as live:
        assert live.runtime.carrier("twilio") is not None
        sid = await live.greet_and_dispatch()
        await emulator.report(sid, "delivered")
        await emulator.text_in(USER, SENDER, "forged", signature="Zm9yZ2Vk")  # logged as refused
        shown = [
            repr(getattr(live.runtime.carrier("twilio"), "settings", None)),
            repr(settings),
            repr(loader.load(path)),
        ]
        shown.append(str(loader.load(path).carriers.twilio))
    out = capsys.readouterr()
    assert "Twilio carrier configured" in out.err and "refused" in out.err  # the lines were captured
    assert any("Twilio API Request" in record.getMessage() for record in caplog.records)
    for text in [out.out, out.err, caplog.text, *shown]:
        assert AUTH_TOKEN not in text
