"""Routing tables: the pacing state of each paced sender and brand, and each use case's sticky senders."""

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
    """The number a recipient was last sent from through a use case's pool, and when."""

    __tablename__ = "sticky_senders"

    use_case_id: Mapped[str] = mapped_column(ForeignKey("use_cases.id", ondelete="CASCADE"), primary_key=True)
    recipient: Mapped[str] = mapped_column(String(40), primary_key=True)
    sender: Mapped[str] = mapped_column(String(20))
    last_used: Mapped[datetime]
