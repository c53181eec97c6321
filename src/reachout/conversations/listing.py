"""Reading conversations: a page of an account's conversations (sorted, filtered), or one with its messages.

The shapes are reachout's own; dialects (Bland's `GET /v1/sms/conversations`) translate them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from reachout.errors import ErrorCode, ReachoutError

MAX_FILTERS = 20  # conditions in one query; the seven fields with a range on each fit well within it
# What a 64-bit integer (PostgreSQL's BIGINT, SQLite's INTEGER) holds: no value past them can be bound.
SMALLEST_INT, LARGEST_INT = -(2**63), 2**63 - 1


class SortField(StrEnum):
    CREATED_AT = "created_at"
    UPDATED_AT = "updated_at"
    USER_NUMBER = "user_number"
    AGENT_NUMBER = "agent_number"
    IS_ACTIVE = "is_active"
    MESSAGE_COUNT = "message_count"


class FilterField(StrEnum):
    CREATED_AT = "created_at"
    UPDATED_AT = "updated_at"
    USER_NUMBER = "user_number"
    AGENT_NUMBER = "agent_number"
    IS_ACTIVE = "is_active"
    MESSAGE_COUNT = "message_count"
    CURRENT_NODE_ID = "current_node_id"


class Operator(StrEnum):
    EQ = "eq"
    CONTAINS = "contains"
    STARTS_WITH = "startsWith"
    ENDS_WITH = "endsWith"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"


TEXT_OPERATORS = frozenset({Operator.EQ, Operator.CONTAINS, Operator.STARTS_WITH, Operator.ENDS_WITH})
ORDER_OPERATORS = frozenset({Operator.EQ, Operator.GT, Operator.GTE, Operator.LT, Operator.LTE})
OPERATORS_FOR: dict[FilterField, frozenset[Operator]] = {
    FilterField.CREATED_AT: ORDER_OPERATORS,
    FilterField.UPDATED_AT: ORDER_OPERATORS,
    FilterField.USER_NUMBER: TEXT_OPERATORS,
    FilterField.AGENT_NUMBER: TEXT_OPERATORS,
    FilterField.IS_ACTIVE: frozenset({Operator.EQ}),
    FilterField.MESSAGE_COUNT: ORDER_OPERATORS,
    FilterField.CURRENT_NODE_ID: TEXT_OPERATORS,
}


@dataclass(frozen=True)
class Filter:
    """One condition; `value` is already of the field's type (str, bool, int or datetime)."""

    field: FilterField
    operator: Operator
    value: str | bool | int | datetime


@dataclass(frozen=True)
class ConversationQuery:
    page: int = 1
    page_size: int = 25
    sort_by: SortField = SortField.CREATED_AT
    descending: bool = True
    filters: tuple[Filter, ...] = ()

    @property
    def offset(self) -> int:
        """How many matching conversations come before this page."""
        return (self.page - 1) * self.page_size


def _invalid(message: str) -> ReachoutError:
    return ReachoutError(ErrorCode.INVALID_REQUEST, message)


def comparable(value: str | bool | int | datetime, where: str) -> str | bool | int | datetime:
    """`value` as a query can compare it with what is stored, or a refusal naming `where`.

    Text holds no NUL (PostgreSQL's text cannot) and no lone surrogate (it must encode as UTF-8); an integer
    fits in 64 bits; a moment is in UTC (naive means UTC) and stays within years 1 to 9999 there.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not SMALLEST_INT <= value <= LARGEST_INT:
            raise _invalid(f"{where} must be a whole number from {SMALLEST_INT} to {LARGEST_INT}.")
        return value
    if isinstance(value, datetime):
        try:
            return (value if value.tzinfo is not None else value.replace(tzinfo=UTC)).astimezone(UTC)
        except OverflowError:
            raise _invalid(
                f"{where} must fall between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z once in UTC."
            ) from None
    if "\x00" in value:
        raise _invalid(f"{where} must not contain a NUL character (\\u0000).")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _invalid(
            f"{where} must be valid Unicode text (a lone surrogate such as \\ud800 is not)."
        ) from None
    return value


@dataclass(frozen=True)
class ConversationSummary:
    id: str
    channel: str
    user_number: str
    agent_number: str
    created_at: datetime
    updated_at: datetime
    is_active: bool
    variables: dict[str, Any]
    current_node_id: str | None
    pathway_id: str | None
    message_count: int
    last_message: str | None
    last_message_at: datetime | None
    ended_at: datetime | None
    end_reason: str | None


@dataclass(frozen=True)
class ConversationPage:
    items: tuple[ConversationSummary, ...]
    total: int
    query: ConversationQuery

    @property
    def total_pages(self) -> int:
        return (self.total + self.query.page_size - 1) // self.query.page_size
