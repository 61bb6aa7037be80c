"""The priority of a care professional's Task: a safety signal is urgent or routine

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 03:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("task") as batch:
        batch.add_column(sa.Column("priority", sa.String(length=16), nullable=True))
    # Every safety alert made before the rules were data was urgent.
    op.execute("UPDATE task SET priority = 'urgent' WHERE action_id LIKE 'safety:%'")


def downgrade() -> None:
    with op.batch_alter_table("task") as batch:
        batch.drop_column("priority")
