"""Routing tables: the pacing state of each paced sender and brand, shared by every worker process."""

from __future__ import annotations

from sqlalchemy import Float, String
from sqlalchemy.orm import Mapped, mapped_column

from reachout.db.base import Base


class PacingState(Base):
    """The theoretical arrival time (epoch seconds) of one pacing key: when its line is free again."""

    __tablename__ = "pacing_states"

    key: Mapped[str] = mapped_column(String(160), primary_key=True)
    theoretical_arrival: Mapped[float] = mapped_column(Float)
