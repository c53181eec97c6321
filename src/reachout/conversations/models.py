"""Conversation tables: a session between one user number and one agent number of a project."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from reachout.db.base import Base


class ConversationStatus(StrEnum):
    OPEN = "open"
    ENDED = "ended"


class AnsweredBy(StrEnum):
    """Who answers the person's texts in a conversation, fixed when it opens."""

    AGENT = "agent"  # the conversation's agent takes a turn
    NOBODY = "nobody"  # each text is stored and a `reply_received` event recorded, for the project to act on


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (
        # At most one open session per key; the same index finds the open sessions of a batch of users.
        Index(
            "uq_conversations_open_session",
            "project_id",
            "user_number",
            "agent_number",
            "channel",
            unique=True,
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
        Index("ix_conversations_user_recent", "project_id", "user_number", "opened_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16))
    agent_number: Mapped[str] = mapped_column(String(20))
    user_number: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(16))
    end_reason: Mapped[str | None] = mapped_column(String(32))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    # The agent the conversation runs with, fixed when it opens (a pathway keeps its version to the end).
    agent: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    answered_by: Mapped[str] = mapped_column(String(16), default=AnsweredBy.AGENT)
    # The use case whose message the person answered, when that reply opened the conversation.
    use_case_id: Mapped[str | None] = mapped_column(ForeignKey("use_cases.id", ondelete="SET NULL"))
    variables: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    agent_state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    opened_at: Mapped[datetime]
    last_activity_at: Mapped[datetime]
    # The person's first reply: from then on the inactivity timers run.
    engaged_at: Mapped[datetime | None]
    # Texts from the person received up to this time have had their agent turn.
    answered_through: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]


class JobKind(StrEnum):
    """What a conversation is waiting for."""

    TURN = "turn"  # the agent's answer to the person's latest texts (after the debounce window)
    WARN = "inactivity_warning"  # no activity for the inactivity period: send the warning
    EXPIRE = "inactivity_end"  # no reply to the warning in time: end the conversation


class ConversationJob(Base):
    """A durable timer of a conversation: at most one of each kind, fired once by the worker that leases it.

    A worker leases a due job (`kit.jobs`: `due_at` pushed past the lease, the attempt counted, its token
    stamped); the job is deleted in the transaction that applies its effect if that token is still on it, so
    a crashed worker's job fires again once its lease expires, and a job moved meanwhile (a newer text) is
    not finished by the old lease.
    """

    __tablename__ = "conversation_jobs"
    __table_args__ = (UniqueConstraint("conversation_id", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    due_at: Mapped[datetime] = mapped_column(index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
