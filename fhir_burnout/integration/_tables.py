"""How far each poll of each EHR got: one row per EHR and feed (docs/architecture.md, the
adapter seam: one poll-state table for every way of connecting)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from fhir_burnout.db import Base


class PollRow(Base):
    """The poll of one feed (``referrals``, ``koppeltaal-tasks``) on one EHR: the newest
    ``meta.lastUpdated`` it saw (the EHR's clock), when it last succeeded (ours), when a
    notification asked for a poll that has not run yet (with that notification's trace, for
    the feeds that keep one), and our Subscription's id where the poller made it."""

    __tablename__ = "ehr_poll"
    fhir_base: Mapped[str] = mapped_column(String(512), primary_key=True)
    feed: Mapped[str] = mapped_column(String(32), primary_key=True)
    seen_until: Mapped[str | None] = mapped_column(String(40))  # FHIR instant, as given
    succeeded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    wanted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: the trace of that notification (X-Trace-Id) and its X-Request-Id, for the poll's requests
    trace_id: Mapped[str | None] = mapped_column(String(64))
    cause: Mapped[str | None] = mapped_column(String(64))
    #: our Subscription's id on the EHR (what a received notification's AuditEvent names)
    subscription: Mapped[str | None] = mapped_column(String(128))
