"""A bug answers in the dialect's shape with `connection: close`, and its log holds no personal data."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import structlog
from sqlalchemy import text

from reachout import logs
from reachout.app import create_app
from reachout.conversations.service import ConversationReader
from reachout.kit.clock import FakeClock
from reachout.kit.http import RequestEdge
from reachout.provisioning import loader
from reachout.provisioning import service as provisioning
from tests.support.processes import free_port
from tests.support.provisioning import API_KEY, SENDER, USER, standard_document
from tests.support.service import Service, in_process, make_settings
from tests.support.twilio_emulator import serving

BODY = "My date of birth is 1984-02-29 and my card ends 4242"
PERSONAL = [USER, USER.removeprefix("+"), "4155551234", "555-1234", BODY, "1984-02-29"]


@pytest.fixture(autouse=True)
def _restore_structlog() -> Iterator[None]:
    yield
    structlog.reset_defaults()


async def make_inserts_fail(service: Service) -> None:
    """Make the database refuse a conversation with USER, as a constraint would: a failing statement whose
    parameters (and, on PostgreSQL, whose DETAIL line) hold the person's number."""
    async with service.runtime.database.write.begin() as session:
        if service.runtime.database.is_sqlite:
            await session.execute(
                text(
                    "CREATE TRIGGER refuse_user BEFORE INSERT ON conversations "
                    f"WHEN NEW.user_number = '{USER}' BEGIN SELECT RAISE(ABORT, 'refused'); END"
                )
            )
        else:
            await session.execute(
                text(f"ALTER TABLE conversations ADD CONSTRAINT refuse_user CHECK (user_number <> '{USER}')")
            )


async def drop_the_failure(service: Service) -> None:
    async with service.runtime.database.write.begin() as session:
        if service.runtime.database.is_sqlite:
            await session.execute(text("DROP TRIGGER refuse_user"))
        else:
            await session.execute(text("ALTER TABLE conversations DROP CONSTRAINT refuse_user"))


async def test_the_log_of_a_failing_statement_holds_no_phone_number_or_body(
    database_url: str, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    async with in_process(make_settings(database_url), clock, standard_document()) as service:
        await make_inserts_fail(service)
        logs.configure("INFO", json=True)
        try:
            response = await service.client.post(
                "/sandbox/inbound", json={"from": USER, "to": SENDER, "body": BODY}
            )
        finally:
            await drop_the_failure(service)
    assert response.status_code == 500
    assert response.json() == {"detail": "Internal server error."}
    assert response.headers["connection"] == "close"
    err = capsys.readouterr().err
    [event] = [json.loads(line) for line in err.splitlines() if "unexpected error" in line]
    assert event["path"] == "/sandbox/inbound" and "Traceback" in event["exception"]
    assert "IntegrityError" in event["exception"] or "OperationalError" in event["exception"]
    for value in PERSONAL:
        assert value not in err


def test_console_logs_of_an_exception_show_no_local_variables(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("INFO", json=False)
    log = logs.get_logger("test")

    def fails(user_number: str, auth_token: str) -> None:
        raise ValueError("it failed")

    number, secret = "+1415" + "5559876", "SECRET_" + "token" * 2  # in no source line a traceback shows
    try:
        fails(number, secret)
    except ValueError:
        log.exception("it failed")
    err = capsys.readouterr().err
    assert "ValueError: it failed" in err and "in fails" in err
    assert number not in err and secret not in err


def test_a_traceback_keeps_its_chain_and_scrubs_what_the_database_echoed() -> None:
    try:
        try:
            raise KeyError("inner")
        except KeyError as error:
            raise RuntimeError(
                'duplicate key value violates unique constraint "pk"\n'
                f"DETAIL:  Key (number)=({USER}) already exists.\n"
                "[parameters: ('x', 'y')]"
            ) from error
    except RuntimeError as error:
        rendered = logs.safe_traceback(error)
    assert (
        rendered.index("KeyError: 'inner'") < rendered.index("direct cause") < rendered.index("RuntimeError")
    )
    assert 'violates unique constraint "pk"' in rendered
    assert USER not in rendered and "DETAIL" not in rendered and "parameters" not in rendered


def test_scrubbing_takes_out_numbers_and_pydantic_inputs() -> None:
    message = (
        "1 validation error\nbody\n"
        "  Input should be x [type=x, input_value='Jane +1 415 555 1234', input_type=str]"
    )
    scrubbed = logs.scrub_message(message)
    assert "Jane" not in scrubbed and "555" not in scrubbed
    assert logs.scrub_message(f"no route to {USER} today") == "no route to [redacted number] today"


async def test_a_bland_endpoint_answers_a_bug_in_blands_envelope(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_: Any) -> Any:
        raise RuntimeError(f"the reader broke reading {USER}")

    monkeypatch.setattr(ConversationReader, "page", broken)
    response = await service.client.get("/v1/sms/conversations", headers={"authorization": API_KEY})
    assert response.status_code == 500
    assert response.json() == {
        "data": None,
        "errors": [{"error": "INTERNAL_ERROR", "message": "Internal server error."}],
    }
    assert response.headers["connection"] == "close"


async def test_after_a_500_the_clients_next_request_on_the_connection_is_answered(
    database_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = 0

    async def broken_once(self: ConversationReader, *args: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("a bug")
        return await original(self, *args)

    original = ConversationReader.page
    monkeypatch.setattr(ConversationReader, "page", broken_once)
    port = free_port()
    app = create_app(make_settings(database_url), clock=clock, run_worker=False)
    async with serving(app, port):
        async with app.state.runtime.database.write.begin() as session:
            await provisioning.apply(session, loader.parse(standard_document(), "test"), clock.now())
        headers = {"authorization": API_KEY}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(3):  # warm a keep-alive connection
                assert (await client.get("/healthz")).status_code == 200
            failed = await client.get("/v1/sms/conversations", headers=headers)
            assert (failed.status_code, failed.headers["connection"]) == (500, "close")
            answered = await client.get("/v1/sms/conversations", headers=headers)
            assert answered.status_code == 200
            assert answered.json()["errors"] is None


async def test_a_client_that_leaves_mid_body_is_no_error(
    database_url: str, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    """Anyone can open a request and go away: that is logged as it is, not as a bug to alert on."""
    port = free_port()
    app = create_app(make_settings(database_url), clock=clock, run_worker=False)
    async with serving(app, port):
        async with app.state.runtime.database.write.begin() as session:
            await provisioning.apply(session, loader.parse(standard_document(), "test"), clock.now())
        logs.configure("INFO", json=True)
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"POST /v1/outbound-sms HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            + f"X-PolyAi-Auth-Token: {API_KEY}\r\nX-TOKEN-ID: conn_clinic\r\n".encode()
            + b'Content-Length: 1000\r\n\r\n{"message"'
        )
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        for _ in range(100):
            if "client went away" in capsys.readouterr().err:
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the disconnect was not logged")
    err = capsys.readouterr().err
    assert "unexpected error" not in err and '"level": "error"' not in err


async def test_a_failure_after_the_response_began_sends_nothing_more(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Half a response is out: no second one is started on top of it (the server then closes), and the
    failure is still logged as a bug."""
    logs.configure("INFO", json=True)

    async def streams_then_fails(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        raise RuntimeError("a bug mid-stream")

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {"type": "http", "method": "GET", "path": "/stream", "headers": []}
    await RequestEdge(streams_then_fails)(scope, receive, send)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[0]["status"] == 200
    [event] = [json.loads(line) for line in capsys.readouterr().err.splitlines() if "unexpected" in line]
    assert event["path"] == "/stream" and "a bug mid-stream" in event["exception"]
