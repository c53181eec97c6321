"""Schemathesis over every operation the OpenAPI document names, against a real server on each backend,
authenticated with a test account through the document's own security schemes: whatever the generated
request, the answer is never a server error, and its status, media type, headers and body are ones the
document declares for that operation (Bland's also in Bland's envelope). Twilio's webhooks are signed as
Twilio signs them, so that their generated forms reach the inbound and status paths."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
import requests
import schemathesis
from twilio.request_validator import RequestValidator

from tests.support import fuzzing
from tests.support.provisioning import (
    API_KEY,
    CONNECTOR,
    POLYAI_HEADERS,
    SENDER,
    USE_CASE,
    use_case_document,
)
from tests.support.twilio_emulator import ACCOUNT_SID, AUTH_TOKEN
from tests.support.webhooks import SECRET

pytestmark = pytest.mark.slow

# The values of the document's security schemes: the account `acme`, its project `clinic`.
CREDENTIALS = {
    "PolyAiAuthToken": {"api_key": API_KEY},
    "PolyAiConnectorId": {"api_key": CONNECTOR},
    "AmigoBearer": {"bearer": API_KEY},
    "BlandApiKey": {"api_key": API_KEY},
    "ReachoutApiKey": {"bearer": API_KEY},
}
BLAND = {"authorization": API_KEY}
AMIGO = {"Authorization": f"Bearer {API_KEY}"}
OPERATIONS = {
    "POST /v1/outbound-sms",
    "POST /v1/sms/",
    "GET /v1/sms/{message_id}",
    "GET /v1/sms/conversations",
    "GET /v1/sms/conversations/{conversation_id}",
    "POST /sandbox/inbound",
    "GET /sandbox/handsets/{number}/messages",
    "POST /v1/webhook/twilio/sms-status",
    "POST /v1/webhook/twilio/sms-inbound",
    "GET /healthz",
    "GET /api/v1/events",
    "GET /api/v1/events/{event_id}",
    "GET /api/v1/events/{event_id}/attempts",
    "POST /api/v1/events/{event_id}/replay",
    "GET /api/v1/webhooks",
    "GET /api/v1/webhooks/{endpoint_id}/attempts",
    "POST /api/v1/webhooks/recover",
    "POST /api/v1/webhooks/{endpoint_id}/enable",
}
# Cases per operation in the fuzzing phase (the examples and coverage phases add their own): enough for the
# whole file to take a minute or two on two cores; the list, with the most parameters, gets the most.
MAX_EXAMPLES = 25
MAX_EXAMPLES_FOR = {"GET /v1/sms/conversations": 60, "GET /healthz": 5}
USERS = ["+14155552000", "+14155552001", "+14155552002"]
PUBLIC_URL = "http://reachout.test"  # the URL Twilio signs (REACHOUT_PUBLIC_URL)
TWILIO = {
    "REACHOUT_PUBLIC_URL": PUBLIC_URL,
    "REACHOUT_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
    "REACHOUT_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
    "REACHOUT_TWILIO_API_BASE_URL": "http://127.0.0.1:9",  # no number sends through Twilio here
}
SIGNATURE = "X-Twilio-Signature"


def provision(base_url: str) -> dict[str, list[str]]:
    """Greetings, replies and use-case sends to look up: the ids and numbers each lookup's cases draw on."""
    message_ids = []
    for user in USERS:
        greeting = {"message": f"Hello {user}", "user_number": user}
        response = httpx.post(f"{base_url}/v1/outbound-sms", json=greeting, headers=POLYAI_HEADERS)
        assert response.status_code == 202, response.text
        reply = {"from": user, "to": SENDER, "body": "Can I move it to 3pm instead?"}
        response = httpx.post(f"{base_url}/sandbox/inbound", json=reply)
        assert response.status_code == 201, response.text
        send = {"use_case_id": USE_CASE, "to_phone_number": user, "message": "Your appointment is at 3pm"}
        response = httpx.post(f"{base_url}/v1/sms/", json=send, headers=AMIGO)
        assert response.status_code == 201, response.text
        message_ids.append(response.json()["id"])
    listed = httpx.get(f"{base_url}/v1/sms/conversations", headers=BLAND).json()["data"]
    events = httpx.get(f"{base_url}/api/v1/events", headers=AMIGO).json()["data"]
    endpoints = httpx.get(f"{base_url}/api/v1/webhooks", headers=AMIGO).json()["data"]
    return {
        "path.conversation_id": [c["id"] for c in listed],
        "path.event_id": [e["id"] for e in events],
        "path.endpoint_id": [e["id"] for e in endpoints],
        "path.message_id": message_ids,
        "path.number": [*USERS, SENDER],
    }


@pytest.fixture
def served_api(
    database_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[schemathesis.BaseSchema]:
    """The served schema, with conversations, messages and handsets to look up."""
    fuzzing.lazy_schema_on_this_pytest(request)
    # No rate limit in the way: each send is a case about shapes, not about pacing.
    # An endpoint for the events (on a loopback address: each attempt is refused, and recorded).
    webhooks = [{"url": "http://127.0.0.1:9/hooks", "secret": SECRET}]
    document = use_case_document(
        project={"rate_limit": {"requests": 1_000_000, "per_seconds": 60}, "webhooks": webhooks}
    )
    with fuzzing.running_server(database_url, tmp_path, document, extra_env=TWILIO) as server:
        schema = fuzzing.served_schema(
            server.base_url,
            credentials=CREDENTIALS,
            max_examples=MAX_EXAMPLES,
            max_examples_for=MAX_EXAMPLES_FOR,
            known=provision(server.base_url),
        )
        assert fuzzing.operations(schema) == OPERATIONS
        yield schema


def bland_envelope(ctx: Any, response: schemathesis.Response, case: schemathesis.Case) -> None:
    """`{"data": ..., "errors": null}`, or `{"data": null, "errors": [{"error", "message"}, ...]}`."""
    if case.method.upper() != case.operation.method.upper():
        return  # a probe with another method (TRACE, say): the router's 405, before any of Bland's routes
    body = response.json()
    assert isinstance(body, dict), f"not a JSON object: {response.text[:200]}"
    if response.status_code < 400:
        assert body.get("errors", "missing") is None and body.get("data") is not None, body
        return
    assert body.get("data", "missing") is None, body
    errors = body.get("errors")
    assert isinstance(errors, list) and errors, body
    for error in errors:
        assert isinstance(error, dict) and {"error", "message"} <= error.keys(), body


def twilio_signature(case: schemathesis.Case) -> dict[str, str]:
    """The signature Twilio would send for the form `case` posts, where the case sends one at all (a case
    without it, or whose body is no form, is refused with a 403, as the document says)."""
    if SIGNATURE not in (case.headers or {}):
        return {}
    kwargs = case.as_transport_kwargs()
    wanted = ("method", "url", "params", "data", "headers")
    prepared = requests.Request(**{k: v for k, v in kwargs.items() if k in wanted}).prepare()
    body = prepared.body if isinstance(prepared.body, str) else (prepared.body or b"").decode("latin-1")
    form = dict(parse_qsl(body, keep_blank_values=True))  # as the server reads it: the last of a repeated key
    url = urlsplit(prepared.url)
    signed = PUBLIC_URL + url.path + (f"?{url.query}" if url.query else "")
    return {SIGNATURE: RequestValidator(AUTH_TOKEN).compute_signature(signed, form)}


# The lazy schema is filtered here, if at all: a filter applied to the fixture's schema would be replaced.
schema = schemathesis.pytest.from_fixture("served_api")


@schema.parametrize()
def test_every_operation_answers_every_generated_request_as_documented(case: schemathesis.Case) -> None:
    tags = case.operation.tags or []
    checks = [bland_envelope] if "Bland" in tags else []
    headers = twilio_signature(case) if "Twilio webhooks" in tags else {}
    fuzzing.call_and_validate(case, additional_checks=checks, headers=headers)
