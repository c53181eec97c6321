"""Replies to a use case's messages: what answers them, and the conversation they open with the message.

Use cases say what answers a reply (`none` for those already stored, as a provisioning file that does not
say gets); a conversation records who answers it and the use case whose message opened it; and a partial
index lets a reply find the use-case message it answers.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

THREAD_INDEX = "ix_messages_use_case_thread"
THREAD_WHERE = sa.text("use_case_id IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("use_cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("replies", sa.String(length=16), nullable=False, server_default="none"))
        batch_op.add_column(sa.Column("reply_agent", sa.JSON(), nullable=True))

    with op.batch_alter_table("conversations", schema=None) as batch_op:
        # Every conversation so far was answered by its agent.
        batch_op.add_column(
            sa.Column("answered_by", sa.String(length=16), nullable=False, server_default="agent")
        )
        batch_op.add_column(sa.Column("use_case_id", sa.String(length=36), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_conversations_use_case_id_use_cases"),
            "use_cases",
            ["use_case_id"],
            ["id"],
            ondelete="SET NULL",
        )

    op.create_index(
        THREAD_INDEX,
        "messages",
        ["to_number", "from_number", "handed_off_at"],
        unique=False,
        sqlite_where=THREAD_WHERE,
        postgresql_where=THREAD_WHERE,
    )


def downgrade() -> None:
    op.drop_index(THREAD_INDEX, table_name="messages")

    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_conversations_use_case_id_use_cases"), type_="foreignkey")
        batch_op.drop_column("use_case_id")
        batch_op.drop_column("answered_by")

    with op.batch_alter_table("use_cases", schema=None) as batch_op:
        batch_op.drop_column("reply_agent")
        batch_op.drop_column("replies")
