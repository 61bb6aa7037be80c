"""Which care professional launched which client's KT2_Task: on a Koppeltaal domain the
practice list shows a care professional their CareTeams' clients and these

Revision ID: 0018
Revises: 0015
Create Date: 2026-12-09 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
# Written beside 0016 and 0017 (other branches of issue 19): whoever merges them chains
# this one after the last.
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "koppeltaal_launch",
        sa.Column("fhir_base", sa.String(length=512), nullable=False),
        sa.Column("practitioner", sa.String(length=160), nullable=False),
        sa.Column("task_id", sa.String(length=128), nullable=False),
        sa.Column("patient", sa.String(length=128), nullable=False),
        sa.Column("launched_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("fhir_base", "practitioner", "task_id"),
    )


def downgrade() -> None:
    op.drop_table("koppeltaal_launch")
