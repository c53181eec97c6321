"""The sandbox carrier's own record: every text a virtual handset received or sent, kept across restarts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from reachout.db.base import Base


class SandboxMessage(Base):
    __tablename__ = "sandbox_messages"
    __table_args__ = (
        Index("ix_sandbox_messages_to", "to_number", "id"),
        Index("ix_sandbox_messages_from", "from_number", "id"),
        Index("ix_sandbox_messages_report_due", "next_report_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sid: Mapped[str] = mapped_column(String(34), unique=True)
    # The sender's reference for this message: a repeated send with the same reference is the same send.
    idempotency_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    direction: Mapped[str] = mapped_column(String(16))
    from_number: Mapped[str] = mapped_column(String(40))
    to_number: Mapped[str] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text)
    num_segments: Mapped[int] = mapped_column(Integer)
    final_status: Mapped[str] = mapped_column(String(16))
    final_error_code: Mapped[int | None] = mapped_column(Integer)
    reported_status: Mapped[str | None] = mapped_column(String(16))
    next_report_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
