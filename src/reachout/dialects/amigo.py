"""The Amigo dialect: `POST /v1/sms/` through an SMS use case, and `GET /v1/sms/{id}`; errors as `{"detail"}`.

A thin translator: the body in, a planned send to messaging, the page's message object out. The message's
status is told in the page's vocabulary (`pending`, `sent`, `delivered`, `failed`, `undelivered`), and what is
not known yet (the sender, the carrier's sid, the segment count) is null until the dispatcher hands it over.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from reachout.delivery.status import MessageStatus
from reachout.dialects.amigo_schemas import (
    EXAMPLE_MESSAGE_ID,
    GET_RESPONSES,
    MESSAGE_ID_TEXT,
    SEND_EXAMPLE,
    SEND_RESPONSES,
    AmigoStatus,
)
from reachout.errors import ErrorCode, ReachoutError
from reachout.kit.http import detail_response, refusals_as
from reachout.kit.validation import parse_json_body
from reachout.messaging import service as messaging
from reachout.messaging.schemas import AcceptedMessage, MessageView, OutboundRequest
from reachout.messaging.segments import MAX_BODY_CHARS
from reachout.outreach import service as outreach
from reachout.phones.lookup import LineTypeLookup
from reachout.tenancy.keys import key_from_headers
from reachout.tenancy.service import Directory

_UNPROCESSABLE = status.HTTP_422_UNPROCESSABLE_CONTENT
STATUS_FOR: dict[ErrorCode, int] = {
    ErrorCode.UNAUTHENTICATED: status.HTTP_401_UNAUTHORIZED,
    # Another account's use case or message is not found: its existence is not the caller's to learn.
    ErrorCode.FORBIDDEN: status.HTTP_404_NOT_FOUND,
    ErrorCode.USE_CASE_NOT_FOUND: status.HTTP_404_NOT_FOUND,
    ErrorCode.CONNECTOR_NOT_FOUND: status.HTTP_404_NOT_FOUND,
    ErrorCode.NOT_FOUND: status.HTTP_404_NOT_FOUND,
    ErrorCode.RATE_LIMITED: status.HTTP_429_TOO_MANY_REQUESTS,
    ErrorCode.INTERNAL_ERROR: status.HTTP_500_INTERNAL_SERVER_ERROR,
    ErrorCode.INVALID_REQUEST: _UNPROCESSABLE,
    ErrorCode.INVALID_PHONE_NUMBER: _UNPROCESSABLE,
    ErrorCode.MESSAGE_TOO_LONG: _UNPROCESSABLE,
    ErrorCode.NO_NUMBERS_PROVISIONED: _UNPROCESSABLE,
    ErrorCode.SENDER_NOT_PROVISIONED: _UNPROCESSABLE,
    ErrorCode.USE_CASE_INACTIVE: _UNPROCESSABLE,
    ErrorCode.CAMPAIGN_NOT_VERIFIED: _UNPROCESSABLE,
    ErrorCode.RECIPIENT_LANDLINE: _UNPROCESSABLE,
    ErrorCode.RECIPIENT_OPTED_OUT: _UNPROCESSABLE,
    ErrorCode.COUNTRY_NOT_ALLOWED: _UNPROCESSABLE,
    ErrorCode.BRAND_SUSPENDED: _UNPROCESSABLE,
}

# The page's five statuses: pending until the carrier took it (handed off: sent); a canceled send failed.
STATUS_WORD: dict[MessageStatus, AmigoStatus] = {
    MessageStatus.QUEUED: "pending",
    MessageStatus.SENDING: "sent",
    MessageStatus.SENT: "sent",
    MessageStatus.DELIVERED: "delivered",
    MessageStatus.READ: "delivered",
    MessageStatus.UNDELIVERED: "undelivered",
    MessageStatus.FAILED: "failed",
    MessageStatus.CANCELED: "failed",
}

Accept = Callable[[OutboundRequest], Awaitable[AcceptedMessage]]


def error_response(error: ReachoutError) -> JSONResponse:
    """A refusal as Amigo answers it."""
    return detail_response(error, STATUS_FOR)


AmigoRoute = refusals_as(error_response)


class SendSmsBody(BaseModel):
    """The body of `POST /v1/sms/`."""

    model_config = ConfigDict(extra="ignore")

    use_case_id: uuid.UUID
    to_phone_number: StrictStr
    message: StrictStr = Field(min_length=1, max_length=MAX_BODY_CHARS)


SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "AmigoBearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "The API key, as `Authorization: Bearer KEY`. Missing or unknown: 401.",
    },
}
SECURITY: list[dict[str, list[str]]] = [{"AmigoBearer": []}]

SEND_SMS_OPENAPI = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": SendSmsBody.model_json_schema(), "example": SEND_EXAMPLE}},
    },
    "security": SECURITY,
}


def amigo_router(
    directory: Directory,
    accept: Accept,
    reader: messaging.MessageReader,
    lookup: LineTypeLookup | None = None,
) -> APIRouter:
    """The Amigo-compatible routes."""
    router = APIRouter(route_class=AmigoRoute, tags=["Amigo"])

    # Without the slash too: a redirect would make some clients drop the Authorization header.
    @router.post("/v1/sms", status_code=status.HTTP_201_CREATED, include_in_schema=False)
    @router.post(
        "/v1/sms/",
        status_code=status.HTTP_201_CREATED,
        openapi_extra=SEND_SMS_OPENAPI,
        responses=SEND_RESPONSES,
    )
    async def send_sms(request: Request) -> JSONResponse:
        """Send one SMS through a use case; 201 once it is durably accepted, its sender chosen later."""
        account_id = await directory.authenticate(key_from_headers(request.headers))
        body = parse_json_body(request.headers.get("content-type"), await request.body(), SendSmsBody)
        project, use_case = await directory.use_case(account_id, str(body.use_case_id))
        planned = await outreach.plan_use_case_send(
            project, use_case, to_number=body.to_phone_number, body=body.message, lookup=lookup
        )
        accepted = await accept(planned)
        return JSONResponse(
            _message(outreach.accepted_view(planned, accepted)), status_code=status.HTTP_201_CREATED
        )

    @router.get("/v1/sms/{message_id}", responses=GET_RESPONSES, openapi_extra={"security": SECURITY})
    async def get_sms(
        message_id: Annotated[
            str,
            Path(
                description=MESSAGE_ID_TEXT,
                json_schema_extra={"format": "uuid"},
                openapi_examples={"message": {"value": EXAMPLE_MESSAGE_ID}},
            ),
        ],
        request: Request,
    ) -> JSONResponse:
        """A message sent through one of the caller's use cases, as it stands now."""
        account_id = await directory.authenticate(key_from_headers(request.headers))
        found = await reader.use_case_message(account_id, _canonical_uuid(message_id))
        if found is None:
            raise ReachoutError(ErrorCode.NOT_FOUND, f"SMS message '{message_id}' not found.")
        return JSONResponse(_message(found))

    return router


def _canonical_uuid(text: str) -> str:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise ReachoutError(ErrorCode.NOT_FOUND, f"SMS message '{text}' not found.") from None


def _message(message: MessageView) -> dict[str, Any]:
    handed_off = message.handed_off_at is not None
    return {
        "id": message.id,
        "use_case_id": message.use_case_id,
        "message_sid": message.carrier_sid,
        "from_number": message.from_number,
        "to_number": message.to_number,
        "body": message.body,
        # Reachout's own count is an estimate; the page promises the carrier's, known from the hand-off on.
        "num_segments": message.num_segments if handed_off else None,
        "status": STATUS_WORD[MessageStatus(message.status)],
        "handed_off_at": _iso(message.handed_off_at),
        "delivered_at": _iso(message.delivered_at),
        "errored_at": _iso(message.errored_at),
        "error_code": message.error_code,
        "created_at": _iso(message.created_at),
        "updated_at": _iso(message.updated_at),
    }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
