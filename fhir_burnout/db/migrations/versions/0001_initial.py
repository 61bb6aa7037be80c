"""Web sessions, programme state and the outbox

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-26 01:29:19.688930
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


# long: a migration is the record of a schema as it was shipped, one statement per table;
# it is never edited, so splitting it would only hide what the first release created.
def upgrade() -> None:
    op.create_table(
        "delivered_resource",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("fhir_base", sa.String(length=512), nullable=False),
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("fhir_id", sa.String(length=128), nullable=False),
        sa.Column("version_id", sa.String(length=128), nullable=True),
        sa.Column("resource", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_delivered_resource")),
    )
    op.create_table(
        "enrolment",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("fhir_base", sa.String(length=512), nullable=False),
        sa.Column("patient", sa.String(length=128), nullable=False),
        sa.Column("track", sa.String(length=64), nullable=False),
        sa.Column("plan_definition", sa.String(length=512), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("author", sa.String(length=256), nullable=True),
        sa.Column("practice", sa.String(length=256), nullable=True),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_group_key", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_enrolment")),
    )
    with op.batch_alter_table("enrolment", schema=None) as batch_op:
        batch_op.create_index(
            "uq_enrolment_active",
            ["fhir_base", "patient", "track"],
            unique=True,
            sqlite_where=sa.text("status = 'active'"),
            postgresql_where=sa.text("status = 'active'"),
        )

    op.create_table(
        "launch_session",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("fhir_base", sa.String(length=512), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("patient", sa.String(length=128), nullable=True),
        sa.Column("encounter", sa.String(length=128), nullable=True),
        sa.Column("fhir_user", sa.String(length=512), nullable=True),
        sa.Column("need_patient_banner", sa.Boolean(), nullable=False),
        sa.Column("smart_style_url", sa.String(length=512), nullable=True),
        sa.Column("locale", sa.String(length=16), nullable=True),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("not_granted", sa.Text(), nullable=False),
        sa.Column("access_token", sa.LargeBinary(), nullable=False),
        sa.Column("refresh_token", sa.LargeBinary(), nullable=True),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_launch_session")),
    )
    op.create_table(
        "outbox_entry",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("fhir_base", sa.String(length=512), nullable=False),
        sa.Column("partition", sa.String(length=640), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_owner", sa.String(length=128), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_entry")),
        sa.UniqueConstraint("key", name=op.f("uq_outbox_entry_key")),
    )
    with op.batch_alter_table("outbox_entry", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_entry_partition_id", ["partition", "id"], unique=False)
        batch_op.create_index(
            "ix_outbox_entry_state_next", ["state", "next_attempt_at"], unique=False
        )

    op.create_table(
        "pending_launch",
        sa.Column("state", sa.String(length=128), nullable=False),
        sa.Column("browser_id", sa.String(length=64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("state", name=op.f("pk_pending_launch")),
    )
    with op.batch_alter_table("pending_launch", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_pending_launch_browser_id"), ["browser_id"], unique=False
        )

    op.create_table(
        "enrolment_phase",
        sa.Column("enrolment_key", sa.String(length=64), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("unlock", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("unlocked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("unlocked_by", sa.String(length=256), nullable=True),
        sa.ForeignKeyConstraint(
            ["enrolment_key"],
            ["enrolment.key"],
            name=op.f("fk_enrolment_phase_enrolment_key_enrolment"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("enrolment_key", "code", name=op.f("pk_enrolment_phase")),
    )
    op.create_table(
        "outbox_event",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("what", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["outbox_entry.id"],
            name=op.f("fk_outbox_event_entry_id_outbox_entry"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_event")),
    )
    with op.batch_alter_table("outbox_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outbox_event_entry_id"), ["entry_id"], unique=False)

    op.create_table(
        "task",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("enrolment_key", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("action_id", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("phase", sa.String(length=64), nullable=True),
        sa.Column("definition", sa.String(length=512), nullable=False),
        sa.Column("title", sa.String(length=256), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("owner", sa.String(length=256), nullable=False),
        sa.Column("output_key", sa.String(length=64), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["enrolment_key"],
            ["enrolment.key"],
            name=op.f("fk_task_enrolment_key_enrolment"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_task")),
    )
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_task_enrolment_key"), ["enrolment_key"], unique=False)

    op.create_table(
        "draft",
        sa.Column("task_key", sa.String(length=64), nullable=False),
        sa.Column("answers", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["task_key"], ["task.key"], name=op.f("fk_draft_task_key_task"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("task_key", name=op.f("pk_draft")),
    )
    op.create_table(
        "response",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("task_key", sa.String(length=64), nullable=True),
        sa.Column("enrolment_key", sa.String(length=64), nullable=False),
        sa.Column("questionnaire", sa.String(length=512), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("resource", sa.Text(), nullable=False),
        sa.Column("scores", sa.Text(), nullable=False),
        sa.Column("authored", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["enrolment_key"], ["enrolment.key"], name=op.f("fk_response_enrolment_key_enrolment")
        ),
        sa.ForeignKeyConstraint(
            ["task_key"], ["task.key"], name=op.f("fk_response_task_key_task")
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_response")),
    )
    with op.batch_alter_table("response", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_response_enrolment_key"), ["enrolment_key"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_response_task_key"), ["task_key"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("response", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_response_task_key"))
        batch_op.drop_index(batch_op.f("ix_response_enrolment_key"))

    op.drop_table("response")
    op.drop_table("draft")
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_task_enrolment_key"))

    op.drop_table("task")
    with op.batch_alter_table("outbox_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_event_entry_id"))

    op.drop_table("outbox_event")
    op.drop_table("enrolment_phase")
    with op.batch_alter_table("pending_launch", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pending_launch_browser_id"))

    op.drop_table("pending_launch")
    with op.batch_alter_table("outbox_entry", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_entry_state_next")
        batch_op.drop_index("ix_outbox_entry_partition_id")

    op.drop_table("outbox_entry")
    op.drop_table("launch_session")
    with op.batch_alter_table("enrolment", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_enrolment_active",
            sqlite_where=sa.text("status = 'active'"),
            postgresql_where=sa.text("status = 'active'"),
        )

    op.drop_table("enrolment")
    op.drop_table("delivered_resource")
