"""Conversation tables: a session between one user number and one agent number of a project."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from reachout.db.base import Base


class ConversationStatus(StrEnum):
    OPEN = "open"
    ENDED = "ended"


class Channel(StrEnum):
    SMS = "sms"
    WHATSAPP = "whatsapp"


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
    opened_at: Mapped[datetime]
    last_activity_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
