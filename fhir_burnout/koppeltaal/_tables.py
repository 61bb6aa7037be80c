"""What we keep of the Koppeltaal Tasks that brought clients to us."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from fhir_burnout.db import Base


class KoppeltaalTaskRow(Base):
    """A KT2_Task (the portal's, not ours) and the enrolment it started: the Task is how the
    portal assigned a module or the programme, and its status is what goes back."""

    __tablename__ = "koppeltaal_task"
    fhir_base: Mapped[str] = mapped_column(String(512), primary_key=True)
    task_id: Mapped[str] = mapped_column(String(128), primary_key=True)  # server-assigned
    enrolment_key: Mapped[str] = mapped_column(ForeignKey("enrolment.key"), index=True)
    definition: Mapped[str] = mapped_column(String(128))  # ActivityDefinition/<id>
    #: the local Task the KT Task follows (a module assigned on its own), else the enrolment
    local_task_key: Mapped[str | None] = mapped_column(String(64))
    patient: Mapped[str] = mapped_column(String(128))  # Patient/<id> on the domain's server
    status: Mapped[str] = mapped_column(String(16))  # as we last saw or set it
    version_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class KoppeltaalPollRow(Base):
    """How far the poll of one Koppeltaal domain's Tasks got: the newest ``meta.lastUpdated``
    of the Tasks it saw (the domain's clock), when it last succeeded (ours), and when a
    notification asked for a poll that has not run yet."""

    __tablename__ = "koppeltaal_poll"
    fhir_base: Mapped[str] = mapped_column(String(512), primary_key=True)
    seen_until: Mapped[str | None] = mapped_column(String(40))  # FHIR instant, as given
    succeeded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    wanted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: the trace of that notification (X-Trace-Id) and its X-Request-Id, for the poll's requests
    trace_id: Mapped[str | None] = mapped_column(String(64))
    cause: Mapped[str | None] = mapped_column(String(64))
    #: our KT2_Subscription's id on the domain (what a received notification's AuditEvent names)
    subscription: Mapped[str | None] = mapped_column(String(128))
