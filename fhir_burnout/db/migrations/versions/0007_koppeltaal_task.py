"""The Koppeltaal Tasks that brought clients to us

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 07:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "koppeltaal_task",
        sa.Column("fhir_base", sa.String(length=512), nullable=False),
        sa.Column("task_id", sa.String(length=128), nullable=False),
        sa.Column("enrolment_key", sa.String(length=64), nullable=False),
        sa.Column("definition", sa.String(length=128), nullable=False),
        sa.Column("local_task_key", sa.String(length=64), nullable=True),
        sa.Column("patient", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("version_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["enrolment_key"],
            ["enrolment.key"],
            name=op.f("fk_koppeltaal_task_enrolment_key_enrolment"),
        ),
        sa.PrimaryKeyConstraint("fhir_base", "task_id", name=op.f("pk_koppeltaal_task")),
    )
    with op.batch_alter_table("koppeltaal_task") as batch:
        batch.create_index(batch.f("ix_koppeltaal_task_enrolment_key"), ["enrolment_key"])


def downgrade() -> None:
    op.drop_table("koppeltaal_task")
