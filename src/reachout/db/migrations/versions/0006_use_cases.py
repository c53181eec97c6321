"""SMS use cases: a sender pool, its routing policies and registrations, per project.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 14:44:44.332353
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import reachout.db.base

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "use_cases",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("sender_pool", sa.JSON(), nullable=False),
        sa.Column("sticky_sender", sa.Boolean(), nullable=False),
        sa.Column("area_code_geomatch", sa.Boolean(), nullable=False),
        sa.Column("campaign", sa.String(length=16), nullable=True),
        sa.Column("brand", sa.String(length=16), nullable=False),
        sa.Column("allowed_countries", sa.JSON(), nullable=False),
        sa.Column("twilio_messaging_service_sid", sa.String(length=34), nullable=True),
        sa.Column("deleted_at", reachout.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", reachout.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", reachout.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_use_cases_project_id_projects"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_use_cases")),
    )
    with op.batch_alter_table("use_cases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_use_cases_project_id"), ["project_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("use_cases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_use_cases_project_id"))

    op.drop_table("use_cases")
