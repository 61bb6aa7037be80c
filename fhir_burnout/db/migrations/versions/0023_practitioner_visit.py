"""When a care professional first opened a client's page on a day: where "Sinds de vorige
sessie" starts when the EHR names no last contact (issue 21; workflow/_visits.py)

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "practitioner_visit",
        sa.Column("fhir_base", sa.String(length=512), nullable=False),
        sa.Column("patient", sa.String(length=128), nullable=False),
        sa.Column("practitioner", sa.String(length=256), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "fhir_base", "patient", "practitioner", "day", name=op.f("pk_practitioner_visit")
        ),
    )


def downgrade() -> None:
    op.drop_table("practitioner_visit")
