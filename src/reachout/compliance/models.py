"""Consent tables: who has opted out of a project's messages, and when each person was last answered
automatically."""

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


class AutoReplyMark(Base):
    """When reachout last answered one person automatically, per kind of answer (a HELP answer, an opt-out
    confirmation…): within the window another request for the same answer gets none, so a stream of texts,
    forged or real, cannot make reachout send (and pay for) a reply per text."""

    __tablename__ = "auto_reply_marks"

    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    number: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    sent_at: Mapped[datetime]
