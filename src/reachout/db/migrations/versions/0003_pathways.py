"""Pathways: provisioned pathway graphs by id and version, readable by every worker.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 12:08:01.964264
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import reachout.db.base

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pathways",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("updated_at", reachout.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", "version", name=op.f("pk_pathways")),
    )


def downgrade() -> None:
    op.drop_table("pathways")
