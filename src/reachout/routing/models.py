"""Routing tables: the pacing state of each paced sender and brand, and each person's number in a project."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from reachout.db.base import Base


class PacingState(Base):
    """The theoretical arrival time (epoch seconds) of one pacing key: when its line is free again."""

    __tablename__ = "pacing_states"

    key: Mapped[str] = mapped_column(String(160), primary_key=True)
    theoretical_arrival: Mapped[float] = mapped_column(Float)


class StickySender(Base):
    """A person's number in a project: the one their first messages go from, through any dialect, and when
    it was last used; one per project and person, so greetings and every use case's sends agree."""

    __tablename__ = "sticky_senders"

    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    recipient: Mapped[str] = mapped_column(String(40), primary_key=True)
    sender: Mapped[str] = mapped_column(String(20))
    last_used: Mapped[datetime]
