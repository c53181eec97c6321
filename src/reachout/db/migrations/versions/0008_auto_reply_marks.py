"""When each person was last answered automatically, per kind of answer (at most one per window).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 23:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import reachout.db.base

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "auto_reply_marks",
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("number", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("sent_at", reachout.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_auto_reply_marks_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "number", "kind", name=op.f("pk_auto_reply_marks")),
    )


def downgrade() -> None:
    op.drop_table("auto_reply_marks")
