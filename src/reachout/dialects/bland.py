"""The Bland dialect, reading side: `GET /v1/sms/conversations` and `GET /v1/sms/conversations/{id}`.

Bland answers `{"data": ..., "errors": null}`, and on failure `{"data": null, "errors": [{"error": CODE,
"message": TEXT}]}`; the list carries `extra.pagination`. Scoped to the account of the `authorization` key.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Path, Request, status
from fastapi.responses import JSONResponse

from reachout.conversations import service as conversations
from reachout.conversations.listing import (
    LARGEST_INT,
    MAX_FILTERS,
    OPERATORS_FOR,
    SMALLEST_INT,
    ConversationQuery,
    ConversationSummary,
    Filter,
    FilterField,
    Operator,
    SortField,
    comparable,
)
from reachout.errors import ErrorCode, ReachoutError
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
MAX_PAGE_SIZE = 1000
MAX_FILTERS_LENGTH = 8192  # characters of `filters`, the JSON text
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
        responses={200: _answer(LIST_ANSWER), "4XX": _answer(REFUSAL)},
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
        responses={200: _answer(DETAIL_ANSWER), "4XX": _answer(REFUSAL)},
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


def _time(moment: datetime | None) -> str | None:
    return (
        None
        if moment is None
        else moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


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


# --- OpenAPI: what the routes take and answer, as the functions above implement it --------------------------

TEXT_FIELDS = (FilterField.USER_NUMBER, FilterField.AGENT_NUMBER, FilterField.CURRENT_NODE_ID)
MOMENT_FIELDS = (FilterField.CREATED_AT, FilterField.UPDATED_AT)


def _condition(fields: tuple[FilterField, ...], value: dict[str, Any]) -> dict[str, Any]:
    """One kind of condition: these fields (which take the same operators), those operators, a value."""
    operators = sorted(o.value for o in OPERATORS_FOR[fields[0]])
    return {
        "type": "object",
        "required": ["field", "operator", "value"],
        "properties": {
            "field": {"type": "string", "enum": [f.value for f in fields]},
            "operator": {"type": "string", "enum": operators},
            "value": value,
        },
    }


# The header is the security requirement's, not a parameter: Swagger UI would ask for it twice.
SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "BlandApiKey": {
        "type": "apiKey",
        "in": "header",
        "name": "authorization",
        "description": (
            "The API key as Bland sends it (`KEY`; `Bearer KEY` works too). Missing or unknown: 401."
        ),
    },
}
SECURITY: list[dict[str, list[str]]] = [{"BlandApiKey": []}]
LIST_PARAMETERS = [
    {
        "name": "page",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": LARGEST_INT, "default": 1},
        "description": "The page, from 1; one past the last is empty, with the same totals.",
    },
    {
        "name": "pageSize",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": 25},
    },
    {
        "name": "sortBy",
        "in": "query",
        "schema": {"type": "string", "enum": [f.value for f in SortField], "default": "created_at"},
    },
    {
        "name": "sortDir",
        "in": "query",
        "schema": {"type": "string", "enum": ["asc", "desc"], "default": "desc"},
        "description": "Either case.",
    },
    {
        "name": "filters",
        "in": "query",
        "description": (
            f"A JSON array of at most {MAX_FILTERS} conditions, all of which must hold, in at most "
            f"{MAX_FILTERS_LENGTH} characters. Text holds no NUL; a timestamp (ISO 8601, UTC if it names no "
            "offset) must stay within years 1 to 9999 in UTC."
        ),
        "content": {
            "application/json": {
                "schema": {
                    "type": "array",
                    "maxItems": MAX_FILTERS,
                    "items": {
                        "anyOf": [
                            _condition(TEXT_FIELDS, {"type": "string", "pattern": "^[^\\u0000]*$"}),
                            _condition(MOMENT_FIELDS, {"type": "string", "format": "date-time"}),
                            _condition(
                                (FilterField.MESSAGE_COUNT,),
                                {"type": "integer", "minimum": SMALLEST_INT, "maximum": LARGEST_INT},
                            ),
                            _condition((FilterField.IS_ACTIVE,), {"enum": [True, False, "true", "false"]}),
                        ]
                    },
                }
            }
        },
    },
]
CONVERSATION_ID_TEXT = "`convo_` and 24 hex digits; any other text names no conversation (a 404, not a 400)."
TIME = {"type": ["string", "null"], "format": "date-time"}
TEXT_OR_NULL = {"type": ["string", "null"]}
SUMMARY = {
    "type": "object",
    "required": [
        "id",
        "created_at",
        "updated_at",
        "user_number",
        "agent_number",
        "is_active",
        "message_count",
    ],
    "properties": {
        "id": {"type": "string"},
        "created_at": TIME,
        "updated_at": TIME,
        "user_number": {"type": "string"},
        "agent_number": {"type": "string"},
        "variables": {"type": ["object", "null"]},
        "current_node_id": TEXT_OR_NULL,
        "curr_pathway_id": TEXT_OR_NULL,
        "is_active": {"type": "boolean"},
        "timed_out_at": TIME,
        "message_count": {"type": "integer", "minimum": 0},
        "last_message": TEXT_OR_NULL,
        "last_message_at": TIME,
        "effective_channel": {"type": "string"},
    },
}
MESSAGE = {
    "type": "object",
    "required": ["id", "created_at", "message", "from", "to", "sender", "status", "error_code"],
    "properties": {
        "id": {"type": "string"},
        "created_at": TIME,
        "message": {"type": "string"},
        "from": TEXT_OR_NULL,
        "to": {"type": "string"},
        "sender": {"type": "string", "enum": ["USER", "AGENT"]},
        "status": {"type": "string"},
        "error_code": {"type": ["integer", "null"]},
    },
}
PAGINATION = {
    "type": "object",
    "required": ["totalItems", "totalPages", "currentPage", "pageSize"],
    "properties": {
        name: {"type": "integer", "minimum": 0}
        for name in ("totalItems", "totalPages", "currentPage", "pageSize")
    },
}
LIST_ANSWER = {
    "type": "object",
    "required": ["data", "errors", "extra"],
    "properties": {
        "data": {"type": "array", "items": SUMMARY},
        "errors": {"type": "null"},
        "extra": {"type": "object", "required": ["pagination"], "properties": {"pagination": PAGINATION}},
    },
}
DETAIL_ANSWER = {
    "type": "object",
    "required": ["data", "errors"],
    "properties": {
        "data": {
            "allOf": [
                SUMMARY,
                {
                    "type": "object",
                    "required": ["messages"],
                    "properties": {"messages": {"type": "array", "items": MESSAGE}},
                },
            ]
        },
        "errors": {"type": "null"},
    },
}
REFUSAL = {
    "type": "object",
    "required": ["data", "errors"],
    "properties": {
        "data": {"type": "null"},
        "errors": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["error", "message"],
                "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}


def _answer(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}
