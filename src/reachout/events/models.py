"""Event tables: the log, customers' webhook endpoints, a delivery per event and endpoint, its attempts."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from reachout.db.base import Base


def _where(condition: str) -> dict[str, Any]:
    """A partial index's condition, on both backends."""
    return {"sqlite_where": text(condition), "postgresql_where": text(condition)}


class Event(Base):
    """One state change of a message, conversation or contact, with a view of its subject as it became.

    The id is a UUIDv7 (ordered by creation), the `webhook-id` of every delivery of the event.
    """

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_project_id_id", "project_id", "id"),
        Index("ix_events_message", "message_id", **_where("message_id IS NOT NULL")),
        Index("ix_events_conversation", "conversation_id", **_where("conversation_id IS NOT NULL")),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    type: Mapped[str] = mapped_column(String(40))
    # None only for a text to a number no project owns (kept for audit, never delivered).
    project_id: Mapped[str | None] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    message_id: Mapped[str | None] = mapped_column(String(36))
    conversation_id: Mapped[str | None] = mapped_column(String(40))
    occurred_at: Mapped[datetime]
    # Who reported it (a carrier, the dispatcher, a keyword…), and what they said beyond the subject's view.
    source: Mapped[str | None] = mapped_column(String(32))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class WebhookEndpoint(Base):
    """A customer's Standard Webhooks endpoint, from the provisioning file; disabled by a 410 or by failing
    for days, until an operator enables it again."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (UniqueConstraint("project_id", "url"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(Text)
    # The first signs; during a rotation each one signs (the receiver may know either).
    secrets: Mapped[list[str]] = mapped_column(JSON)
    event_types: Mapped[list[str]] = mapped_column(JSON, default=list)  # empty: every event
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    disabled_at: Mapped[datetime | None]
    # Since when every attempt has failed (None: the last one succeeded, or none was made).
    failing_since: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # due at `due_at` (or held while its endpoint is disabled)
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # every scheduled attempt failed, or the endpoint answered 410


class WebhookDelivery(Base):
    """An event on its way to one endpoint: the durable job its attempts are leased from (`kit.jobs`)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_due", "due_at", **_where("due_at IS NOT NULL")),
        Index("ix_webhook_deliveries_endpoint", "endpoint_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[datetime | None]  # None once it succeeded or failed for good
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class WebhookAttempt(Base):
    """One request to an endpoint and what came of it."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    attempted_at: Mapped[datetime]
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    response_body: Mapped[str | None] = mapped_column(Text)  # its first 2 KB
