"""One poll-state table for every feed: ehr_poll replaces referral_poll and koppeltaal_poll,
their rows carried over

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-08 06:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

#: The feed each old table's rows belong to (integration.REFERRALS, KOPPELTAAL_TASKS).
REFERRALS, KOPPELTAAL_TASKS = "referrals", "koppeltaal-tasks"
#: What each old table had beside fhir_base (referral_poll: no trace, no subscription).
REFERRAL_COLUMNS = ("seen_until", "succeeded_at", "wanted_at")
KOPPELTAAL_COLUMNS = (*REFERRAL_COLUMNS, "trace_id", "cause", "subscription")


def _poll_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("fhir_base", sa.String(length=512), nullable=False),
        sa.Column("seen_until", sa.String(length=40), nullable=True),
        sa.Column("succeeded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("wanted_at", sa.DateTime(timezone=True), nullable=True),
    ]


def _trace_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("trace_id", sa.String(length=64), nullable=True),
        sa.Column("cause", sa.String(length=64), nullable=True),
        sa.Column("subscription", sa.String(length=128), nullable=True),
    ]


#: (old table, its feed, its columns beside fhir_base)
OLD_TABLES = (
    ("referral_poll", REFERRALS, REFERRAL_COLUMNS),
    ("koppeltaal_poll", KOPPELTAAL_TASKS, KOPPELTAAL_COLUMNS),
)


def _carry(source: str, target: str, feed: str, columns: tuple[str, ...]) -> None:
    """Copy the rows of one feed between its old table and ehr_poll (either way)."""
    # Table and column names are this migration's constants; the feed is a parameter.
    names = ", ".join(("fhir_base", *columns))
    if target == "ehr_poll":
        statement = f"INSERT INTO ehr_poll (feed, {names}) SELECT :feed, {names} FROM {source}"  # noqa: S608
    else:
        statement = (
            f"INSERT INTO {target} ({names}) SELECT {names} FROM ehr_poll WHERE feed = :feed"  # noqa: S608
        )
    op.get_bind().execute(sa.text(statement), {"feed": feed})


def upgrade() -> None:
    op.create_table(
        "ehr_poll",
        *_poll_columns()[:1],
        sa.Column("feed", sa.String(length=32), nullable=False),
        *_poll_columns()[1:],
        *_trace_columns(),
        sa.PrimaryKeyConstraint("fhir_base", "feed", name=op.f("pk_ehr_poll")),
    )
    for table, feed, columns in OLD_TABLES:
        _carry(table, "ehr_poll", feed, columns)
    op.drop_table("referral_poll")
    op.drop_table("koppeltaal_poll")


def downgrade() -> None:
    op.create_table(
        "referral_poll",
        *_poll_columns(),
        sa.PrimaryKeyConstraint("fhir_base", name=op.f("pk_referral_poll")),
    )
    op.create_table(
        "koppeltaal_poll",
        *_poll_columns(),
        *_trace_columns(),
        sa.PrimaryKeyConstraint("fhir_base", name=op.f("pk_koppeltaal_poll")),
    )
    for table, feed, columns in OLD_TABLES:
        _carry("ehr_poll", table, feed, columns)
    op.drop_table("ehr_poll")
