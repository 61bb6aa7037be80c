"""Notes for the client, invitations, the enrolment a switch carries on from, and a poll
a notification asks for

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 07:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("enrolment") as batch:
        batch.add_column(sa.Column("follows", sa.String(length=64), nullable=True))
    with op.batch_alter_table("referral_poll") as batch:
        batch.add_column(sa.Column("wanted_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "note",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("enrolment_key", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("author", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["enrolment_key"], ["enrolment.key"], name=op.f("fk_note_enrolment_key_enrolment")
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_note")),
    )
    with op.batch_alter_table("note") as batch:
        batch.create_index(batch.f("ix_note_enrolment_key"), ["enrolment_key"])
    op.create_table(
        "invitation",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("enrolment_key", sa.String(length=64), nullable=False),
        sa.Column("fhir_base", sa.String(length=512), nullable=False),
        sa.Column("patient", sa.String(length=128), nullable=False),
        sa.Column("task_key", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["enrolment_key"],
            ["enrolment.key"],
            name=op.f("fk_invitation_enrolment_key_enrolment"),
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_invitation")),
    )
    with op.batch_alter_table("invitation") as batch:
        batch.create_index(batch.f("ix_invitation_enrolment_key"), ["enrolment_key"])


def downgrade() -> None:
    op.drop_table("invitation")
    op.drop_table("note")
    with op.batch_alter_table("referral_poll") as batch:
        batch.drop_column("wanted_at")
    with op.batch_alter_table("enrolment") as batch:
        batch.drop_column("follows")
