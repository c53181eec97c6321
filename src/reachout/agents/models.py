"""Agent tables: the pathways provisioned, by id and version, so every worker process can run them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from reachout.db.base import Base


class Pathway(Base):
    """One version of a pathway graph, as provisioned (a conversation keeps the version it started on)."""

    __tablename__ = "pathways"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime]
