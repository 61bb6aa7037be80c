"""What we keep of the Koppeltaal Tasks that brought clients to us (how far the poll of each
domain got is ``integration.PollRow``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, LargeBinary, String
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


class KoppeltaalLaunchRow(Base):
    """A care professional launched a client's KT2_Task (an HTI launch we accepted): with a
    CareTeam, what lets them see that client on the practice's list (``_care``)."""

    __tablename__ = "koppeltaal_launch"
    fhir_base: Mapped[str] = mapped_column(String(512), primary_key=True)
    practitioner: Mapped[str] = mapped_column(String(160), primary_key=True)  # Practitioner/<id>
    task_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    patient: Mapped[str] = mapped_column(String(128))  # the Patient's id on the domain
    launched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ResultsDocumentRow(Base):
    """One published version of a client's results document (draft T029, "Onveranderlijk"):
    the HTML the domain's EHR fetches, as it was rendered when it was published, never
    changed; deleted with everything else of it when its retention ends (``_retention``)."""

    __tablename__ = "koppeltaal_results_document"
    #: random (uuid4 hex): the last part of the document's URL, not guessable
    version_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    fhir_base: Mapped[str] = mapped_column(String(512))
    task_id: Mapped[str] = mapped_column(String(128))  # the KT2_Task: the URL's key
    html: Mapped[bytes] = mapped_column(LargeBinary)  # UTF-8, exactly as served
    sha1: Mapped[str] = mapped_column(String(28))  # base64 SHA-1: FHIR R4 Attachment.hash
    size: Mapped[int] = mapped_column(Integer)
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    #: DocumentReference/<id> on the domain, once a POST or PUT pointed it here
    document_reference: Mapped[str | None] = mapped_column(String(160))

    __table_args__ = (Index("ix_koppeltaal_results_document_task", "fhir_base", "task_id"),)
