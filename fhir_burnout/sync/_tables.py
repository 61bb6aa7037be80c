"""The outbox: every write for the EHR, committed locally first, delivered by workers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from fhir_burnout.db import Base


class OutboxEntry(Base):
    """One change for the EHR: a transaction to deliver, in order within its partition."""

    __tablename__ = "outbox_entry"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)  # idempotency key
    fhir_base: Mapped[str] = mapped_column(String(512))
    #: delivered in order within a partition (a patient), concurrently across partitions
    partition: Mapped[str] = mapped_column(String(640))
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[str] = mapped_column(Text)  # JSON: the operations (see sync._bundle)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: the launch session whose person caused this write (None: the app itself, e.g. a
    #: referral or the weekly sweep); a user-writes EHR gets the write with their tokens
    caused_by: Mapped[str | None] = mapped_column(String(64), index=True)
    #: why the entry cannot be delivered now (a reason code, see sync.WAITING), or None
    waiting_for: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (
        Index("ix_outbox_entry_partition_id", "partition", "id"),
        Index("ix_outbox_entry_state_next", "state", "next_attempt_at"),
    )


class OutboxEvent(Base):
    """What happened to an entry: each attempt's outcome, reapplied changes, requeues."""

    __tablename__ = "outbox_event"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    entry_id: Mapped[int] = mapped_column(
        ForeignKey("outbox_entry.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    what: Mapped[str] = mapped_column(Text)


class DeliveredResource(Base):
    """Where a resource we wrote lives on the EHR: its id and the version we last saw."""

    __tablename__ = "delivered_resource"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    fhir_base: Mapped[str] = mapped_column(String(512))
    resource_type: Mapped[str] = mapped_column(String(64))
    fhir_id: Mapped[str] = mapped_column(String(128))
    version_id: Mapped[str | None] = mapped_column(String(128))
    resource: Mapped[str | None] = mapped_column(Text)  # as we last saw it (for updates)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
