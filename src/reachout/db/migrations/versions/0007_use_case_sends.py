"""Sends through SMS use cases, sticky senders per pool, quiet hours, and kept line-type answers.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 15:26:55.885787
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import reachout.db.base

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "line_type_answers",
        sa.Column("number", sa.String(length=20), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("valid", sa.Boolean(), nullable=False),
        sa.Column("line_type", sa.String(length=16), nullable=False),
        sa.Column("carrier_name", sa.String(length=200), nullable=True),
        sa.Column("looked_up_at", reachout.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("number", "source", name=op.f("pk_line_type_answers")),
    )
    op.create_table(
        "sticky_senders",
        sa.Column("use_case_id", sa.String(length=36), nullable=False),
        sa.Column("recipient", sa.String(length=40), nullable=False),
        sa.Column("sender", sa.String(length=20), nullable=False),
        sa.Column("last_used", reachout.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["use_case_id"],
            ["use_cases.id"],
            name=op.f("fk_sticky_senders_use_case_id_use_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("use_case_id", "recipient", name=op.f("pk_sticky_senders")),
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("use_case_id", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("quiet_hours", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.create_foreign_key(
            batch_op.f("fk_messages_use_case_id_use_cases"),
            "use_cases",
            ["use_case_id"],
            ["id"],
            ondelete="SET NULL",
        )

    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.add_column(sa.Column("quiet_hours", sa.Boolean(), nullable=False, server_default=sa.false()))

    with op.batch_alter_table("use_cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("quiet_hours", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("use_cases", schema=None) as batch_op:
        batch_op.drop_column("quiet_hours")

    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.drop_column("quiet_hours")

    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_messages_use_case_id_use_cases"), type_="foreignkey")
        batch_op.drop_column("quiet_hours")
        batch_op.drop_column("use_case_id")

    op.drop_table("sticky_senders")
    op.drop_table("line_type_answers")
