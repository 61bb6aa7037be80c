"""Outbox entries remember whose session caused them and why they wait; sessions can end
while the worker still needs their tokens

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 06:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_entry") as batch:
        # The launch session whose person caused the write: an EHR that takes writes only
        # with a user's authorisation gets it with theirs (issue 17, point 5).
        batch.add_column(sa.Column("caused_by", sa.String(64), nullable=True))
        # Why an entry cannot be delivered now (a reason code for people), or NULL.
        batch.add_column(sa.Column("waiting_for", sa.String(32), nullable=True))
        batch.create_index("ix_outbox_entry_caused_by", ["caused_by"])
    with op.batch_alter_table("launch_session") as batch:
        # Signed out (or ended) for pages, its tokens kept only for undelivered writes.
        batch.add_column(sa.Column("ended_at", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("launch_session") as batch:
        batch.drop_column("ended_at")
    with op.batch_alter_table("outbox_entry") as batch:
        batch.drop_index("ix_outbox_entry_caused_by")
        batch.drop_column("waiting_for")
        batch.drop_column("caused_by")
