"""The event log, customers' webhook endpoints, their deliveries and attempts.

The log takes the place of message_status_events and conversation_events: their rows are copied into it
(without a view of their subject, which was not kept), so a state change has one record, not two. A
downgrade brings those tables back empty.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 15:17:27.919411
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
import uuid_utils
from alembic import op

import reachout.db.base

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=True),
        sa.Column("message_id", sa.String(length=36), nullable=True),
        sa.Column("conversation_id", sa.String(length=40), nullable=True),
        sa.Column("occurred_at", reachout.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_events_project_id_projects"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_events_conversation",
            ["conversation_id"],
            unique=False,
            sqlite_where=sa.text("conversation_id IS NOT NULL"),
            postgresql_where=sa.text("conversation_id IS NOT NULL"),
        )
        batch_op.create_index(
            "ix_events_message",
            ["message_id"],
            unique=False,
            sqlite_where=sa.text("message_id IS NOT NULL"),
            postgresql_where=sa.text("message_id IS NOT NULL"),
        )
        batch_op.create_index("ix_events_project_id_id", ["project_id", "id"], unique=False)

    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("secrets", sa.JSON(), nullable=False),
        sa.Column("event_types", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("disabled_reason", sa.Text(), nullable=True),
        sa.Column("disabled_at", reachout.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("failing_since", reachout.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", reachout.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", reachout.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_webhook_endpoints_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoints")),
        sa.UniqueConstraint("project_id", "url", name=op.f("uq_webhook_endpoints_project_id_url")),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("endpoint_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("due_at", reachout.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_expires_at", reachout.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", reachout.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", reachout.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoints.id"],
            name=op.f("fk_webhook_deliveries_endpoint_id_webhook_endpoints"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.id"],
            name=op.f("fk_webhook_deliveries_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
    )
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_webhook_deliveries_due",
            ["due_at"],
            unique=False,
            sqlite_where=sa.text("due_at IS NOT NULL"),
            postgresql_where=sa.text("due_at IS NOT NULL"),
        )
        batch_op.create_index("ix_webhook_deliveries_endpoint", ["endpoint_id", "status"], unique=False)
        batch_op.create_index(batch_op.f("ix_webhook_deliveries_event_id"), ["event_id"], unique=False)

    op.create_table(
        "webhook_attempts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=False),
        sa.Column("attempted_at", reachout.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["webhook_deliveries.id"],
            name=op.f("fk_webhook_attempts_delivery_id_webhook_deliveries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_attempts")),
    )
    with op.batch_alter_table("webhook_attempts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_webhook_attempts_delivery_id"), ["delivery_id"], unique=False)

    _copy_old_events()

    with op.batch_alter_table("message_status_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_message_status_events_message_id"))

    op.drop_table("message_status_events")
    with op.batch_alter_table("conversation_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_conversation_events_conversation_id"))

    op.drop_table("conversation_events")


def downgrade() -> None:
    op.create_table(
        "conversation_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("at", reachout.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_conversation_events_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation_events")),
    )
    with op.batch_alter_table("conversation_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_conversation_events_conversation_id"), ["conversation_id"], unique=False
        )

    op.create_table(
        "message_status_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("occurred_at", reachout.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_message_status_events_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_status_events")),
    )
    with op.batch_alter_table("message_status_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_message_status_events_message_id"), ["message_id"], unique=False)

    with op.batch_alter_table("webhook_attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_attempts_delivery_id"))

    op.drop_table("webhook_attempts")
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_deliveries_event_id"))
        batch_op.drop_index("ix_webhook_deliveries_endpoint")
        batch_op.drop_index(
            "ix_webhook_deliveries_due",
            sqlite_where=sa.text("due_at IS NOT NULL"),
            postgresql_where=sa.text("due_at IS NOT NULL"),
        )

    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_endpoints")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_project_id_id")
        batch_op.drop_index(
            "ix_events_message",
            sqlite_where=sa.text("message_id IS NOT NULL"),
            postgresql_where=sa.text("message_id IS NOT NULL"),
        )
        batch_op.drop_index(
            "ix_events_conversation",
            sqlite_where=sa.text("conversation_id IS NOT NULL"),
            postgresql_where=sa.text("conversation_id IS NOT NULL"),
        )

    op.drop_table("events")


_EVENTS = sa.table(
    "events",
    sa.column("id", sa.String),
    sa.column("type", sa.String),
    sa.column("project_id", sa.String),
    sa.column("message_id", sa.String),
    sa.column("conversation_id", sa.String),
    sa.column("occurred_at", reachout.db.base.UTCDateTime()),
    sa.column("source", sa.String),
    sa.column("details", sa.JSON),
    sa.column("data", sa.JSON),
)
_STATUS_EVENTS = sa.text(
    "SELECT e.status, e.outcome, e.source, e.error_code, e.details, e.occurred_at, e.message_id,"
    " m.project_id, m.conversation_id"
    " FROM message_status_events e JOIN messages m ON m.id = e.message_id ORDER BY e.occurred_at, e.id"
).columns(sa.column("details", sa.JSON), sa.column("occurred_at", reachout.db.base.UTCDateTime()))
_CONVERSATION_EVENTS = sa.text(
    "SELECT e.kind, e.details, e.at, e.conversation_id, c.project_id"
    " FROM conversation_events e JOIN conversations c ON c.id = e.conversation_id"
    " WHERE e.kind IN ('ended', 'agent_failed') ORDER BY e.at, e.id"
).columns(sa.column("details", sa.JSON), sa.column("at", reachout.db.base.UTCDateTime()))
_BATCH = 1000


def _copy_old_events() -> None:
    """Every status report and conversation event so far, as the log records them now (a text nobody
    answered was also a `received` status event, so `reply_received` is not copied twice)."""
    connection = op.get_bind()
    rows = []
    for (
        status,
        outcome,
        source,
        code,
        details,
        at,
        message_id,
        project_id,
        conversation_id,
    ) in connection.execute(_STATUS_EVENTS):
        if outcome == "applied":
            kind, extra = f"message.{status}", dict[str, Any]()
        elif outcome == "retry":
            kind, extra = "message.retry_scheduled", {}
        else:
            kind, extra = "message.report_ignored", {"status": status, "outcome": outcome}
        if code is not None:
            extra["error_code"] = code
        rows.append(
            {
                "id": str(uuid_utils.uuid7()),
                "type": kind,
                "project_id": project_id,
                "message_id": message_id,
                "conversation_id": conversation_id,
                "occurred_at": at,
                "source": source,
                "details": {**(details or {}), **extra},
                "data": {},
            }
        )
    for kind, details, at, conversation_id, project_id in connection.execute(_CONVERSATION_EVENTS):
        rows.append(
            {
                "id": str(uuid_utils.uuid7()),
                "type": "conversation.ended" if kind == "ended" else "conversation.agent_failed",
                "project_id": project_id,
                "message_id": None,
                "conversation_id": conversation_id,
                "occurred_at": at,
                "source": None,
                "details": details or {},
                "data": {},
            }
        )
    for start in range(0, len(rows), _BATCH):
        connection.execute(sa.insert(_EVENTS), rows[start : start + _BATCH])
