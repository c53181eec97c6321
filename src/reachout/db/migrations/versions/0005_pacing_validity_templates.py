"""Pacing per sender and brand, replies before first messages, validity periods, content templates.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 13:17:27.523193
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import reachout.db.base

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pacing_states",
        sa.Column("key", sa.String(length=160), nullable=False),
        sa.Column("theoretical_arrival", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_pacing_states")),
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("priority", sa.SmallInteger(), nullable=False, server_default="1"))
        batch_op.add_column(
            sa.Column("expires_at", reachout.db.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("content_sid", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("content_variables", sa.JSON(), nullable=True))
        batch_op.drop_index(batch_op.f("ix_messages_dispatch"))
        batch_op.create_index(
            "ix_messages_dispatch", ["status", "priority", "next_attempt_at", "id"], unique=False
        )

    with op.batch_alter_table("phone_numbers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("brand", sa.String(length=130), nullable=True))
        batch_op.add_column(sa.Column("brand_throughput_mps", sa.Float(), nullable=True))
        batch_op.alter_column("throughput_mps", existing_type=sa.FLOAT(), nullable=True)

    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.add_column(sa.Column("twilio_messaging_service_sid", sa.String(length=34), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.drop_column("twilio_messaging_service_sid")

    op.execute("UPDATE phone_numbers SET throughput_mps = 1.0 WHERE throughput_mps IS NULL")
    with op.batch_alter_table("phone_numbers", schema=None) as batch_op:
        batch_op.alter_column("throughput_mps", existing_type=sa.FLOAT(), nullable=False)
        batch_op.drop_column("brand_throughput_mps")
        batch_op.drop_column("brand")

    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_dispatch")
        batch_op.create_index(batch_op.f("ix_messages_dispatch"), ["status", "next_attempt_at"], unique=False)
        batch_op.drop_column("content_variables")
        batch_op.drop_column("content_sid")
        batch_op.drop_column("expires_at")
        batch_op.drop_column("priority")

    op.drop_table("pacing_states")
