"""Secrets are never logged: credential-named fields are redacted, and no request leaks an API key."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from hypothesis import example, given
from hypothesis import strategies as st

from reachout import logs
from reachout.delivery.status import MessageStatus
from tests.support.provisioning import API_KEY, CONNECTOR, USER
from tests.support.service import Service
from tests.support.streams import log_to_a_closed_stream

SECRETS = {
    "api_key": "rk_live_SECRET_api_key_111",
    "auth_token": "SECRET_auth_token_222",
    "authorization": "Bearer SECRET_bearer_333",
    "password": "SECRET_password_444",
    "webhook_secret": "whsec_SECRET_555",
    "X-PolyAi-Auth-Token": "SECRET_polyai_666",
}


@pytest.fixture(autouse=True)
def _restore_structlog() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_credential_fields_are_redacted_and_the_rest_is_kept(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("DEBUG", json=True)
    log = logs.get_logger("test")

    log.info(
        "calling the carrier",
        api_key=SECRETS["api_key"],
        auth_token=SECRETS["auth_token"],
        headers={
            "authorization": SECRETS["authorization"],
            "X-PolyAi-Auth-Token": SECRETS["X-PolyAi-Auth-Token"],
            "content-type": "application/json",
            "nested": {"password": SECRETS["password"], "attempt": 2},
        },
        webhook={"url": "https://example.test/hooks", "webhook_secret": SECRETS["webhook_secret"]},
        user_number=USER,
        count=3,
    )

    out = capsys.readouterr()
    for secret in SECRETS.values():
        assert secret not in out.err and secret not in out.out
    [event] = json_lines(out.err)
    assert event["event"] == "calling the carrier"
    assert (event["component"], event["level"], event["user_number"], event["count"]) == (
        "test",
        "info",
        USER,
        3,
    )
    assert event["api_key"] == event["auth_token"] == logs.REDACTED
    assert event["headers"]["authorization"] == event["headers"]["X-PolyAi-Auth-Token"] == logs.REDACTED
    assert event["headers"]["content-type"] == "application/json"
    assert event["headers"]["nested"] == {"password": logs.REDACTED, "attempt": 2}
    assert event["webhook"] == {"url": "https://example.test/hooks", "webhook_secret": logs.REDACTED}


def test_console_rendering_redacts_too(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("INFO", json=False)
    logs.get_logger("test").warning("key rejected", api_key=SECRETS["api_key"], account="acme")
    err = capsys.readouterr().err
    assert SECRETS["api_key"] not in err
    assert "key rejected" in err and "acme" in err and logs.REDACTED in err


def test_the_event_text_itself_is_kept(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("INFO", json=True)
    logs.get_logger("test").info("authorization checked", account="acme")
    [event] = json_lines(capsys.readouterr().err)
    assert event["event"] == "authorization checked"  # "event" is never mistaken for a credential field
    assert event["account"] == "acme"


def test_secrets_inside_lists_are_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("INFO", json=True)
    logs.get_logger("test").info(
        "carriers configured", carriers=[{"name": "twilio", "auth_token": SECRETS["auth_token"]}]
    )
    err = capsys.readouterr().err
    assert SECRETS["auth_token"] not in err


def test_a_mapping_with_non_string_keys_can_be_logged(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("INFO", json=True)
    logs.get_logger("test").info("dispatch summary", by_status={200: 5, 429: 1}, auth={"token": "tok_x"})
    [event] = json_lines(capsys.readouterr().err)
    assert event["by_status"] == {"200": 5, "429": 1}
    assert "tok_x" not in json.dumps(event)


async def test_no_request_logs_an_api_key(
    service: Service, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    logs.configure("DEBUG", json=True)
    caplog.set_level(logging.DEBUG)  # every standard-library logger too: httpx, aiosqlite, asyncio...
    caplog.set_level(
        logging.DEBUG, logger="sqlalchemy.engine"
    )  # ...and every SQL statement, parameter and row
    wrong_key = "rk_test_wrong_key_987654"
    body = {"message": "Hi Jane, see you at 2pm.", "user_number": USER}

    refused = await service.client.post(
        "/v1/outbound-sms", json=body, headers={"X-PolyAi-Auth-Token": wrong_key, "X-TOKEN-ID": CONNECTOR}
    )
    accepted = await service.client.post(
        "/v1/outbound-sms", json=body, headers={"X-PolyAi-Auth-Token": API_KEY, "X-TOKEN-ID": CONNECTOR}
    )
    await service.settle()  # dispatch, sent, delivered: the worker's logs too

    assert (refused.status_code, accepted.status_code) == (401, 202)
    captured = capsys.readouterr()
    everything = "\n".join(
        [captured.out, captured.err, caplog.text, *(str(r.__dict__) for r in caplog.records)]
    )
    # The capture is live: httpx logs each request, SQLAlchemy each statement (the key lookup included).
    assert "outbound-sms" in everything and "api_keys" in everything
    for key in (wrong_key, API_KEY):
        assert key not in everything


RENDERED_BY_POSITION = ("event", "level", "timestamp", "exception")


@given(
    st.dictionaries(
        st.from_regex(r"[a-z_]{1,12}", fullmatch=True).filter(
            lambda k: k not in ("event", "level", "timestamp")
        ),
        st.one_of(
            st.text(max_size=20),
            st.integers(),
            st.none(),
            st.floats(allow_nan=False),
            st.sampled_from(list(MessageStatus)),  # the str enums most lines carry
        ),
        max_size=6,
    ),
    st.sampled_from(["info", "warning", "debug"]),
    st.text(min_size=1, max_size=40),
)
@example(fields={}, level="info", message="  ")  # ConsoleRenderer ends a line without its trailing spaces
def test_console_lines_look_as_structlogs_console_renderer_makes_them(
    fields: dict[str, object], level: str, message: str
) -> None:
    event = {"timestamp": "2026-12-03T09:00:00.000000Z", "level": level, "event": message, **fields}
    expected = structlog.dev.ConsoleRenderer(colors=False, sort_keys=False)(None, level, dict(event))
    assert logs.render_console(None, level, dict(event)) == expected


def test_a_line_the_stream_refuses_is_dropped_not_raised(tmp_path: Path) -> None:
    """A closed or full stderr costs its lines, never the request or the transaction that wrote them."""
    log_to_a_closed_stream(tmp_path)
    log = logs.get_logger("test")
    log.info("one line")
    with logs.batch():
        log.info("a batch's line")
