"""All SQL of reading conversations for Bland's listing and detail: pages, filters, message counts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from reachout.conversations.listing import (
    ConversationQuery,
    ConversationSummary,
    Filter,
    FilterField,
    Operator,
    SortField,
)
from reachout.conversations.models import Conversation, ConversationStatus
from reachout.messaging.models import Message
from reachout.tenancy.models import Project


def _message_stats() -> Any:
    """Per conversation: how many messages, and when the last one was created."""
    return (
        select(
            Message.conversation_id.label("conversation_id"),
            func.count().label("message_count"),
            func.max(Message.created_at).label("last_message_at"),
        )
        .where(Message.conversation_id.is_not(None))
        .group_by(Message.conversation_id)
        .subquery()
    )


async def page_for_account(
    session: AsyncSession, account_id: str, query: ConversationQuery
) -> tuple[list[ConversationSummary], int]:
    """One page of an account's conversations and how many match in all."""
    stats = _message_stats()
    # BIGINT, as COUNT is: the filter's value is bound as a 64-bit integer on PostgreSQL, not a 32-bit one.
    message_count = func.coalesce(stats.c.message_count, 0, type_=BigInteger)
    columns: dict[Any, Any] = {
        SortField.CREATED_AT: Conversation.opened_at,
        SortField.UPDATED_AT: Conversation.last_activity_at,
        SortField.USER_NUMBER: Conversation.user_number,
        SortField.AGENT_NUMBER: Conversation.agent_number,
        SortField.IS_ACTIVE: Conversation.status == ConversationStatus.OPEN,
        SortField.MESSAGE_COUNT: message_count,
        FilterField.CURRENT_NODE_ID: Conversation.agent_state["node"].as_string(),
    }
    conditions = [Project.account_id == account_id, *(_condition(columns[f.field], f) for f in query.filters)]
    base = (
        select(Conversation, message_count.label("message_count"), stats.c.last_message_at)
        .join(Project, Project.id == Conversation.project_id)
        .outerjoin(stats, stats.c.conversation_id == Conversation.id)
        .where(*conditions)
    )
    total = (await session.execute(select(func.count()).select_from(base.subquery()))).scalar_one()
    if query.offset >= total:
        return [], total  # past the last page (an OFFSET beyond 64 bits could not even be bound)
    order = columns[query.sort_by]
    rows = await session.execute(
        base.order_by(order.desc() if query.descending else order.asc(), Conversation.id)
        .limit(query.page_size)
        .offset(query.offset)
    )
    found = rows.all()
    last_bodies = await _last_bodies(session, [conversation.id for conversation, _, _ in found])
    return [
        _summary(conversation, count, last_at, last_bodies.get(conversation.id))
        for conversation, count, last_at in found
    ], total


async def summary_for_account(
    session: AsyncSession, account_id: str, conversation_id: str
) -> ConversationSummary | None:
    """One of an account's conversations, or None (also when it belongs to another account)."""
    stats = _message_stats()
    row = (
        await session.execute(
            select(Conversation, func.coalesce(stats.c.message_count, 0), stats.c.last_message_at)
            .join(Project, Project.id == Conversation.project_id)
            .outerjoin(stats, stats.c.conversation_id == Conversation.id)
            .where(Project.account_id == account_id, Conversation.id == conversation_id)
        )
    ).first()
    if row is None:
        return None
    conversation, count, last_at = row
    last = await _last_bodies(session, [conversation.id])
    return _summary(conversation, count, last_at, last.get(conversation.id))


async def _last_bodies(session: AsyncSession, conversation_ids: Sequence[str]) -> dict[str, str]:
    if not conversation_ids:
        return {}
    rows = await session.execute(
        select(Message.conversation_id, Message.body)
        .where(Message.conversation_id.in_(list(conversation_ids)))
        .order_by(Message.created_at, Message.id)
    )
    # Later rows win: the most recent.
    return {conversation_id: body for conversation_id, body in rows if conversation_id is not None}


def _condition(column: Any, condition: Filter) -> Any:
    value = condition.value
    match condition.operator:
        case Operator.EQ:
            return column == value
        case Operator.CONTAINS:
            return column.contains(value, autoescape=True)
        case Operator.STARTS_WITH:
            return column.startswith(value, autoescape=True)
        case Operator.ENDS_WITH:
            return column.endswith(value, autoescape=True)
        case Operator.GT:
            return column > value
        case Operator.GTE:
            return column >= value
        case Operator.LT:
            return column < value
        case Operator.LTE:
            return column <= value


def _summary(
    conversation: Conversation, message_count: int, last_message_at: datetime | None, last_message: str | None
) -> ConversationSummary:
    agent = conversation.agent or {}
    return ConversationSummary(
        id=conversation.id,
        channel=conversation.channel,
        user_number=conversation.user_number,
        agent_number=conversation.agent_number,
        created_at=conversation.opened_at,
        updated_at=conversation.last_activity_at,
        is_active=conversation.status == ConversationStatus.OPEN,
        variables=dict(conversation.variables or {}),
        current_node_id=(conversation.agent_state or {}).get("node"),
        pathway_id=agent.get("pathway"),
        message_count=int(message_count),
        last_message=last_message,
        last_message_at=last_message_at,
        ended_at=conversation.ended_at,
        end_reason=conversation.end_reason,
    )
