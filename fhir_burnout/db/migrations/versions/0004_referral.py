"""Referrals taken in, one per referral identifier and EHR

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05 06:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "referral",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("fhir_base", sa.String(length=512), nullable=False),
        sa.Column("identifier_system", sa.String(length=512), nullable=False),
        sa.Column("identifier_value", sa.String(length=256), nullable=False),
        sa.Column("service_request", sa.String(length=256), nullable=True),
        sa.Column("patient", sa.String(length=128), nullable=False),
        sa.Column("enrolment_key", sa.String(length=64), nullable=False),
        sa.Column("seen_by", sa.String(length=16), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["enrolment_key"], ["enrolment.key"], name=op.f("fk_referral_enrolment_key_enrolment")
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_referral")),
        sa.UniqueConstraint(
            "fhir_base",
            "identifier_system",
            "identifier_value",
            name=op.f("uq_referral_fhir_base"),
        ),
    )
    with op.batch_alter_table("referral") as batch:
        batch.create_index(batch.f("ix_referral_enrolment_key"), ["enrolment_key"])


def downgrade() -> None:
    op.drop_table("referral")
