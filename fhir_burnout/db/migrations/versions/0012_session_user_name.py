"""The signed-in person's name is kept with their session, encrypted, not in the cookie

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 04:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("launch_session") as batch:
        batch.add_column(sa.Column("user_name", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("launch_session") as batch:
        batch.drop_column("user_name")
