"""One refusal, three shapes: every error code maps to a status in every dialect (an unmapped code would be a
500), and the send gates' refusals read as PolyAI 400 `{"detail"}`, Amigo 422 `{"detail"}` and Bland 400
`{"data": null, "errors": [...]}`."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from fastapi.responses import JSONResponse

from reachout.carriers.sandbox.rules import SandboxLookup
from reachout.dialects import amigo, bland, polyai
from reachout.errors import ErrorCode, ReachoutError
from reachout.kit.gcra import Rate
from reachout.outreach.service import plan_greeting
from reachout.tenancy.enums import Capability, Environment, NumberKind
from reachout.tenancy.schemas import ProjectView, SenderNumber

DIALECTS: dict[str, Callable[[ReachoutError], JSONResponse]] = {
    "polyai": polyai.error_response,
    "amigo": amigo.error_response,
    "bland": bland.error_response,
}
GATE_CODES = [
    ErrorCode.USE_CASE_INACTIVE,
    ErrorCode.NO_NUMBERS_PROVISIONED,
    ErrorCode.CAMPAIGN_NOT_VERIFIED,
    ErrorCode.BRAND_SUSPENDED,
    ErrorCode.INVALID_PHONE_NUMBER,
    ErrorCode.COUNTRY_NOT_ALLOWED,
    ErrorCode.RECIPIENT_LANDLINE,
    ErrorCode.RECIPIENT_OPTED_OUT,
]


REFUSALS = [code for code in ErrorCode if code is not ErrorCode.INTERNAL_ERROR]


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("code", REFUSALS)
def test_every_refusal_has_a_status_below_500(dialect: str, code: ErrorCode) -> None:
    response = DIALECTS[dialect](ReachoutError(code, "why"))
    assert 400 <= response.status_code < 500


@pytest.mark.parametrize("dialect", DIALECTS)
def test_an_internal_error_is_a_500_in_each_dialects_shape(dialect: str) -> None:
    response = DIALECTS[dialect](ReachoutError(ErrorCode.INTERNAL_ERROR, "Internal server error."))
    assert response.status_code == 500


@pytest.mark.parametrize("code", GATE_CODES)
def test_a_gate_refusal_in_each_dialects_shape(code: ErrorCode) -> None:
    error = ReachoutError(code, "The reason, in words.")
    shapes = {name: to_json(respond(error)) for name, respond in DIALECTS.items()}
    # PolyAI's page answers a missing project number with 404; every other gate refusal is a 400.
    polyai_status = 404 if code is ErrorCode.NO_NUMBERS_PROVISIONED else 400
    assert shapes["polyai"] == (polyai_status, {"detail": "The reason, in words."})
    assert shapes["amigo"] == (422, {"detail": "The reason, in words."})
    assert shapes["bland"] == (
        400,
        {"data": None, "errors": [{"error": code.value, "message": "The reason, in words."}]},
    )


def test_an_unknown_use_case_is_404_in_amigo() -> None:
    assert amigo.error_response(ReachoutError(ErrorCode.USE_CASE_NOT_FOUND, "x")).status_code == 404
    assert amigo.error_response(ReachoutError(ErrorCode.FORBIDDEN, "x")).status_code == 404


def to_json(response: JSONResponse) -> tuple[int, object]:
    return response.status_code, json.loads(bytes(response.body))


@pytest.mark.parametrize(
    ("number", "code"),
    [("+15005550009", ErrorCode.RECIPIENT_LANDLINE), ("+15005550001", ErrorCode.INVALID_PHONE_NUMBER)],
)
async def test_twilios_magic_numbers_are_refused_at_accept_in_every_dialects_shape(
    number: str, code: ErrorCode
) -> None:
    """The sandbox's lookup knows Twilio's magic numbers, so the gates refuse them as any dialect accepts."""
    project = ProjectView(
        id="clinic",
        account_id="acme",
        connector_id="conn",
        environment=Environment.LIVE,
        rate_limit=Rate(60, 60.0),
        agent={},
        numbers=(
            SenderNumber(
                "+14155550100",
                "sandbox",
                NumberKind.LONG_CODE,
                Environment.LIVE,
                frozenset({Capability.SMS}),
                None,
            ),
        ),
    )
    with pytest.raises(ReachoutError) as refused:
        await plan_greeting(project, to_number=number, body="Hi", agent_number=None, lookup=SandboxLookup())
    assert refused.value.code is code
    responses = {name: respond(refused.value) for name, respond in DIALECTS.items()}
    shapes = {name: (r.status_code, json.loads(bytes(r.body))) for name, r in responses.items()}
    assert shapes["polyai"][0] == 400 and shapes["amigo"][0] == 422
    error = {"error": code.value, "message": refused.value.message}
    assert shapes["bland"] == (400, {"data": None, "errors": [error]})
