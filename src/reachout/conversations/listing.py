"""Reading conversations: a page of an account's conversations (sorted, filtered), or one with its messages.

The shapes are reachout's own; dialects (Bland's `GET /v1/sms/conversations`) translate them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


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
