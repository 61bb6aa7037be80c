"""Where the reconciliation poll of each EHR got to

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05 06:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "referral_poll",
        sa.Column("fhir_base", sa.String(length=512), nullable=False),
        sa.Column("seen_until", sa.String(length=40), nullable=True),
        sa.Column("succeeded_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("fhir_base", name=op.f("pk_referral_poll")),
    )


def downgrade() -> None:
    op.drop_table("referral_poll")
