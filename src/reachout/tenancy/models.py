"""Tenancy tables: who may call reachout, and what they own."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from reachout.db.base import Base


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ApiKey(Base):
    """An API key, stored only as the SHA-256 of its secret plus a short prefix for humans."""

    __tablename__ = "api_keys"

    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    connector_id: Mapped[str | None] = mapped_column(String(128), unique=True)
    environment: Mapped[str] = mapped_column(String(16))
    rate_limit_requests: Mapped[int] = mapped_column(Integer)
    rate_limit_seconds: Mapped[float] = mapped_column(Float)
    agent: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    conversation_settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    webhook_url: Mapped[str | None] = mapped_column(Text)
    webhook_secret: Mapped[str | None] = mapped_column(Text)
    # With a Messaging Service, Twilio sends from the service's pool (the sender is what it reports back).
    twilio_messaging_service_sid: Mapped[str | None] = mapped_column(String(34))
    # First messages wait for the recipient's sending window (08:00-21:00 local); replies never do.
    quiet_hours: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class PhoneNumber(Base):
    """A sender number provisioned to one project."""

    __tablename__ = "phone_numbers"

    number: Mapped[str] = mapped_column(String(20), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    carrier: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))
    environment: Mapped[str] = mapped_column(String(16))
    capabilities: Mapped[list[str]] = mapped_column(JSON)
    # Message segments per second this number may send; None sends as fast as the carrier takes them.
    throughput_mps: Mapped[float | None] = mapped_column(Float)
    # The 10DLC brand the number sends for, qualified by account ("acme/acme-health"), and the brand's cap.
    brand: Mapped[str | None] = mapped_column(String(130))
    brand_throughput_mps: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class UseCase(Base):
    """An SMS use case: a sender pool, its routing policies and its registrations.

    A use case taken out of the provisioning file is kept, marked deleted, so its messages stay readable and a
    send through it is told it was deleted rather than never existed.
    """

    __tablename__ = "use_cases"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean)
    sender_pool: Mapped[list[str]] = mapped_column(JSON)
    sticky_sender: Mapped[bool] = mapped_column(Boolean)
    area_code_geomatch: Mapped[bool] = mapped_column(Boolean)
    campaign: Mapped[str | None] = mapped_column(String(16))
    brand: Mapped[str] = mapped_column(String(16))
    allowed_countries: Mapped[list[str]] = mapped_column(JSON)
    twilio_messaging_service_sid: Mapped[str | None] = mapped_column(String(34))
    quiet_hours: Mapped[bool | None] = mapped_column(Boolean)  # None: as the project says
    # What answers a reply to its messages (a UseCaseReplies), and the agent setting when it is its own.
    replies: Mapped[str] = mapped_column(String(16))
    reply_agent: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    deleted_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class RateLimitState(Base):
    """The generic-cell-rate state of one project's request limit, shared by every API process."""

    __tablename__ = "rate_limit_states"

    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    theoretical_arrival: Mapped[float] = mapped_column(Float)
