"""Messages about a client's homework answer, both ways: the care professional's response,
the client's reply, notes for care professionals only (issue 21, point 3)

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-12 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "thread_message",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("response_key", sa.String(length=64), nullable=False),
        sa.Column("enrolment_key", sa.String(length=64), nullable=False),
        sa.Column("author", sa.String(length=256), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("clinician_only", sa.Boolean(), nullable=False),
        sa.Column("in_response_to", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["response_key"],
            ["response.key"],
            name=op.f("fk_thread_message_response_key_response"),
        ),
        sa.ForeignKeyConstraint(
            ["enrolment_key"],
            ["enrolment.key"],
            name=op.f("fk_thread_message_enrolment_key_enrolment"),
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_thread_message")),
    )
    with op.batch_alter_table("thread_message") as batch:
        batch.create_index(batch.f("ix_thread_message_response_key"), ["response_key"])
        batch.create_index(batch.f("ix_thread_message_enrolment_key"), ["enrolment_key"])


def downgrade() -> None:
    op.drop_table("thread_message")
