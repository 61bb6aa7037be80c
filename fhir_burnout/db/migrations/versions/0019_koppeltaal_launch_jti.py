"""The HTI tokens Koppeltaal launches took (their jti, hashed), until they expire: a
replayed launch token is refused (issue 19)

Revision ID: 0019
Revises: 0018 (written as 0016 beside 0018 on another branch; chained after it when both landed)
Create Date: 2026-12-09 06:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "koppeltaal_launch_jti",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_koppeltaal_launch_jti")),
    )
    with op.batch_alter_table("koppeltaal_launch_jti") as batch:
        batch.create_index(
            batch.f("ix_koppeltaal_launch_jti_expires_at"), ["expires_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("koppeltaal_launch_jti") as batch:
        batch.drop_index(batch.f("ix_koppeltaal_launch_jti_expires_at"))
    op.drop_table("koppeltaal_launch_jti")
