"""The Bland dialect, reading side: `GET /v1/sms/conversations` and `GET /v1/sms/conversations/{id}`.

Bland answers `{"data": ..., "errors": null}`, and on failure `{"data": null, "errors": [{"error": CODE,
"message": TEXT}]}`; the list carries `extra.pagination`. Scoped to the account of the `authorization` key.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, TypeVar

from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse

from reachout.conversations import service as conversations
from reachout.conversations.listing import (
    OPERATORS_FOR,
    ConversationQuery,
    ConversationSummary,
    Filter,
    FilterField,
    Operator,
    SortField,
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
    # Every other refusal, the send gates' included, is a 400 that names its code in `errors[].error`.
}
MAX_PAGE_SIZE = 1000
Choice = TypeVar("Choice", SortField, FilterField, Operator)


def error_response(error: ReachoutError) -> JSONResponse:
    """A refusal in Bland's envelope."""
    body = {"data": None, "errors": [{"error": error.code.value, "message": error.message}]}
    return JSONResponse(body, status_code=STATUS_FOR.get(error.code, status.HTTP_400_BAD_REQUEST))


BlandRoute = refusals_as(error_response)


def bland_router(directory: Directory, reader: conversations.ConversationReader) -> APIRouter:
    """The Bland-compatible routes."""
    router = APIRouter(route_class=BlandRoute, tags=["Bland"])

    @router.get("/v1/sms/conversations")
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

    @router.get("/v1/sms/conversations/{conversation_id}")
    async def get_conversation(conversation_id: str, request: Request) -> JSONResponse:
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
    page = _positive_int(params.get("page"), "page", 1, None)
    page_size = _positive_int(params.get("pageSize"), "pageSize", 25, MAX_PAGE_SIZE)
    sort_by = _choice(params.get("sortBy") or SortField.CREATED_AT.value, SortField, "sortBy")
    direction = (params.get("sortDir") or "desc").lower()
    if direction not in ("asc", "desc"):
        raise ReachoutError(ErrorCode.INVALID_REQUEST, "sortDir must be 'asc' or 'desc'.")
    filters = _filters(params.get("filters"))
    return ConversationQuery(page, page_size, sort_by, direction == "desc", filters)


def _positive_int(raw: str | None, name: str, default: int, maximum: int | None) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ReachoutError(ErrorCode.INVALID_REQUEST, f"{name} must be a whole number.") from None
    if value < 1 or (maximum is not None and value > maximum):
        limit = f" and at most {maximum}" if maximum is not None else ""
        raise ReachoutError(ErrorCode.INVALID_REQUEST, f"{name} must be at least 1{limit}.")
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
    try:
        items = json.loads(raw)
    except ValueError:
        raise ReachoutError(ErrorCode.INVALID_REQUEST, "filters must be a JSON-encoded array.") from None
    if not isinstance(items, list):
        raise ReachoutError(ErrorCode.INVALID_REQUEST, "filters must be a JSON-encoded array.")
    return tuple(_filter(item, i) for i, item in enumerate(items))


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
    return Filter(field, operator, _typed(field, item["value"], where))


def _typed(field: FilterField, value: object, where: str) -> str | bool | int | datetime:
    if field is FilterField.IS_ACTIVE:
        if isinstance(value, bool):
            return value
        if value in ("true", "false"):
            return value == "true"
        raise ReachoutError(ErrorCode.INVALID_REQUEST, f"{where}.value must be true or false.")
    if field is FilterField.MESSAGE_COUNT:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ReachoutError(ErrorCode.INVALID_REQUEST, f"{where}.value must be a whole number.")
    if field in (FilterField.CREATED_AT, FilterField.UPDATED_AT):
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise ReachoutError(
                ErrorCode.INVALID_REQUEST, f"{where}.value must be an ISO 8601 timestamp."
            ) from None
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    if not isinstance(value, str):
        raise ReachoutError(ErrorCode.INVALID_REQUEST, f"{where}.value must be a string.")
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
