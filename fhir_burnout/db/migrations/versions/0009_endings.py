"""Why an enrolment ended, and until when its repeating measures run

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 03:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("enrolment") as batch:
        batch.add_column(sa.Column("ending_reason", sa.String(64), nullable=True))
        batch.add_column(sa.Column("measures_until", sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("enrolment") as batch:
        batch.drop_column("measures_until")
        batch.drop_column("ending_reason")
