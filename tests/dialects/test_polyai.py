"""The PolyAI dialect, `POST /v1/outbound-sms`: every row of the reference page's response table.

Each refusal is checked three ways: its status, its body (exactly `{"detail": "<readable sentence>"}`),
and that nothing was written — no message, no conversation.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from reachout.app import create_app
from reachout.conversations.models import Conversation
from reachout.dialects.polyai import STATUS_FOR
from reachout.errors import ErrorCode
from reachout.kit.clock import FakeClock
from reachout.provisioning import loader
from reachout.provisioning import service as provisioning
from tests.support.polyai import EXAMPLE, EXAMPLE_MESSAGE, PATH, counts
from tests.support.provisioning import (
    API_KEY,
    CONNECTOR,
    EMPTY_CONNECTOR,
    OTHER_API_KEY,
    OTHER_CONNECTOR,
    POLYAI_HEADERS,
    PRE_RELEASE_SENDER,
    SECOND_SENDER,
    SENDER,
    USER,
    standard_document,
)
from tests.support.service import Service, make_settings, messages

ANOTHER_PROJECTS_NUMBER = "+14155550150"  # provisioned to account "other"
UNPROVISIONED_NUMBER = "+14155550177"
MAX_BODY = 1600

_UNSET = object()


async def post(
    service: Service,
    body: Any = _UNSET,
    *,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
    drop: tuple[str, ...] = (),
) -> httpx.Response:
    """POST to the endpoint with the standard headers, changed by `headers` and without those in `drop`."""
    sent = {**POLYAI_HEADERS, **(headers or {})}
    for name in drop:
        sent.pop(name, None)
    content = raw if raw is not None else json.dumps(EXAMPLE if body is _UNSET else body).encode()
    return await service.client.post(PATH, content=content, headers=sent)


def assert_detail(response: httpx.Response, status: int, *words: str) -> str:
    """The response is `status` with a body that is exactly {"detail": str} naming every one of `words`."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"detail"}, body
    detail = body["detail"]
    assert isinstance(detail, str) and len(detail) >= 10, detail
    # Human-readable: a sentence, not a dumped validation structure or a traceback.
    assert not detail.lstrip().startswith(("{", "[")) and "Traceback" not in detail, detail
    for word in words:
        assert word.lower() in detail.lower(), f"{word!r} not in {detail!r}"
    return detail


async def assert_nothing_written(service: Service) -> None:
    assert await counts(service) == (0, 0)


# Refusals share one app per backend (`quiet_service`, from tests.support.polyai).


# --- 202 ----------------------------------------------------------------------------------------------------


class TestAccepted:
    async def test_reference_example_is_accepted_with_an_empty_body(self, service: Service) -> None:
        response = await post(service, EXAMPLE)

        assert response.status_code == 202
        assert response.content == b""
        [message] = await messages(service)
        assert (message.direction, message.status, message.channel) == ("outbound", "queued", "sms")
        assert message.to_number == USER and message.body == EXAMPLE_MESSAGE
        # No agent_number: one of the project's numbers for the connector's (live) environment is picked.
        assert message.from_number in {SENDER, SECOND_SENDER}
        assert message.from_number != PRE_RELEASE_SENDER
        async with service.runtime.database.read() as session:
            [conversation] = (await session.execute(select(Conversation))).scalars().all()
        assert conversation.id == message.conversation_id and conversation.id.startswith("convo_")
        assert (conversation.status, conversation.user_number) == ("open", USER)
        assert conversation.agent_number == message.from_number

    async def test_agent_number_chooses_the_sender(self, service: Service) -> None:
        response = await post(service, EXAMPLE | {"agent_number": SECOND_SENDER})
        assert (response.status_code, response.content) == (202, b"")
        [message] = await messages(service)
        assert message.from_number == SECOND_SENDER

    async def test_null_agent_number_is_the_same_as_none(self, service: Service) -> None:
        response = await post(service, EXAMPLE | {"agent_number": None})
        assert (response.status_code, response.content) == (202, b"")

    async def test_unknown_body_fields_are_ignored(self, service: Service) -> None:
        response = await post(service, EXAMPLE | {"priority": "high", "metadata": {"a": 1}, "agent": None})
        assert (response.status_code, response.content) == (202, b"")
        [message] = await messages(service)
        assert message.body == EXAMPLE_MESSAGE

    async def test_a_message_of_exactly_1600_characters_is_accepted(self, service: Service) -> None:
        body = "x" * MAX_BODY
        response = await post(service, EXAMPLE | {"message": body})
        assert (response.status_code, response.content) == (202, b"")
        [message] = await messages(service)
        assert message.body == body

    @pytest.mark.parametrize(
        "content_type",
        ["application/json; charset=utf-8", "Application/JSON", "application/json ; charset=UTF-8"],
        ids=["charset", "upper-case", "spaced-parameter"],
    )
    async def test_json_content_type_with_parameters_is_accepted(
        self, service: Service, content_type: str
    ) -> None:
        response = await post(service, headers={"Content-Type": content_type})
        assert (response.status_code, response.content) == (202, b"")


# --- 400 ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bad:
    """One bad request: a JSON body (or raw bytes), header changes, and words its detail must contain."""

    words: tuple[str, ...]
    body: Any = _UNSET
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    drop: tuple[str, ...] = ()


def user_number(value: Any) -> dict[str, Any]:
    return EXAMPLE | {"user_number": value}


def message(value: Any) -> dict[str, Any]:
    return EXAMPLE | {"message": value}


def agent_number(value: Any) -> dict[str, Any]:
    return EXAMPLE | {"agent_number": value}


BAD_REQUESTS: dict[str, Bad] = {
    # missing fields
    "missing-user_number": Bad(("user_number", "required"), {"message": EXAMPLE_MESSAGE}),
    "missing-message": Bad(("message", "required"), {"user_number": USER}),
    "empty-object": Bad(("message", "user_number", "required"), {}),
    # bad E.164
    "user_number-no-plus": Bad(("user_number", "4155551234", "E.164"), user_number("4155551234")),
    "user_number-too-short": Bad(("user_number", "+1415", "not a valid phone number"), user_number("+1415")),
    "user_number-with-spaces": Bad(
        ("user_number", "+1 415 555 1234", "E.164"), user_number("+1 415 555 1234")
    ),
    "user_number-words": Bad(("user_number", "hello", "E.164"), user_number("hello")),
    "user_number-empty": Bad(("user_number", "E.164"), user_number("")),
    "user_number-no-such-number": Bad(
        ("user_number", "+10000000000", "not a valid"), user_number("+10000000000")
    ),
    "agent_number-no-plus": Bad(("agent_number", "4155550100", "E.164"), agent_number("4155550100")),
    # agent_number not provisioned for the project
    "agent_number-not-provisioned": Bad(
        ("agent_number", UNPROVISIONED_NUMBER, "not", "provisioned"), agent_number(UNPROVISIONED_NUMBER)
    ),
    "agent_number-of-another-project": Bad(
        ("agent_number", ANOTHER_PROJECTS_NUMBER, "not", "provisioned"), agent_number(ANOTHER_PROJECTS_NUMBER)
    ),
    # not JSON
    "content-type-text": Bad(("Content-Type", "application/json"), headers={"Content-Type": "text/plain"}),
    "content-type-form": Bad(
        ("Content-Type", "application/json"), headers={"Content-Type": "application/x-www-form-urlencoded"}
    ),
    "content-type-missing": Bad(("Content-Type", "application/json"), drop=("Content-Type",)),
    "content-type-json-lookalike": Bad(
        ("Content-Type", "application/json"), headers={"Content-Type": "application/jsonp"}
    ),
    "malformed-json": Bad(("not valid JSON",), raw=b'{"message": "hi", "user_number": '),
    "empty-body": Bad(("not valid JSON",), raw=b""),
    "invalid-utf8": Bad(("not valid JSON",), raw=b'{"message": "\xff\xfe", "user_number": "+14155551234"}'),
    "lone-surrogate": Bad(("not valid JSON",), raw=b'{"message": "\\ud800", "user_number": "+14155551234"}'),
    "json-array": Bad(("JSON object",), [EXAMPLE]),
    "json-string": Bad(("JSON object",), "hello"),
    "json-null": Bad(("JSON object",), None),
    "json-number": Bad(("JSON object",), 42),
    # wrong types
    "user_number-as-number": Bad(("user_number", "string"), user_number(14155551234)),
    "message-as-list": Bad(("message", "string"), message(["Hi", "Jane"])),
    "message-as-object": Bad(("message", "string"), message({"text": "Hi Jane"})),
    "message-as-bool": Bad(("message", "string"), message(True)),
    "message-as-null": Bad(("message", "string"), message(None)),
    "message-as-number": Bad(("message", "string"), message(42)),
    "agent_number-as-number": Bad(("agent_number", "string"), agent_number(14155550100)),
    # the message itself
    "message-2000-chars": Bad(("message", "2000", "1600"), message("x" * 2000)),
    "message-1601-chars": Bad(("message", "1601", "1600"), message("x" * (MAX_BODY + 1))),
    "message-empty": Bad(("message", "empty"), message("")),
    "message-whitespace": Bad(("message", "empty"), message("  \n\t ")),
    # the connector header
    "missing-X-TOKEN-ID": Bad(("X-TOKEN-ID",), drop=("X-TOKEN-ID",)),
    "empty-X-TOKEN-ID": Bad(("X-TOKEN-ID",), headers={"X-TOKEN-ID": ""}),
}


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("case", BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
async def test_bad_request_is_400_with_a_specific_detail_and_writes_nothing(
    quiet_service: Service, case: Bad
) -> None:
    response = await post(quiet_service, case.body, raw=case.raw, headers=case.headers, drop=case.drop)
    assert_detail(response, 400, *case.words)
    await assert_nothing_written(quiet_service)


async def test_1600_is_accepted_and_1601_refused(service: Service) -> None:
    assert (await post(service, message("é" * MAX_BODY))).status_code == 202
    assert_detail(await post(service, message("é" * (MAX_BODY + 1))), 400, "1601", "1600")
    assert await counts(service) == (1, 1)


async def test_a_nul_character_in_the_message_is_a_400(service: Service) -> None:
    try:
        response = await post(service, message("Hi\x00Jane"))
    except Exception as error:  # the app crashed: ASGITransport re-raises what a real server turns into a 500
        pytest.fail(f"the request crashed the app instead of being refused: {error!r}")
    assert_detail(response, 400, "message")
    await assert_nothing_written(service)


# --- 401, 403, 404 ------------------------------------------------------------------------------------------

REFUSED_CALLERS: dict[str, tuple[int, Bad]] = {
    "401-missing-key": (401, Bad(("missing", "API key"), drop=("X-PolyAi-Auth-Token",))),
    "401-empty-key": (401, Bad(("missing", "API key"), headers={"X-PolyAi-Auth-Token": ""})),
    "401-wrong-key": (401, Bad(("invalid", "API key"), headers={"X-PolyAi-Auth-Token": "rk_wrong_000000"})),
    "401-key-differs-in-case": (
        401,
        Bad(("invalid", "API key"), headers={"X-PolyAi-Auth-Token": API_KEY.upper()}),
    ),
    "401-before-malformed-json": (
        401,
        Bad(("invalid", "API key"), raw=b"{not json", headers={"X-PolyAi-Auth-Token": "rk_wrong_000000"}),
    ),
    "401-before-missing-fields": (401, Bad(("missing", "API key"), {}, drop=("X-PolyAi-Auth-Token",))),
    "401-before-bad-content-type": (
        401,
        Bad(("missing", "API key"), drop=("X-PolyAi-Auth-Token", "Content-Type")),
    ),
    "401-before-missing-X-TOKEN-ID": (
        401,
        Bad(("missing", "API key"), drop=("X-PolyAi-Auth-Token", "X-TOKEN-ID")),
    ),
    "401-before-unknown-connector": (
        401,
        Bad(
            ("invalid", "API key"),
            headers={"X-PolyAi-Auth-Token": "rk_wrong_000000", "X-TOKEN-ID": "conn_nope"},
        ),
    ),
    "403-other-accounts-key": (
        403,
        Bad(("account", "connector"), headers={"X-PolyAi-Auth-Token": OTHER_API_KEY}),
    ),
    "403-other-accounts-connector": (
        403,
        Bad(("account", "connector"), headers={"X-TOKEN-ID": OTHER_CONNECTOR}),
    ),
    "403-before-bad-body": (
        403,
        Bad(("account", "connector"), raw=b"[]", headers={"X-PolyAi-Auth-Token": OTHER_API_KEY}),
    ),
    "404-unknown-connector": (
        404,
        Bad(("connector", "conn_nope", "not found"), headers={"X-TOKEN-ID": "conn_nope"}),
    ),
    "404-project-without-numbers": (
        404,
        Bad(("no", "numbers", "provisioned"), headers={"X-TOKEN-ID": EMPTY_CONNECTOR}),
    ),
    "404-project-without-numbers-even-with-agent_number": (
        404,
        Bad(("no", "numbers", "provisioned"), agent_number(SENDER), headers={"X-TOKEN-ID": EMPTY_CONNECTOR}),
    ),
}


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(("status", "case"), REFUSED_CALLERS.values(), ids=REFUSED_CALLERS.keys())
async def test_refused_caller_gets_a_detail_and_nothing_is_written(
    quiet_service: Service, status: int, case: Bad
) -> None:
    response = await post(quiet_service, case.body, raw=case.raw, headers=case.headers, drop=case.drop)
    assert_detail(response, status, *case.words)
    await assert_nothing_written(quiet_service)


# --- 429 ----------------------------------------------------------------------------------------------------


async def test_rate_limit_is_429_with_retry_after_until_the_emission_interval_passes(
    service: Service,
) -> None:
    await service.provision(standard_document(rate_limit=3))  # 3 per 60 s: one every 20 s, bursts of 3
    for n in range(3):
        response = await post(service, user_number(f"+1415555{1400 + n}"))
        assert (response.status_code, response.content) == (202, b"")

    refused = await post(service, user_number("+14155551410"))
    assert_detail(refused, 429, "rate limit")
    retry_after = refused.headers["Retry-After"]
    assert retry_after.isdigit() and 0 < int(retry_after) <= 20
    assert await counts(service) == (3, 3)  # the refused one wrote nothing

    service.clock.advance(19)
    assert (await post(service, user_number("+14155551411"))).status_code == 429
    service.clock.advance(1)  # 20 s after the burst: one emission interval
    response = await post(service, user_number("+14155551412"))
    assert (response.status_code, response.content) == (202, b"")
    assert (await post(service, user_number("+14155551413"))).status_code == 429
    assert await counts(service) == (4, 4)


async def test_rate_limit_is_per_project(service: Service) -> None:
    document = standard_document(rate_limit=1)
    await service.provision(document)
    assert (await post(service)).status_code == 202
    assert (await post(service)).status_code == 429
    other = await post(
        service,
        user_number("+14155551420"),
        headers={"X-PolyAi-Auth-Token": OTHER_API_KEY, "X-TOKEN-ID": OTHER_CONNECTOR},
    )
    assert (other.status_code, other.content) == (202, b"")


async def test_refused_requests_do_not_spend_the_rate_limit(service: Service) -> None:
    await service.provision(standard_document(rate_limit=1))
    for _ in range(3):
        assert (await post(service, user_number("hello"))).status_code == 400
    assert (await post(service)).status_code == 202


# --- 413 ----------------------------------------------------------------------------------------------------

TEN_MB = 10 * 1024 * 1024


def ten_megabytes_of_json() -> bytes:
    return json.dumps({"message": "x" * TEN_MB, "user_number": USER}).encode()


@pytest.mark.asyncio(loop_scope="module")
async def test_10mb_body_with_content_length_is_413(quiet_service: Service) -> None:
    service = quiet_service
    response = await post(service, raw=ten_megabytes_of_json())
    assert_detail(response, 413, "larger than")
    await assert_nothing_written(service)


@pytest.mark.asyncio(loop_scope="module")
async def test_10mb_body_sent_chunked_is_413(quiet_service: Service) -> None:
    service = quiet_service
    payload = ten_megabytes_of_json()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(payload), 64 * 1024):
            yield payload[start : start + 64 * 1024]

    request = service.client.build_request("POST", PATH, content=chunks(), headers=POLYAI_HEADERS)
    assert "content-length" not in request.headers
    assert request.headers["transfer-encoding"] == "chunked"
    response = await service.client.send(request)
    assert_detail(response, 413, "larger than")
    await assert_nothing_written(service)


async def test_a_small_body_sent_chunked_is_accepted(service: Service) -> None:
    payload = json.dumps(EXAMPLE).encode()

    async def chunks() -> AsyncIterator[bytes]:
        yield payload[:10]
        yield payload[10:]

    response = await service.client.post(PATH, content=chunks(), headers=POLYAI_HEADERS)
    assert (response.status_code, response.content) == (202, b"")
    assert await counts(service) == (1, 1)


@pytest.mark.asyncio(loop_scope="module")
async def test_413_comes_before_authentication(quiet_service: Service) -> None:
    service = quiet_service
    response = await post(service, raw=ten_megabytes_of_json(), drop=("X-PolyAi-Auth-Token",))
    assert_detail(response, 413, "larger than")


# --- 500 ----------------------------------------------------------------------------------------------------


async def test_unexpected_error_is_500_with_a_detail(
    database_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(make_settings(database_url), clock=clock, run_worker=False)
    async with app.router.lifespan_context(app):
        runtime = app.state.runtime
        async with runtime.database.write.begin() as session:
            await provisioning.apply(session, loader.parse(standard_document(), "test"), clock.now())

        async def broken(_: Any) -> Any:
            raise RuntimeError("database on fire")

        monkeypatch.setattr(runtime.first_messages, "submit", broken)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://reachout.test") as client:
            response = await client.post(PATH, json=EXAMPLE, headers=POLYAI_HEADERS)
    assert response.status_code == 500
    detail = assert_detail(response, 500)
    assert "database on fire" not in detail  # internals are not leaked


# --- the mapping --------------------------------------------------------------------------------------------


def test_every_error_code_has_a_polyai_status() -> None:
    assert set(STATUS_FOR) == set(ErrorCode)
    assert {STATUS_FOR[code] for code in set(ErrorCode) - {ErrorCode.INTERNAL_ERROR}} <= {
        400,
        401,
        403,
        404,
        429,
    }
    assert STATUS_FOR[ErrorCode.INTERNAL_ERROR] == 500


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (ErrorCode.UNAUTHENTICATED, 401),
        (ErrorCode.FORBIDDEN, 403),
        (ErrorCode.CONNECTOR_NOT_FOUND, 404),
        (ErrorCode.NO_NUMBERS_PROVISIONED, 404),
        (ErrorCode.INVALID_REQUEST, 400),
        (ErrorCode.INVALID_PHONE_NUMBER, 400),
        (ErrorCode.MESSAGE_TOO_LONG, 400),
        (ErrorCode.SENDER_NOT_PROVISIONED, 400),
        (ErrorCode.RATE_LIMITED, 429),
    ],
    ids=lambda value: str(value),
)
def test_status_follows_the_reference_table(code: ErrorCode, status: int) -> None:
    assert STATUS_FOR[code] == status


@pytest.mark.parametrize(
    "auth",
    [{"authorization": API_KEY}, {"Authorization": f"Bearer {API_KEY}"}],
    ids=["authorization", "bearer"],
)
async def test_every_dialects_key_header_is_accepted(service: Service, auth: dict[str, str]) -> None:
    response = await service.client.post(
        "/v1/outbound-sms",
        headers={"X-TOKEN-ID": CONNECTOR, **auth},
        json={"message": "Hello", "user_number": USER},
    )
    assert response.status_code == 202
