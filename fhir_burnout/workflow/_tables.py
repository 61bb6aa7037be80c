"""The programme's local state: enrolments, their phases, Tasks, drafts and responses.

This state is ours and survives an EHR outage; the EHR receives it through the outbox.
Each row that becomes a FHIR resource has a ``key``: the idempotency key, written on the
resource as an identifier (see ``sync``), so the row and the resource find each other.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, DateTime, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fhir_burnout.db import Base

#: Enrolment statuses that still hold the patient's place in the track.
CURRENT = ("active", "on-hold")
CURRENT_SQL = "status IN ('active', 'on-hold')"


class EnrolmentRow(Base):
    """A patient in a track of the programme: the CarePlan, locally."""

    __tablename__ = "enrolment"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    fhir_base: Mapped[str] = mapped_column(String(512))
    patient: Mapped[str] = mapped_column(String(128))  # the Patient's id on that server
    track: Mapped[str] = mapped_column(String(64))
    plan_definition: Mapped[str] = mapped_column(String(512))  # canonical url|version
    #: active | on-hold (paused by the care professional) | completed | revoked (stopped)
    status: Mapped[str] = mapped_column(String(16), default="active")
    author: Mapped[str | None] = mapped_column(String(256))  # Practitioner/.. or Device
    practice: Mapped[str | None] = mapped_column(String(256))  # Organization/..
    language: Mapped[str] = mapped_column(String(8), default="nl")
    period_start: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    request_group_key: Mapped[str] = mapped_column(String(64))
    #: the enrolment this one carries on from (a switch from the waiting list, say)
    follows: Mapped[str | None] = mapped_column(String(64))
    #: why the care professional stopped or finished it (a code of our ending-reason system)
    ending_reason: Mapped[str | None] = mapped_column(String(64))
    #: the last day its repeating measures (the weekly check-in) run; None: while it is active
    measures_until: Mapped[date | None] = mapped_column(Date)
    phases: Mapped[list[PhaseRow]] = relationship(
        back_populates="enrolment", order_by="PhaseRow.position", cascade="all, delete-orphan"
    )
    tasks: Mapped[list[TaskRow]] = relationship(
        back_populates="enrolment", order_by="TaskRow.position", cascade="all, delete-orphan"
    )

    __table_args__ = (
        # One current (active or paused) plan per patient and track: a second enrolment
        # finds the first.
        Index(
            "uq_enrolment_active",
            "fhir_base",
            "patient",
            "track",
            unique=True,
            sqlite_where=text(CURRENT_SQL),
            postgresql_where=text(CURRENT_SQL),
        ),
    )


class PhaseRow(Base):
    """A phase of an enrolment: locked until its unlock rule is met."""

    __tablename__ = "enrolment_phase"
    enrolment_key: Mapped[str] = mapped_column(
        ForeignKey("enrolment.key", ondelete="CASCADE"), primary_key=True
    )
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    unlock: Mapped[str] = mapped_column(String(16))  # start | practitioner | previous-phase
    status: Mapped[str] = mapped_column(String(16))  # locked | open | done
    unlocked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    unlocked_by: Mapped[str | None] = mapped_column(String(256))
    enrolment: Mapped[EnrolmentRow] = relationship(back_populates="phases")


class TaskRow(Base):
    """A module, exercise or questionnaire to do: a FHIR Task, locally."""

    __tablename__ = "task"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    enrolment_key: Mapped[str] = mapped_column(
        ForeignKey("enrolment.key", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    action_id: Mapped[str] = mapped_column(String(128))  # the PlanDefinition action
    kind: Mapped[str] = mapped_column(String(16))  # module | homework | measure
    phase: Mapped[str | None] = mapped_column(String(64))
    definition: Mapped[str] = mapped_column(String(512))  # ActivityDefinition/Questionnaire
    title: Mapped[str] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(16))
    status_reason: Mapped[str | None] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(String(256))  # Patient/.. or Practitioner/..
    output_key: Mapped[str | None] = mapped_column(String(64))  # its QuestionnaireResponse
    #: not offered before this day (Task.restriction.period.start: the next weekly check-in)
    ready_from: Mapped[date | None] = mapped_column(Date)
    #: while its programme is paused: the status it goes back to when it resumes
    held_from: Mapped[str | None] = mapped_column(String(16))
    #: a care professional's Task: urgent | routine (Task.priority; a safety rule's)
    priority: Mapped[str | None] = mapped_column(String(16))
    #: a module: the screen (1, 2, ..) the client was last on; local only, never sent to the EHR
    place: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    enrolment: Mapped[EnrolmentRow] = relationship(back_populates="tasks")


class DraftRow(Base):
    """Answers a client typed and has not submitted yet: kept, whatever the EHR does."""

    __tablename__ = "draft"
    task_key: Mapped[str] = mapped_column(
        ForeignKey("task.key", ondelete="CASCADE"), primary_key=True
    )
    answers: Mapped[str] = mapped_column(Text)  # JSON
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ResponseRow(Base):
    """A submitted QuestionnaireResponse, with its scores."""

    __tablename__ = "response"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    task_key: Mapped[str | None] = mapped_column(ForeignKey("task.key"), index=True)
    enrolment_key: Mapped[str] = mapped_column(ForeignKey("enrolment.key"), index=True)
    questionnaire: Mapped[str] = mapped_column(String(512))
    status: Mapped[str] = mapped_column(String(16))
    resource: Mapped[str] = mapped_column(Text)  # the QuestionnaireResponse JSON
    scores: Mapped[str] = mapped_column(Text, default="[]")  # JSON
    authored: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class NoteRow(Base):
    """A note from the care professional for the client, shown on the client's first page
    (and sent to the EHR as a Communication)."""

    __tablename__ = "note"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    enrolment_key: Mapped[str] = mapped_column(ForeignKey("enrolment.key"), index=True)
    text: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(256))  # Practitioner/..
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ThreadMessageRow(Base):
    """One message about a client's homework answer (a QuestionnaireResponse): the care
    professional's response, the client's reply, or a note for care professionals only.
    Each goes to the EHR as a Communication (``workflow._threads``)."""

    __tablename__ = "thread_message"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    response_key: Mapped[str] = mapped_column(ForeignKey("response.key"), index=True)
    enrolment_key: Mapped[str] = mapped_column(ForeignKey("enrolment.key"), index=True)
    author: Mapped[str] = mapped_column(String(256))  # Practitioner/.. or Patient/..
    text: Mapped[str] = mapped_column(Text)
    #: a note for care professionals only: never on a client's page, not sent to the client
    clinician_only: Mapped[bool] = mapped_column(Boolean, default=False)
    #: the message this one answers (its key), if any
    in_response_to: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: a care professional's message: when the client first read it (their home says so)
    seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class InvitationRow(Base):
    """An invitation to start the programme: a short code the practice sends the client
    (or the link with it), which leads to the client's sign-in. The sign-in, not the code,
    says who the client is: a code only works for its own patient."""

    __tablename__ = "invitation"
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    enrolment_key: Mapped[str] = mapped_column(ForeignKey("enrolment.key"), index=True)
    fhir_base: Mapped[str] = mapped_column(String(512))
    patient: Mapped[str] = mapped_column(String(128))
    task_key: Mapped[str] = mapped_column(String(64))  # the invitation Task for the patient
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
