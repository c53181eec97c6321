"""Sticky senders per project and person, shared by greetings and every use case, instead of per use case.

Each person keeps the most recent of their sticky use cases' mappings in the project; a downgrade gives each
of the project's use cases the person's number.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 09:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import reachout.db.base

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

OLD = "sticky_senders_by_use_case"
NEW = "sticky_senders_by_project"


def upgrade() -> None:
    _set_aside(OLD)
    op.create_table(
        "sticky_senders",
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("recipient", sa.String(length=40), nullable=False),
        sa.Column("sender", sa.String(length=20), nullable=False),
        sa.Column("last_used", reachout.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_sticky_senders_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "recipient", name=op.f("pk_sticky_senders")),
    )
    # The latest mapping per (project, person) wins; a tie goes to the greater use case id, so one row each.
    # Use cases without sticky sender kept rows too, but they no longer make anyone's number: theirs are left.
    op.execute(
        """
        INSERT INTO sticky_senders (project_id, recipient, sender, last_used)
        SELECT u.project_id, s.recipient, s.sender, s.last_used
        FROM sticky_senders_by_use_case AS s JOIN use_cases AS u ON u.id = s.use_case_id
        WHERE u.sticky_sender AND NOT EXISTS (
            SELECT 1 FROM sticky_senders_by_use_case AS n JOIN use_cases AS nu ON nu.id = n.use_case_id
            WHERE nu.project_id = u.project_id AND nu.sticky_sender AND n.recipient = s.recipient
              AND (n.last_used > s.last_used OR (n.last_used = s.last_used AND n.use_case_id > s.use_case_id))
        )
        """
    )
    op.drop_table(OLD)


def downgrade() -> None:
    _set_aside(NEW)
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
    # Each use case of the project starts from the person's number; one whose pool lacks it passes it over.
    op.execute(
        """
        INSERT INTO sticky_senders (use_case_id, recipient, sender, last_used)
        SELECT u.id, s.recipient, s.sender, s.last_used
        FROM sticky_senders_by_project AS s JOIN use_cases AS u ON u.project_id = s.project_id
        """
    )
    op.drop_table(NEW)


def _set_aside(name: str) -> None:
    """Rename the current table so the new one can take its name and its constraints' names."""
    op.rename_table("sticky_senders", name)
    if op.get_bind().dialect.name == "postgresql":
        # PostgreSQL names a primary key's index after the constraint, and index names are per schema.
        op.execute(f"ALTER TABLE {name} RENAME CONSTRAINT pk_sticky_senders TO pk_{name}")
