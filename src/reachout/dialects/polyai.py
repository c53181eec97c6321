"""The PolyAI dialect: `POST /v1/outbound-sms`, `X-PolyAi-Auth-Token` + `X-TOKEN-ID`, errors as `{"detail"}`.

A thin translator: headers and body in, a planned greeting to messaging, a status code and detail out.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, StrictStr

from reachout.errors import ErrorCode, ReachoutError
from reachout.kit.http import detail_response, refusals_as
from reachout.kit.validation import parse_json_body
from reachout.messaging.schemas import AcceptedMessage, OutboundRequest
from reachout.outreach.service import plan_greeting
from reachout.phones.lookup import LineTypeLookup
from reachout.tenancy.keys import key_from_headers
from reachout.tenancy.service import Directory

STATUS_FOR: dict[ErrorCode, int] = {
    ErrorCode.UNAUTHENTICATED: status.HTTP_401_UNAUTHORIZED,
    ErrorCode.FORBIDDEN: status.HTTP_403_FORBIDDEN,
    ErrorCode.CONNECTOR_NOT_FOUND: status.HTTP_404_NOT_FOUND,
    ErrorCode.NO_NUMBERS_PROVISIONED: status.HTTP_404_NOT_FOUND,
    ErrorCode.NOT_FOUND: status.HTTP_404_NOT_FOUND,
    ErrorCode.INVALID_REQUEST: status.HTTP_400_BAD_REQUEST,
    ErrorCode.INVALID_PHONE_NUMBER: status.HTTP_400_BAD_REQUEST,
    ErrorCode.MESSAGE_TOO_LONG: status.HTTP_400_BAD_REQUEST,
    ErrorCode.SENDER_NOT_PROVISIONED: status.HTTP_400_BAD_REQUEST,
    ErrorCode.RATE_LIMITED: status.HTTP_429_TOO_MANY_REQUESTS,
    ErrorCode.INTERNAL_ERROR: status.HTTP_500_INTERNAL_SERVER_ERROR,
    ErrorCode.RECIPIENT_OPTED_OUT: status.HTTP_400_BAD_REQUEST,
    ErrorCode.RECIPIENT_LANDLINE: status.HTTP_400_BAD_REQUEST,
    # The use-case gates never refuse a PolyAI send (it names no use case); mapped all the same.
    ErrorCode.COUNTRY_NOT_ALLOWED: status.HTTP_400_BAD_REQUEST,
    ErrorCode.USE_CASE_NOT_FOUND: status.HTTP_404_NOT_FOUND,
    ErrorCode.USE_CASE_INACTIVE: status.HTTP_400_BAD_REQUEST,
    ErrorCode.CAMPAIGN_NOT_VERIFIED: status.HTTP_400_BAD_REQUEST,
    ErrorCode.BRAND_SUSPENDED: status.HTTP_400_BAD_REQUEST,
}

Accept = Callable[[OutboundRequest], Awaitable[AcceptedMessage]]


def error_response(error: ReachoutError) -> JSONResponse:
    """A refusal as PolyAI answers it."""
    return detail_response(error, STATUS_FOR)


PolyAIRoute = refusals_as(error_response)


class OutboundSmsBody(BaseModel):
    """The body of `POST /v1/outbound-sms`."""

    model_config = ConfigDict(extra="ignore")

    message: StrictStr
    user_number: StrictStr
    agent_number: StrictStr | None = None


# Both headers on every call, so both are one requirement (a list of two would let either do alone).
SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "PolyAiAuthToken": {
        "type": "apiKey",
        "in": "header",
        "name": "X-PolyAi-Auth-Token",
        "description": "The API key. Missing or unknown: 401.",
    },
    "PolyAiConnectorId": {
        "type": "apiKey",
        "in": "header",
        "name": "X-TOKEN-ID",
        "description": (
            "The connector ID of the target project. Missing: 400; unknown: 404; another account's: 403."
        ),
    },
}
SECURITY: list[dict[str, list[str]]] = [{"PolyAiAuthToken": [], "PolyAiConnectorId": []}]

OUTBOUND_SMS_OPENAPI = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": OutboundSmsBody.model_json_schema()}},
    },
    # The two headers are the security requirement's; as parameters too, Swagger UI would ask for each twice.
    "security": SECURITY,
}


def polyai_router(directory: Directory, accept: Accept, lookup: LineTypeLookup | None = None) -> APIRouter:
    """The PolyAI-compatible routes."""
    router = APIRouter(route_class=PolyAIRoute, tags=["PolyAI"])

    @router.post(
        "/v1/outbound-sms",
        status_code=status.HTTP_202_ACCEPTED,
        response_class=Response,
        openapi_extra=OUTBOUND_SMS_OPENAPI,
        responses={400: {}, 401: {}, 403: {}, 404: {}, 413: {}, 429: {}},
    )
    async def outbound_sms(request: Request) -> Response:
        """Send an SMS that opens a new conversation session; 202 once it is durably accepted."""
        account_id = await directory.authenticate(key_from_headers(request.headers))
        connector_id = request.headers.get("x-token-id")
        if not connector_id:
            raise ReachoutError(ErrorCode.INVALID_REQUEST, "Missing X-TOKEN-ID header.")
        project = await directory.project_for_connector(account_id, connector_id)
        body = parse_json_body(request.headers.get("content-type"), await request.body(), OutboundSmsBody)
        planned = await plan_greeting(
            project,
            to_number=body.user_number,
            body=body.message,
            agent_number=body.agent_number,
            lookup=lookup,
        )
        await accept(planned)
        return Response(status_code=status.HTTP_202_ACCEPTED)

    return router
