"""Consent tables: who has opted out of a project's messages, with the keyword and the time."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from reachout.db.base import Base


class OptOut(Base):
    """A number that opted out of one project's messages; deleted when it opts back in."""

    __tablename__ = "opt_outs"

    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    number: Mapped[str] = mapped_column(String(20), primary_key=True)
    keyword: Mapped[str] = mapped_column(String(32))  # the keyword (STOP, OPT OUT, …) or a carrier's code
    opted_out_at: Mapped[datetime]
