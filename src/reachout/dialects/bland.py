"""The Bland dialect, reading side: `GET /v1/sms/conversations` and `GET /v1/sms/conversations/{id}`.

Bland answers `{"data": ..., "errors": null}`, and on failure `{"data": null, "errors": [{"error": CODE,
"message": TEXT}]}`; the list carries `extra.pagination`. Scoped to the account of the `authorization` key.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Path, Request, status
from fastapi.responses import JSONResponse

from reachout.conversations import service as conversations
from reachout.conversations.listing import (
    LARGEST_INT,
    MAX_FILTERS,
    OPERATORS_FOR,
    ConversationQuery,
    ConversationSummary,
    Filter,
    FilterField,
    Operator,
    SortField,
    comparable,
)
from reachout.dialects.bland_schemas import (
    CONVERSATION_ID_TEXT,
    DETAIL_RESPONSES,
    LIST_PARAMETERS,
    LIST_RESPONSES,
    MAX_FILTERS_LENGTH,
    MAX_PAGE_SIZE,
    SECURITY,
)
from reachout.errors import ErrorCode, ReachoutError
from reachout.kit.clock import iso_utc_or_none as _time
from reachout.kit.http import refusals_as
from reachout.messaging.schemas import MessageView
from reachout.tenancy.keys import key_from_headers
from reachout.tenancy.service import Directory

STATUS_FOR: dict[ErrorCode, int] = {
    ErrorCode.UNAUTHENTICATED: status.HTTP_401_UNAUTHORIZED,
    ErrorCode.FORBIDDEN: status.HTTP_403_FORBIDDEN,
    ErrorCode.NOT_FOUND: status.HTTP_404_NOT_FOUND,
    ErrorCode.CONNECTOR_NOT_FOUND: status.HTTP_404_NOT_FOUND,
    ErrorCode.USE_CASE_NOT_FOUND: status.HTTP_404_NOT_FOUND,
    ErrorCode.RATE_LIMITED: status.HTTP_429_TOO_MANY_REQUESTS,
    ErrorCode.INTERNAL_ERROR: status.HTTP_500_INTERNAL_SERVER_ERROR,
    ErrorCode.INVALID_REQUEST: status.HTTP_400_BAD_REQUEST,
    # The send checks never refuse a read; mapped all the same, to the 400 Bland gives a request it will not
    # act on, its code named in `errors[].error`.
    ErrorCode.INVALID_PHONE_NUMBER: status.HTTP_400_BAD_REQUEST,
    ErrorCode.MESSAGE_TOO_LONG: status.HTTP_400_BAD_REQUEST,
    ErrorCode.NO_NUMBERS_PROVISIONED: status.HTTP_400_BAD_REQUEST,
    ErrorCode.SENDER_NOT_PROVISIONED: status.HTTP_400_BAD_REQUEST,
    ErrorCode.RECIPIENT_OPTED_OUT: status.HTTP_400_BAD_REQUEST,
    ErrorCode.RECIPIENT_LANDLINE: status.HTTP_400_BAD_REQUEST,
    ErrorCode.COUNTRY_NOT_ALLOWED: status.HTTP_400_BAD_REQUEST,
    ErrorCode.USE_CASE_INACTIVE: status.HTTP_400_BAD_REQUEST,
    ErrorCode.CAMPAIGN_NOT_VERIFIED: status.HTTP_400_BAD_REQUEST,
    ErrorCode.BRAND_SUSPENDED: status.HTTP_400_BAD_REQUEST,
}
# An array of objects of scalars nests 2 deep; refused before parsing, json.loads never nears Python's
# recursion limit (a RecursionError, which a thousand `[` reach).
MAX_FILTERS_DEPTH = 4
WHOLE_NUMBER = re.compile(r"-?[0-9]+")
Choice = TypeVar("Choice", SortField, FilterField, Operator)


def error_response(error: ReachoutError) -> JSONResponse:
    """A refusal in Bland's envelope."""
    body = {"data": None, "errors": [{"error": error.code.value, "message": error.message}]}
    return JSONResponse(body, status_code=STATUS_FOR[error.code])


BlandRoute = refusals_as(error_response)


def bland_router(directory: Directory, reader: conversations.ConversationReader) -> APIRouter:
    """The Bland-compatible routes."""
    router = APIRouter(route_class=BlandRoute, tags=["Bland"])

    @router.get(
        "/v1/sms/conversations",
        openapi_extra={"parameters": LIST_PARAMETERS, "security": SECURITY},
        responses=LIST_RESPONSES,
    )
    async def list_conversations(request: Request) -> JSONResponse:
        """A page of the caller's SMS conversations: `page`, `pageSize`, `sortBy`, `sortDir`, `filters`."""
        account_id = await directory.authenticate(key_from_headers(request.headers))
        query = parse_query(request.query_params)
        page = await reader.page(account_id, query)
        return JSONResponse(
            {
                "data": [_summary(item) for item in page.items],
                "errors": None,
                "extra": {
                    "pagination": {
                        "totalItems": page.total,
                        "totalPages": page.total_pages,
                        "currentPage": query.page,
                        "pageSize": query.page_size,
                    }
                },
            }
        )

    @router.get(
        "/v1/sms/conversations/{conversation_id}",
        openapi_extra={"security": SECURITY},
        responses=DETAIL_RESPONSES,
    )
    async def get_conversation(
        conversation_id: Annotated[str, Path(description=CONVERSATION_ID_TEXT)], request: Request
    ) -> JSONResponse:
        """One of the caller's conversations with its messages, oldest first."""
        account_id = await directory.authenticate(key_from_headers(request.headers))
        found = await reader.detail(account_id, conversation_id)
        if found is None:
            raise ReachoutError(ErrorCode.NOT_FOUND, f"Conversation '{conversation_id}' not found.")
        summary, messages = found
        data = _summary(summary) | {"messages": [_message(m) for m in messages]}
        return JSONResponse({"data": data, "errors": None})

    return router


def parse_query(params: Any) -> ConversationQuery:
    """The list query from Bland's parameters; a clear refusal for anything it cannot use."""
    page = _positive_int(params.get("page"), "page", 1, LARGEST_INT)
    page_size = _positive_int(params.get("pageSize"), "pageSize", 25, MAX_PAGE_SIZE)
    sort_by = _choice(params.get("sortBy") or SortField.CREATED_AT.value, SortField, "sortBy")
    direction = (params.get("sortDir") or "desc").lower()
    if direction not in ("asc", "desc"):
        raise ReachoutError(ErrorCode.INVALID_REQUEST, "sortDir must be 'asc' or 'desc'.")
    filters = _filters(params.get("filters"))
    return ConversationQuery(page, page_size, sort_by, direction == "desc", filters)


def _positive_int(raw: str | None, name: str, default: int, maximum: int) -> int:
    if raw is None or raw == "":
        return default
    if WHOLE_NUMBER.fullmatch(raw) is None:
        raise ReachoutError(ErrorCode.INVALID_REQUEST, f"{name} must be a whole number (digits only).")
    # Python refuses to convert past 4,300 digits; a number that long is out of range anyway.
    value = int(raw) if len(raw) <= 4000 else 0
    if not 1 <= value <= maximum:
        raise ReachoutError(ErrorCode.INVALID_REQUEST, f"{name} must be at least 1 and at most {maximum}.")
    return value


def _choice(raw: object, kind: type[Choice], name: str) -> Choice:
    try:
        return kind(str(raw))
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise ReachoutError(ErrorCode.INVALID_REQUEST, f"{name} must be one of: {allowed}.") from None


def _filters(raw: str | None) -> tuple[Filter, ...]:
    if not raw:
        return ()
    if len(raw) > MAX_FILTERS_LENGTH:
        raise ReachoutError(
            ErrorCode.INVALID_REQUEST, f"filters must be at most {MAX_FILTERS_LENGTH} characters of JSON."
        )
    if _nesting(raw) > MAX_FILTERS_DEPTH:
        raise ReachoutError(
            ErrorCode.INVALID_REQUEST,
            f"filters must not nest deeper than {MAX_FILTERS_DEPTH} levels: "
            "an array of {field, operator, value} objects.",
        )
    try:
        items = json.loads(raw)
    except ValueError:
        raise ReachoutError(ErrorCode.INVALID_REQUEST, "filters must be a JSON-encoded array.") from None
    if not isinstance(items, list):
        raise ReachoutError(ErrorCode.INVALID_REQUEST, "filters must be a JSON-encoded array.")
    if len(items) > MAX_FILTERS:
        raise ReachoutError(ErrorCode.INVALID_REQUEST, f"filters must hold at most {MAX_FILTERS} conditions.")
    return tuple(_filter(item, i) for i, item in enumerate(items))


def _nesting(text: str) -> int:
    """How deep JSON text nests arrays and objects, brackets inside strings aside (counted before parsing,
    since `json.loads` recurses once per level)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _filter(item: object, index: int) -> Filter:
    where = f"filters[{index}]"
    if not isinstance(item, dict) or not {"field", "operator", "value"} <= item.keys():
        raise ReachoutError(
            ErrorCode.INVALID_REQUEST, f"{where} must be an object with field, operator and value."
        )
    field = _choice(item["field"], FilterField, f"{where}.field")
    operator = _choice(item["operator"], Operator, f"{where}.operator")
    if operator not in OPERATORS_FOR[field]:
        allowed = ", ".join(sorted(o.value for o in OPERATORS_FOR[field]))
        raise ReachoutError(ErrorCode.INVALID_REQUEST, f"{where}: {field} takes the operators {allowed}.")
    at = f"{where}.value"
    return Filter(field, operator, comparable(_typed(field, item["value"], at), at))


def _typed(field: FilterField, value: object, where: str) -> str | bool | int | datetime:
    if field is FilterField.IS_ACTIVE:
        if isinstance(value, bool):
            return value
        if value in ("true", "false"):
            return value == "true"
        raise ReachoutError(ErrorCode.INVALID_REQUEST, f"{where} must be true or false.")
    if field is FilterField.MESSAGE_COUNT:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ReachoutError(ErrorCode.INVALID_REQUEST, f"{where} must be a whole number.")
    if field in (FilterField.CREATED_AT, FilterField.UPDATED_AT):
        try:
            return datetime.fromisoformat(str(value).replace("Z", "+00:00"))  # naive is UTC (`comparable`)
        except ValueError:
            raise ReachoutError(
                ErrorCode.INVALID_REQUEST, f"{where} must be an ISO 8601 timestamp."
            ) from None
    if not isinstance(value, str):
        raise ReachoutError(ErrorCode.INVALID_REQUEST, f"{where} must be a string.")
    return value


def _summary(item: ConversationSummary) -> dict[str, Any]:
    return {
        "id": item.id,
        "created_at": _time(item.created_at),
        "updated_at": _time(item.updated_at),
        "user_number": item.user_number,
        "agent_number": item.agent_number,
        "variables": item.variables or None,
        "current_node_id": item.current_node_id,
        "curr_pathway_id": item.pathway_id,
        "is_active": item.is_active,
        "timed_out_at": _time(item.ended_at) if item.end_reason == "inactivity" else None,
        "message_count": item.message_count,
        "last_message": item.last_message,
        "last_message_at": _time(item.last_message_at),
        "effective_channel": item.channel,
    }


def _message(message: MessageView) -> dict[str, Any]:
    inbound = message.direction == "inbound"
    return {
        "id": message.id,
        "created_at": _time(message.created_at),
        "message": message.body,
        "from": message.from_number,
        "to": message.to_number,
        "sender": "USER" if inbound else "AGENT",
        "status": message.status,
        "error_code": message.error_code,
    }
