"""The routes of reachout's own API, `/api/v1/`: authenticated by the account's API keys (every form the
dialects take), scoped to the key's account, refusals as `{"error": {"code", "message"}}`."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, TypeVar

from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from reachout.api.schemas import (
    ApiError,
    AttemptList,
    EndpointList,
    EndpointOut,
    EventList,
    EventOut,
    RecoverBody,
    Recovered,
    ReplayBody,
    Replayed,
    attempt_out,
    endpoint_out,
    event_out,
)
from reachout.errors import ErrorCode, ReachoutError
from reachout.events.console import EventConsole
from reachout.events.reading import MAX_PAGE, EventQuery, Order
from reachout.events.types import AUDIT_ONLY, UnknownEventFilter, check_filter
from reachout.kit.docs import answer
from reachout.kit.http import BODY_TOO_LARGE, INTERNAL_ERROR_MESSAGE, refusals_as
from reachout.kit.validation import describe
from reachout.tenancy.keys import key_from_headers
from reachout.tenancy.service import Directory

STATUS_FOR: dict[ErrorCode, int] = {
    ErrorCode.UNAUTHENTICATED: status.HTTP_401_UNAUTHORIZED,
    ErrorCode.NOT_FOUND: status.HTTP_404_NOT_FOUND,
    ErrorCode.INVALID_REQUEST: status.HTTP_400_BAD_REQUEST,
    ErrorCode.INTERNAL_ERROR: status.HTTP_500_INTERNAL_SERVER_ERROR,
}
SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "ReachoutApiKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key of the account, as `Authorization: Bearer KEY` (`authorization: KEY` and "
        "`X-PolyAi-Auth-Token: KEY` work too). Missing or unknown: 401.",
    },
}
SECURITY: list[dict[str, list[str]]] = [{"ReachoutApiKey": []}]
_REFUSED: dict[int | str, dict[str, Any]] = {
    400: answer("The request is malformed: a parameter or the body.", ApiError),
    401: answer("No API key, or an unknown one.", ApiError),
    404: answer("No such event or endpoint in the key's account.", ApiError),
    500: answer(
        "An unexpected failure (logged); nothing was changed.",
        ApiError,
        {"error": {"code": "INTERNAL_ERROR", "message": INTERNAL_ERROR_MESSAGE}},
    ),
}
_REFUSED_WITH_A_BODY = {**_REFUSED, 413: BODY_TOO_LARGE}
Shape = TypeVar("Shape", bound=BaseModel)


def error_response(error: ReachoutError) -> JSONResponse:
    """A refusal in the API's shape."""
    body = {"error": {"code": error.code.value, "message": error.message}}
    return JSONResponse(body, status_code=STATUS_FOR.get(error.code, status.HTTP_400_BAD_REQUEST))


ApiRoute = refusals_as(error_response)


def api_router(directory: Directory, console: EventConsole) -> APIRouter:
    """reachout's own routes under /api/v1/."""
    router = APIRouter(prefix="/api/v1", route_class=ApiRoute, tags=["reachout: events and webhooks"])

    async def account(request: Request) -> str:
        return await directory.authenticate(key_from_headers(request.headers))

    @router.get(
        "/events",
        responses={200: answer("A page of events, newest first unless `order=asc`.", EventList), **_REFUSED},
        openapi_extra={"security": SECURITY, "parameters": LIST_PARAMETERS},
    )
    async def list_events(request: Request) -> JSONResponse:
        """The account's events, filtered by type, project, message, conversation and time; a cursor pages."""
        query = parse_query(await account(request), request.query_params)
        page = await console.page(query)
        return JSONResponse(
            {
                "data": [event_out(e) for e in page.events],
                "has_more": page.has_more,
                "next_cursor": page.next_cursor,
            }
        )

    @router.get(
        "/events/{event_id}",
        responses={200: answer("The event.", EventOut), **_REFUSED},
        openapi_extra={"security": SECURITY},
    )
    async def get_event(event_id: str, request: Request) -> JSONResponse:
        """One of the account's events."""
        return JSONResponse(event_out(await console.event(await account(request), event_id)))

    @router.get(
        "/events/{event_id}/attempts",
        responses={200: answer("Every attempt to deliver it, newest first.", AttemptList), **_REFUSED},
        openapi_extra={"security": SECURITY, "parameters": [_ENDPOINT_PARAMETER]},
    )
    async def event_attempts(event_id: str, request: Request) -> JSONResponse:
        """Each attempt to deliver the event: when, status code, latency, error, the answer's first 2 KB."""
        endpoint_id = request.query_params.get("endpoint_id") or None
        attempts = await console.attempts(await account(request), event_id, endpoint_id)
        return JSONResponse({"data": [attempt_out(a) for a in attempts]})

    @router.post(
        "/events/{event_id}/replay",
        status_code=202,
        responses={
            202: answer("Queued, under the event's own `webhook-id`.", Replayed),
            **_REFUSED_WITH_A_BODY,
        },
        openapi_extra={"security": SECURITY, "requestBody": _body(ReplayBody, required=False)},
    )
    async def replay(event_id: str, request: Request) -> JSONResponse:
        """Deliver the event again (to one endpoint, or to every enabled endpoint that takes it)."""
        account_id = await account(request)
        body = await parse_body(request, ReplayBody, empty_allowed=True)
        endpoints = await console.replay(account_id, event_id, body.endpoint_id)
        return JSONResponse({"event_id": event_id, "endpoints": endpoints}, status_code=202)

    @router.get(
        "/webhooks",
        responses={200: answer("The account's endpoints.", EndpointList), **_REFUSED},
        openapi_extra={"security": SECURITY},
    )
    async def list_endpoints(request: Request) -> JSONResponse:
        """The account's endpoints: enabled or not (and why), failing since when, deliveries pending."""
        endpoints = await console.endpoints(await account(request))
        return JSONResponse({"data": [endpoint_out(e) for e in endpoints]})

    @router.get(
        "/webhooks/{endpoint_id}/attempts",
        responses={200: answer("The endpoint's attempts, newest first.", AttemptList), **_REFUSED},
        openapi_extra={"security": SECURITY, "parameters": ATTEMPT_PARAMETERS},
    )
    async def endpoint_attempts(endpoint_id: str, request: Request) -> JSONResponse:
        """The endpoint's attempts, newest first; `before` (an attempt id) pages."""
        account_id = await account(request)
        before = _integer(request.query_params.get("before"), "before", 0, 2**62)
        limit = _integer(request.query_params.get("limit"), "limit", 1, MAX_PAGE) or 20
        attempts = await console.endpoint_attempts(account_id, endpoint_id, before, limit)
        return JSONResponse({"data": [attempt_out(a) for a in attempts]})

    @router.post(
        "/webhooks/recover",
        status_code=202,
        responses={202: answer("Queued again.", Recovered), **_REFUSED_WITH_A_BODY},
        openapi_extra={"security": SECURITY, "requestBody": _body(RecoverBody)},
    )
    async def recover(request: Request) -> JSONResponse:
        """Send an endpoint again what it failed to get since a time, and what it missed while disabled."""
        account_id = await account(request)
        body = await parse_body(request, RecoverBody)
        if body.since.tzinfo is None:
            raise ReachoutError(ErrorCode.INVALID_REQUEST, "since: give a time zone (`Z` or `+00:00`).")
        queued = await console.recover(account_id, body.endpoint_id, body.since)
        return JSONResponse({"endpoint_id": body.endpoint_id, "queued": queued}, status_code=202)

    @router.post(
        "/webhooks/{endpoint_id}/enable",
        responses={200: answer("Enabled; what it held is due now.", EndpointOut), **_REFUSED_WITH_A_BODY},
        openapi_extra={"security": SECURITY},
    )
    async def enable(endpoint_id: str, request: Request) -> JSONResponse:
        """Enable an endpoint that a 410 or days of failures disabled."""
        return JSONResponse(endpoint_out(await console.enable(await account(request), endpoint_id)))

    return router


def parse_query(account_id: str, params: Any) -> EventQuery:
    """The event query from the list's parameters; a clear refusal for anything it cannot use."""
    types: list[str] = []
    for value in params.getlist("type"):
        types.extend(part.strip() for part in value.split(",") if part.strip())
    try:
        checked = check_filter(t for t in types if t not in _AUDIT_TYPES)
    except UnknownEventFilter as error:
        raise ReachoutError(ErrorCode.INVALID_REQUEST, f"type: {error}") from None
    order = params.get("order") or Order.NEWEST_FIRST.value
    if order not in (Order.NEWEST_FIRST.value, Order.OLDEST_FIRST.value):
        raise ReachoutError(ErrorCode.INVALID_REQUEST, "order must be 'asc' or 'desc'.")
    return EventQuery(
        account_id,
        types=(*checked, *(t for t in types if t in _AUDIT_TYPES)),
        project_id=_text(params.get("project_id"), "project_id"),
        message_id=_text(params.get("message_id"), "message_id"),
        conversation_id=_text(params.get("conversation_id"), "conversation_id"),
        since=_moment(params.get("since"), "since"),
        until=_moment(params.get("until"), "until"),
        cursor=_text(params.get("cursor"), "cursor"),
        order=Order(order),
        limit=_integer(params.get("limit"), "limit", 1, MAX_PAGE) or 20,
    )


_AUDIT_TYPES = frozenset(t.value for t in AUDIT_ONLY)
_MAX_TEXT = 200


def _text(value: str | None, name: str) -> str | None:
    if value is None or value == "":
        return None
    if len(value) > _MAX_TEXT or "\x00" in value:
        raise ReachoutError(ErrorCode.INVALID_REQUEST, f"{name} is not an id reachout gives.")
    return value


def _moment(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ReachoutError(ErrorCode.INVALID_REQUEST, f"{name} must be an ISO 8601 time.") from None
    if moment.tzinfo is None:
        raise ReachoutError(ErrorCode.INVALID_REQUEST, f"{name}: give a time zone (`Z` or `+00:00`).")
    return moment


def _integer(value: str | None, name: str, low: int, high: int) -> int | None:
    if value is None or value == "":
        return None
    # ASCII digits only ("²" is a digit to str.isdigit, not to int) and few of them (int refuses 4,300).
    if not (value.isascii() and value.isdigit() and len(value) <= 20) or not low <= int(value) <= high:
        raise ReachoutError(ErrorCode.INVALID_REQUEST, f"{name} must be a whole number from {low} to {high}.")
    return int(value)


async def parse_body(request: Request, shape: type[Shape], *, empty_allowed: bool = False) -> Shape:
    """The JSON body as `shape`; INVALID_REQUEST for anything else."""
    raw = await request.body()
    if not raw.strip() and empty_allowed:
        return shape()
    try:
        return shape.model_validate(json.loads(raw))
    except (ValueError, RecursionError) as error:
        if isinstance(error, ValidationError):
            raise ReachoutError(ErrorCode.INVALID_REQUEST, describe(error.errors())) from None
        raise ReachoutError(ErrorCode.INVALID_REQUEST, "The body must be a JSON object.") from None


def _body(shape: type[BaseModel], *, required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": shape.model_json_schema()}}}


_ENDPOINT_PARAMETER = {
    "name": "endpoint_id",
    "in": "query",
    "schema": {"type": "string"},
    "description": "Only the attempts to this endpoint.",
}
LIST_PARAMETERS = [
    {
        "name": "type",
        "in": "query",
        "schema": {"type": "array", "items": {"type": "string"}},
        "description": "Event types or families (`message.*`), repeated or comma-separated.",
    },
    *(
        {"name": name, "in": "query", "schema": {"type": "string"}, "description": text}
        for name, text in (
            ("project_id", "Only this project's events."),
            ("message_id", "Only this message's events."),
            ("conversation_id", "Only this conversation's events."),
            ("cursor", "The `next_cursor` of the page before."),
        )
    ),
    *(
        {
            "name": name,
            "in": "query",
            "schema": {"type": "string", "format": "date-time"},
            "description": text,
        }
        for name, text in (("since", "Events from this time on."), ("until", "Events before this time."))
    ),
    {
        "name": "order",
        "in": "query",
        "schema": {"type": "string", "enum": ["desc", "asc"], "default": "desc"},
    },
    {
        "name": "limit",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 20},
    },
]
ATTEMPT_PARAMETERS = [
    {
        "name": "before",
        "in": "query",
        "schema": {"type": "integer", "minimum": 0},
        "description": "An attempt id.",
    },
    {
        "name": "limit",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 20},
    },
]
