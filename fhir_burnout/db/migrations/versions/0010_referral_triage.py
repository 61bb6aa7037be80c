"""Referral triage: a referral waits for a care professional's decision before anyone is
enrolled; what it said, and the decision, are kept with it

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 03:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("referral") as batch:
        # Referrals taken in before triage existed were enrolled at once: accepted.
        batch.add_column(
            sa.Column("state", sa.String(length=16), server_default="accepted", nullable=False)
        )
        batch.add_column(sa.Column("request", sa.Text(), nullable=True))
        batch.add_column(sa.Column("practice", sa.String(length=256), nullable=True))
        batch.add_column(sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("decided_by", sa.String(length=256), nullable=True))
        batch.add_column(sa.Column("decline_reason", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("decline_note", sa.Text(), nullable=True))
        batch.alter_column("enrolment_key", existing_type=sa.String(length=64), nullable=True)


def downgrade() -> None:
    # A referral without an enrolment (waiting, or declined) cannot exist before 0010.
    op.execute("DELETE FROM referral WHERE enrolment_key IS NULL")
    with op.batch_alter_table("referral") as batch:
        batch.alter_column("enrolment_key", existing_type=sa.String(length=64), nullable=False)
        for column in (
            "decline_note", "decline_reason", "decided_by", "decided_at", "practice", "request",
            "state",
        ):  # fmt: skip
            batch.drop_column(column)
