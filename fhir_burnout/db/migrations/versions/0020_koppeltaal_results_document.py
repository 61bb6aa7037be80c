"""The published versions of the Koppeltaal results document (draft T029): immutable once
published, with their hash, until their 30-day retention ends (issue 19)

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-10 06:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "koppeltaal_results_document",
        sa.Column("version_id", sa.String(length=32), nullable=False),
        sa.Column("fhir_base", sa.String(length=512), nullable=False),
        sa.Column("task_id", sa.String(length=128), nullable=False),
        sa.Column("html", sa.LargeBinary(), nullable=False),
        sa.Column("sha1", sa.String(length=28), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("document_reference", sa.String(length=160), nullable=True),
        sa.PrimaryKeyConstraint("version_id", name=op.f("pk_koppeltaal_results_document")),
    )
    with op.batch_alter_table("koppeltaal_results_document") as batch:
        batch.create_index(
            "ix_koppeltaal_results_document_task", ["fhir_base", "task_id"], unique=False
        )
        batch.create_index(
            batch.f("ix_koppeltaal_results_document_published_at"), ["published_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("koppeltaal_results_document") as batch:
        batch.drop_index(batch.f("ix_koppeltaal_results_document_published_at"))
        batch.drop_index("ix_koppeltaal_results_document_task")
    op.drop_table("koppeltaal_results_document")
