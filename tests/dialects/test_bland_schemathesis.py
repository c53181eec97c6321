"""Schemathesis over Bland's two reads, against a real server on each backend: whatever the generated
`page`, `pageSize`, `sortBy`, `sortDir`, `filters` or conversation id, the answer is never a server error,
is one the OpenAPI document declares, and is JSON in Bland's envelope."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis

from tests.support import fuzzing
from tests.support.provisioning import API_KEY, POLYAI_HEADERS

pytestmark = pytest.mark.slow

BLAND = {"authorization": API_KEY}
BLAND_OPERATIONS = {"GET /v1/sms/conversations", "GET /v1/sms/conversations/{conversation_id}"}
USERS = ["+14155552000", "+14155552001", "+14155552002"]


@pytest.fixture
def bland_api(
    database_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[schemathesis.BaseSchema]:
    """The served schema, with a few conversations to list and their ids to look up."""
    fuzzing.lazy_schema_on_this_pytest(request)
    with fuzzing.running_server(database_url, tmp_path) as server:
        for user in USERS:
            greeting = {"message": f"Hello {user}", "user_number": user}
            response = httpx.post(f"{server.base_url}/v1/outbound-sms", json=greeting, headers=POLYAI_HEADERS)
            assert response.status_code == 202, response.text
        listed = httpx.get(f"{server.base_url}/v1/sms/conversations", headers=BLAND).json()["data"]
        known = {"path.conversation_id": [c["id"] for c in listed]}
        schema = fuzzing.served_schema(server.base_url, headers=BLAND, known=known)
        assert fuzzing.operations(schema.include(tag="Bland")) == BLAND_OPERATIONS
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


# The lazy schema is filtered here: a filter applied to the fixture's schema would be replaced by this one's.
schema = schemathesis.pytest.from_fixture("bland_api").include(tag="Bland")


@schema.parametrize()
def test_blands_reads_answer_every_generated_request_in_blands_envelope(case: schemathesis.Case) -> None:
    fuzzing.call_and_validate(case, additional_checks=[bland_envelope])
