"""Conversation jobs carry a lease (owner token and expiry), as every leased row does.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 07:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import reachout.db.base

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("conversation_jobs") as batch_op:
        batch_op.add_column(sa.Column("lease_owner", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("lease_expires_at", reachout.db.base.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("conversation_jobs") as batch_op:
        batch_op.drop_column("lease_expires_at")
        batch_op.drop_column("lease_owner")
