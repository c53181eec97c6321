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
from reachout.kit.docs import answer
from reachout.kit.http import (
    BODY_TOO_LARGE,
    INTERNAL_ERROR_MESSAGE,
    RETRY_AFTER,
    ErrorDetail,
    detail_response,
    refusals_as,
)
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

# The reference page's example.
EXAMPLE_BODY = {
    "message": (
        "Hi Jane, your appointment is confirmed for tomorrow at 2pm. "
        "Reply to this message if you need to reschedule."
    ),
    "user_number": "+14155551234",
}
OUTBOUND_SMS_OPENAPI = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": OutboundSmsBody.model_json_schema(), "example": EXAMPLE_BODY}
        },
    },
    # The two headers are the security requirement's; as parameters too, Swagger UI would ask for each twice.
    "security": SECURITY,
}


OUTBOUND_SMS_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"description": "Accepted: the message will be sent and a conversation session opened. No body."},
    400: answer(
        "Invalid body, missing fields, bad E.164 format, `agent_number` not provisioned for the project, no "
        "X-TOKEN-ID, a body that is not `application/json`, or a recipient who may not be texted (opted "
        "out, a landline).",
        ErrorDetail,
        {"detail": "user_number: Field required"},
    ),
    401: answer("Missing or invalid X-PolyAi-Auth-Token.", ErrorDetail, {"detail": "Invalid API key."}),
    403: answer(
        "The API key's account does not match the connector's account.",
        ErrorDetail,
        {"detail": "The API key's account does not match the connector's account."},
    ),
    404: answer(
        "Connector not found, or no numbers provisioned for this project.",
        ErrorDetail,
        {"detail": "Connector 'conn_unknown' not found."},
    ),
    413: BODY_TOO_LARGE,
    429: answer(
        "Per-project rate limit exceeded: back off for `Retry-After` seconds and retry.",
        ErrorDetail,
        {"detail": "Rate limit of 60 requests per 60 s exceeded for this project; retry later."},
        headers=RETRY_AFTER,
    ),
    500: answer(
        "Unexpected server error; the connection is closed.", ErrorDetail, {"detail": INTERNAL_ERROR_MESSAGE}
    ),
}


def polyai_router(directory: Directory, accept: Accept, lookup: LineTypeLookup | None = None) -> APIRouter:
    """The PolyAI-compatible routes."""
    router = APIRouter(route_class=PolyAIRoute, tags=["PolyAI"])

    @router.post(
        "/v1/outbound-sms",
        status_code=status.HTTP_202_ACCEPTED,
        response_class=Response,
        openapi_extra=OUTBOUND_SMS_OPENAPI,
        responses=OUTBOUND_SMS_RESPONSES,
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
