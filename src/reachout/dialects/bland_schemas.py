"""The Bland dialect's shapes as the OpenAPI document tells them: the list's parameters and their limits, the
`{data, errors}` envelopes of a page, a conversation and a refusal, and examples of each."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from reachout.conversations.listing import (
    LARGEST_INT,
    MAX_FILTERS,
    OPERATORS_FOR,
    SMALLEST_INT,
    FilterField,
    SortField,
)
from reachout.conversations.schemas import CONVERSATION_ID
from reachout.delivery.channels import Channel
from reachout.delivery.status import MessageStatus
from reachout.errors import ErrorCode
from reachout.kit.docs import answer
from reachout.kit.http import INTERNAL_ERROR_MESSAGE

MAX_PAGE_SIZE = 1000
MAX_FILTERS_LENGTH = 8192  # characters of `filters`, the JSON text


class BlandConversation(BaseModel):
    """One SMS conversation, as the list gives it."""

    model_config = ConfigDict(title="BlandConversation")

    id: str = Field(pattern=f"^{CONVERSATION_ID.pattern}$")
    created_at: datetime
    updated_at: datetime
    user_number: str
    agent_number: str
    variables: dict[str, Any] | None = Field(description="What the agent has learned; null while nothing.")
    current_node_id: str | None
    curr_pathway_id: str | None
    is_active: bool
    timed_out_at: datetime | None = Field(description="When inactivity ended it; null otherwise.")
    message_count: int = Field(ge=0)
    last_message: str | None
    last_message_at: datetime | None
    effective_channel: Channel


class BlandMessage(BaseModel):
    """One text of a conversation."""

    model_config = ConfigDict(title="BlandMessage", serialize_by_alias=True)

    id: str
    created_at: datetime
    message: str
    from_: str | None = Field(alias="from", description="The sender; null until a pool sender is chosen.")
    to: str
    sender: Literal["USER", "AGENT"]
    status: MessageStatus
    error_code: int | None


class BlandConversationDetail(BlandConversation):
    """A conversation with its messages, oldest first."""

    model_config = ConfigDict(title="BlandConversationDetail")

    messages: list[BlandMessage]


class BlandPagination(BaseModel):
    model_config = ConfigDict(title="BlandPagination", serialize_by_alias=True)

    total_items: int = Field(alias="totalItems", ge=0)
    total_pages: int = Field(alias="totalPages", ge=0)
    current_page: int = Field(alias="currentPage", ge=1)
    page_size: int = Field(alias="pageSize", ge=1, le=MAX_PAGE_SIZE)


class BlandListExtra(BaseModel):
    model_config = ConfigDict(title="BlandListExtra")

    pagination: BlandPagination


class BlandConversationPage(BaseModel):
    """`GET /v1/sms/conversations`: a page of conversations and where it is among them."""

    model_config = ConfigDict(title="BlandConversationPage")

    data: list[BlandConversation]
    errors: None
    extra: BlandListExtra


class BlandConversationAnswer(BaseModel):
    """`GET /v1/sms/conversations/{id}`: one conversation with its messages."""

    model_config = ConfigDict(title="BlandConversationAnswer")

    data: BlandConversationDetail
    errors: None


class BlandError(BaseModel):
    model_config = ConfigDict(title="BlandError")

    error: ErrorCode = Field(description="The machine code of the refusal.")
    message: str = Field(description="What was wrong, in words.")


class BlandRefusal(BaseModel):
    """Any refusal: no data, and at least one error."""

    model_config = ConfigDict(title="BlandRefusal")

    data: None
    errors: list[BlandError] = Field(min_length=1)


# --- Examples -----------------------------------------------------------------------------------------------

CONVERSATION_EXAMPLE: dict[str, Any] = {
    "id": "convo_01963c4e8b1a7c3e9f003a6f",
    "created_at": "2026-06-26T14:03:11.482Z",
    "updated_at": "2026-06-26T14:05:40.107Z",
    "user_number": "+14155551234",
    "agent_number": "+14155550100",
    "variables": {"appointment_time": "3pm"},
    "current_node_id": "confirm",
    "curr_pathway_id": "appointment-reminder",
    "is_active": True,
    "timed_out_at": None,
    "message_count": 3,
    "last_message": "Of course - I've rescheduled your appointment to 3pm tomorrow. See you then!",
    "last_message_at": "2026-06-26T14:05:40.107Z",
    "effective_channel": "sms",
}
MESSAGES_EXAMPLE = [
    {
        "id": "01963c4e-8b1a-7c3e-9f00-3a6f0c2d4e51",
        "created_at": "2026-06-26T14:03:11.482Z",
        "message": "Hi Jane, your appointment is confirmed for tomorrow at 2pm. "
        "Reply to this message if you need to reschedule.",
        "from": "+14155550100",
        "to": "+14155551234",
        "sender": "AGENT",
        "status": "delivered",
        "error_code": None,
    },
    {
        "id": "01963c4f-2d40-7a11-8c52-5b7e1f0a9c33",
        "created_at": "2026-06-26T14:05:02.913Z",
        "message": "Can I move it to 3pm instead?",
        "from": "+14155551234",
        "to": "+14155550100",
        "sender": "USER",
        "status": "received",
        "error_code": None,
    },
    {
        "id": "01963c4f-c26b-7f08-b3d4-0e9a6c5d2b17",
        "created_at": "2026-06-26T14:05:40.107Z",
        "message": CONVERSATION_EXAMPLE["last_message"],
        "from": "+14155550100",
        "to": "+14155551234",
        "sender": "AGENT",
        "status": "sent",
        "error_code": None,
    },
]
PAGE_EXAMPLE = {
    "data": [CONVERSATION_EXAMPLE],
    "errors": None,
    "extra": {"pagination": {"totalItems": 1, "totalPages": 1, "currentPage": 1, "pageSize": 25}},
}
DETAIL_EXAMPLE = {"data": CONVERSATION_EXAMPLE | {"messages": MESSAGES_EXAMPLE}, "errors": None}


def refusal(code: ErrorCode, message: str) -> dict[str, Any]:
    """A refusal's body, as `bland.error_response` writes it."""
    return {"data": None, "errors": [{"error": code.value, "message": message}]}


UNAUTHENTICATED = answer(
    "Missing or invalid API key.",
    BlandRefusal,
    refusal(ErrorCode.UNAUTHENTICATED, "Invalid API key."),
)
INTERNAL_ERROR = answer(
    "Unexpected server error; the connection is closed.",
    BlandRefusal,
    refusal(ErrorCode.INTERNAL_ERROR, INTERNAL_ERROR_MESSAGE),
)
LIST_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: answer("A page of the caller's conversations.", BlandConversationPage, PAGE_EXAMPLE),
    400: answer(
        "A parameter it cannot use: `page` or `pageSize` not a whole number in range, an unknown `sortBy` or "
        "`sortDir`, `filters` that is not an array of conditions it can apply.",
        BlandRefusal,
        refusal(ErrorCode.INVALID_REQUEST, "sortDir must be 'asc' or 'desc'."),
    ),
    401: UNAUTHENTICATED,
    500: INTERNAL_ERROR,
}
DETAIL_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: answer("The conversation with its messages, oldest first.", BlandConversationAnswer, DETAIL_EXAMPLE),
    401: UNAUTHENTICATED,
    404: answer(
        "No such conversation among the caller's.",
        BlandRefusal,
        refusal(ErrorCode.NOT_FOUND, f"Conversation '{CONVERSATION_EXAMPLE['id']}' not found."),
    ),
    500: INTERNAL_ERROR,
}

# --- Parameters ---------------------------------------------------------------------------------------------

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
                },
                "example": [
                    {"field": "is_active", "operator": "eq", "value": True},
                    {"field": "created_at", "operator": "gte", "value": "2026-06-01T00:00:00Z"},
                ],
            }
        },
    },
]
CONVERSATION_ID_TEXT = "`convo_` and 24 hex digits; any other text names no conversation (a 404, not a 400)."
