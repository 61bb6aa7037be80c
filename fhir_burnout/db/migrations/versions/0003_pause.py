"""A programme can be paused: Tasks remember where they were, and a paused enrolment is
still the one of its track

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05 05:40:00
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ACTIVE = "status = 'active'"
_CURRENT = "status IN ('active', 'on-hold')"


def _index(batch: Any, where: str) -> None:
    batch.create_index(
        "uq_enrolment_active",
        ["fhir_base", "patient", "track"],
        unique=True,
        sqlite_where=sa.text(where),
        postgresql_where=sa.text(where),
    )


def upgrade() -> None:
    with op.batch_alter_table("task") as batch:
        batch.add_column(sa.Column("held_from", sa.String(length=16), nullable=True))
    with op.batch_alter_table("enrolment") as batch:
        batch.drop_index("uq_enrolment_active")
        _index(batch, _CURRENT)


def downgrade() -> None:
    with op.batch_alter_table("enrolment") as batch:
        batch.drop_index("uq_enrolment_active")
        _index(batch, _ACTIVE)
    with op.batch_alter_table("task") as batch:
        batch.drop_column("held_from")
