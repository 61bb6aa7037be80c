"""Where the poll of each Koppeltaal domain's Tasks got to

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 07:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "koppeltaal_poll",
        sa.Column("fhir_base", sa.String(length=512), nullable=False),
        sa.Column("seen_until", sa.String(length=40), nullable=True),
        sa.Column("succeeded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("wanted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("trace_id", sa.String(length=64), nullable=True),
        sa.Column("cause", sa.String(length=64), nullable=True),
        sa.Column("subscription", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("fhir_base", name=op.f("pk_koppeltaal_poll")),
    )


def downgrade() -> None:
    op.drop_table("koppeltaal_poll")
