"""A referral whose patient the EHR knows by BSN under another name or birth date is marked
for the care professional, not attached silently

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 06:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("referral") as batch:
        batch.add_column(sa.Column("identity_issue", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("referral") as batch:
        batch.drop_column("identity_issue")
