"""Conversations: the agent and its state, turns and inactivity timers as durable jobs, opt-outs.

Existing rows get empty JSON objects for the new columns.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 11:57:10.501237
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import reachout.db.base

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "opt_outs",
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("number", sa.String(length=20), nullable=False),
        sa.Column("keyword", sa.String(length=32), nullable=False),
        sa.Column("opted_out_at", reachout.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_opt_outs_project_id_projects"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("project_id", "number", name=op.f("pk_opt_outs")),
    )
    op.create_table(
        "conversation_jobs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("conversation_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("due_at", reachout.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", reachout.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_conversation_jobs_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation_jobs")),
        sa.UniqueConstraint(
            "conversation_id", "kind", name=op.f("uq_conversation_jobs_conversation_id_kind")
        ),
    )
    with op.batch_alter_table("conversation_jobs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_conversation_jobs_due_at"), ["due_at"], unique=False)

    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("agent", sa.JSON(), nullable=False, server_default="{}"))
        batch_op.add_column(sa.Column("variables", sa.JSON(), nullable=False, server_default="{}"))
        batch_op.add_column(sa.Column("agent_state", sa.JSON(), nullable=False, server_default="{}"))
        batch_op.add_column(
            sa.Column("engaged_at", reachout.db.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("answered_through", reachout.db.base.UTCDateTime(timezone=True), nullable=True)
        )

    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("conversation_settings", sa.JSON(), nullable=False, server_default="{}")
        )


def downgrade() -> None:
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.drop_column("conversation_settings")

    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_column("answered_through")
        batch_op.drop_column("engaged_at")
        batch_op.drop_column("agent_state")
        batch_op.drop_column("variables")
        batch_op.drop_column("agent")

    with op.batch_alter_table("conversation_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_conversation_jobs_due_at"))

    op.drop_table("conversation_jobs")
    op.drop_table("opt_outs")
