"""Phones tables: what line-type lookups answered, kept per number so each is paid for once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, String
from sqlalchemy.orm import Mapped, mapped_column

from reachout.db.base import Base


class LineTypeAnswer(Base):
    """One lookup service's answer about one number."""

    __tablename__ = "line_type_answers"

    number: Mapped[str] = mapped_column(String(20), primary_key=True)
    source: Mapped[str] = mapped_column(String(16), primary_key=True)  # the lookup that answered
    valid: Mapped[bool] = mapped_column(Boolean)
    line_type: Mapped[str] = mapped_column(String(16))
    carrier_name: Mapped[str | None] = mapped_column(String(200))
    looked_up_at: Mapped[datetime]
