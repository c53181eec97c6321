"""Message tables. A queued message row is the outbox: the dispatcher sends from it, so nothing is lost."""

from __future__ import annotations

from datetime import datetime
from enum import IntEnum, StrEnum

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, SmallInteger, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from reachout.db.base import Base


class Direction(StrEnum):
    OUTBOUND = "outbound"
    INBOUND = "inbound"


class SendPriority(IntEnum):
    """Which queued messages a busy sender sends first: lower goes first."""

    REPLY = 0  # someone is waiting for it, in an open conversation
    FIRST_MESSAGE = 1


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        # The dispatcher's claim walks exactly this, in this order: queued rows, replies first, then by time.
        Index("ix_messages_dispatch", "status", "priority", "next_attempt_at", "id"),
        # The person's reply finds the use-case message it answers: the last one sent them from that number.
        Index(
            "ix_messages_use_case_thread",
            "to_number",
            "from_number",
            "handed_off_at",
            sqlite_where=text("use_case_id IS NOT NULL"),
            postgresql_where=text("use_case_id IS NOT NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # None only for an inbound text to a number no project owns (kept, never answered).
    project_id: Mapped[str | None] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    conversation_id: Mapped[str | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="SET NULL"), index=True
    )
    # Sent through an SMS use case: its sender is chosen from the use case's pool when it is dispatched.
    use_case_id: Mapped[str | None] = mapped_column(ForeignKey("use_cases.id", ondelete="SET NULL"))
    direction: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(16))
    from_number: Mapped[str | None] = mapped_column(String(40))
    to_number: Mapped[str] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    carrier: Mapped[str | None] = mapped_column(String(32))
    carrier_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    num_segments: Mapped[int] = mapped_column(Integer)
    encoding: Mapped[str] = mapped_column(String(8))
    error_code: Mapped[int | None] = mapped_column(Integer)
    error_message: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    priority: Mapped[int] = mapped_column(SmallInteger, default=SendPriority.FIRST_MESSAGE)
    # Still queued at this instant, it is canceled (error 30036) rather than sent late.
    expires_at: Mapped[datetime | None]
    # Held outside the recipient's sending window (compliance.quiet_hours), however often it is retried.
    quiet_hours: Mapped[bool] = mapped_column(Boolean, default=False)
    # A carrier content template (Twilio ContentSid) and its variables, sent instead of the body.
    content_sid: Mapped[str | None] = mapped_column(String(64))
    content_variables: Mapped[dict[str, str] | None] = mapped_column(JSON)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None]
    handed_off_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    errored_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
