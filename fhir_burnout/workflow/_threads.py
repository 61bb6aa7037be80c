"""Feedback both ways on a client's homework: a thread per answer.

The care professional responds to one homework answer or diary entry (a
QuestionnaireResponse the client sent); the client reads the response beside their answer
and may reply; the care professional reads the reply. A care professional may also keep a
note about the answer for care professionals only: it never reaches a page of the client's.

A thread belongs to the enrolment of its answer. Whether a person may reach it is the web
layer's gate (the answer must be the launch's client's); here: what may be said, by whom,
and what the EHR gets. Posting is open while the client has a current enrolment (active or
paused) on this EHR, so a thread about an answer from the waiting list goes on after the
switch to treatment, and a finished programme's threads are read-only.

Each message is a FHIR R4 Communication, queued through the outbox in the caller's
transaction (the page never waits on the EHR; a reply typed while the EHR is down is kept
and delivered later):

- ``status`` completed, ``sent`` now, ``payload.contentString`` the text as typed (plain
  text: the pages escape it);
- ``basedOn`` the answer's Task (R4: "An order, proposal or plan fulfilled in whole or in
  part by this Communication"), or the CarePlan for an answer without a Task;
- ``about`` the QuestionnaireResponse (R4: "Other resources that pertain to this
  communication"; ``reasonReference`` does not allow a QuestionnaireResponse);
- ``inResponseTo`` the message it answers (R4: "Prior communication that this communication
  is in response to"), not ``partOf``, which R4 defines only as "Part of this action": a
  larger event this one is a step of, not a message it replies to;
- ``sender`` whoever wrote it; ``recipient`` the client (a care professional's response), or
  the care professional whose message the client answers (a reply).

A note for care professionals only leaves the Patient out of ``subject`` and ``recipient``
both. Leaving them out of ``recipient`` alone would not keep it from the client: R4's
Patient CompartmentDefinition puts a Communication in the patient's compartment by
``subject``, ``sender`` or ``recipient``, and that compartment is what patient-facing access
reads (SMART ``patient/Communication.rs``, a portal's ``Patient/$everything``). So the note
goes with ``sender`` the care professional, ``recipient`` the practice (the Organization the
enrolment is for, when known), ``basedOn`` the Task and ``about`` the answer: the EHR's
care professionals find it through the Task (``Communication?based-on=``), and no
patient-facing search reaches it.

A Koppeltaal domain has no Communication in its profiles (KT2 profiles, TOP-KT-009): there
the thread stays in the app (``koppeltaal._plan``: a create other than an AuditEvent stays
with us), as docs/koppeltaal.md says.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from fhir_burnout.errors import FhirBurnoutError
from fhir_burnout.sync import Create, key_identifier, key_reference
from fhir_burnout.workflow._definitions import Definitions
from fhir_burnout.workflow._errors import EnrolmentStateError, NotFoundError
from fhir_burnout.workflow._outbox import _now, queue_writes
from fhir_burnout.workflow._overview import Forms, _forms_from, _readable, _title_of
from fhir_burnout.workflow._readable import ResponseOverview
from fhir_burnout.workflow._tables import (
    CURRENT,
    EnrolmentRow,
    ResponseRow,
    TaskRow,
    ThreadMessageRow,
)

#: The longest message in a thread (characters, after line endings are made one).
MAX_MESSAGE = 2000
#: The Task kind of a homework answer or diary entry: what a thread may be about.
HOMEWORK = "homework"


class MessageError(FhirBurnoutError, ValueError):
    """A message that cannot be sent as typed: ``reason`` is ``empty`` or ``too-long``
    (``length`` characters, more than :data:`MAX_MESSAGE`)."""

    code = "invalid"

    def __init__(self, reason: str, length: int = 0) -> None:
        super().__init__(
            "a message needs some text"
            if reason == "empty"
            else f"a message has at most {MAX_MESSAGE} characters, this one {length}"
        )
        self.reason, self.length = reason, length


@dataclass(frozen=True)
class Message:
    """One message of a thread, as a page shows it."""

    key: str
    text: str
    author: str  # Practitioner/.. (or PractitionerRole/..) or Patient/..
    clinician_only: bool
    created_at: datetime
    seen: bool  # a care professional's message the client has read

    @property
    def by_client(self) -> bool:
        """Written by the client (the answer's own patient)."""
        return self.author.startswith("Patient/")


@dataclass(frozen=True)
class Thread:
    """The messages about one answer, oldest first, and whether one may still be added."""

    response_key: str
    messages: tuple[Message, ...]
    open: bool  # the client has a current enrolment on this EHR

    @property
    def answered(self) -> bool:
        """A care professional responded where the client can read it: the client may reply."""
        return any(not m.by_client and not m.clinician_only for m in self.messages)

    @property
    def awaiting(self) -> bool:
        """The client's reply is the last word: a care professional may want to answer."""
        visible = [m for m in self.messages if not m.clinician_only]
        return bool(visible) and visible[-1].by_client


def clean_text(text: str) -> str:
    """The message as it is kept: one kind of line ending (browsers send CRLF), no space
    around it; MessageError when nothing is left or it is longer than MAX_MESSAGE."""
    cleaned = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not cleaned:
        raise MessageError("empty")
    if len(cleaned) > MAX_MESSAGE:
        raise MessageError("too-long", len(cleaned))
    return cleaned


def _aware(value: datetime) -> datetime:
    # SQLite hands timezone-aware columns back naive; they were written in UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _homework(query: Any) -> Any:
    """``query`` on ResponseRow narrowed to homework answers (and answers without a Task)."""
    return query.outerjoin(TaskRow, ResponseRow.task_key == TaskRow.key).where(
        or_(TaskRow.kind == HOMEWORK, ResponseRow.task_key.is_(None))
    )


def _patients_responses(fhir_base: str, patient: str) -> Any:
    return (
        select(ResponseRow)
        .join(EnrolmentRow, ResponseRow.enrolment_key == EnrolmentRow.key)
        .where(EnrolmentRow.fhir_base == fhir_base.rstrip("/"), EnrolmentRow.patient == patient)
    )


def own_answer(db: Session, key: str, *, fhir_base: str, patient: str) -> ResponseRow | None:
    """Homework answer ``key`` if it is ``patient``'s on this EHR; None for anything else
    (anyone else's, a measure, one that does not exist): the page answers "not found"."""
    query = _homework(_patients_responses(fhir_base, patient)).where(ResponseRow.key == key)
    found: ResponseRow | None = db.scalar(query)
    return found


def homework_answers(db: Session, *, fhir_base: str, patient: str) -> list[ResponseRow]:
    """The patient's homework answers and diary entries on this EHR, newest first."""
    query = _homework(_patients_responses(fhir_base, patient)).order_by(
        ResponseRow.authored.desc(), ResponseRow.key
    )
    return list(db.scalars(query))


def _is_open(db: Session, enrolment: EnrolmentRow) -> bool:
    current = select(EnrolmentRow.key).where(
        EnrolmentRow.fhir_base == enrolment.fhir_base,
        EnrolmentRow.patient == enrolment.patient,
        EnrolmentRow.status.in_(CURRENT),
    )
    return db.scalar(current.limit(1)) is not None


def _messages(rows: Iterable[ThreadMessageRow], *, for_client: bool) -> tuple[Message, ...]:
    return tuple(
        Message(
            m.key, m.text, m.author, m.clinician_only, _aware(m.created_at), m.seen_at is not None
        )
        for m in rows
        if not (for_client and m.clinician_only)
    )


def threads_of(db: Session, answers: list[ResponseRow], *, for_client: bool) -> dict[str, Thread]:
    """The thread of each of one client's answers (by its key; one query for them all).
    ``for_client``: as the client may read it, without the notes for care professionals
    only. Open or not is the client's (a current enrolment on the EHR), so one for all."""
    if not answers:
        return {}
    found: dict[str, list[ThreadMessageRow]] = defaultdict(list)
    rows = db.scalars(
        select(ThreadMessageRow)
        .where(ThreadMessageRow.response_key.in_([a.key for a in answers]))
        .order_by(ThreadMessageRow.created_at, ThreadMessageRow.key)
    )
    for row in rows:
        found[row.response_key].append(row)
    enrolment = db.get(EnrolmentRow, answers[0].enrolment_key)
    is_open = enrolment is not None and _is_open(db, enrolment)
    return {
        a.key: Thread(a.key, _messages(found[a.key], for_client=for_client), is_open)
        for a in answers
    }


def thread_of(db: Session, answer: ResponseRow, *, for_client: bool) -> Thread:
    """The thread about ``answer`` (see :func:`threads_of`)."""
    return threads_of(db, [answer], for_client=for_client)[answer.key]


def post_message(
    db: Session,
    answer: ResponseRow,
    text: str,
    *,
    by: str,
    clinician_only: bool = False,
    now: datetime | None = None,
) -> ThreadMessageRow:
    """Add a message by ``by`` to the thread about ``answer`` and queue its Communication.

    A care professional (``Practitioner/..``) may always respond, and keep a note for care
    professionals only; the client (``Patient/..``) replies once a care professional has
    responded where they can read it. MessageError for an empty or too long text;
    EnrolmentStateError when the thread is closed (no current enrolment) or the client has
    nothing to reply to."""
    now = _now(now)
    cleaned = clean_text(text)
    by_client = by.startswith("Patient/")
    enrolment = db.get(EnrolmentRow, answer.enrolment_key)
    if enrolment is None:
        raise NotFoundError(f"there is no enrolment {answer.enrolment_key}")
    if by_client and (clinician_only or by != f"Patient/{enrolment.patient}"):
        raise EnrolmentStateError("a client writes only in their own threads, for their carer")
    thread = thread_of(db, answer, for_client=False)
    if not thread.open:
        raise EnrolmentStateError("the client's programme has ended: the thread is closed")
    if by_client and not thread.answered:
        raise EnrolmentStateError("a client replies once a care professional has responded")
    # It answers the other side's last word: the client answers the care professional's
    # last message they can read, a care professional the client's last reply.
    answered = next(
        (
            m
            for m in reversed(thread.messages)
            if m.by_client != by_client and not m.clinician_only
        ),
        None,
    )
    row = ThreadMessageRow(
        key=str(uuid.uuid4()), response_key=answer.key, enrolment_key=enrolment.key,
        author=by, text=cleaned, clinician_only=clinician_only,
        in_response_to=answered.key if answered else None, created_at=now,
    )  # fmt: skip
    db.add(row)
    communication = _communication(row, answer, enrolment, answered)
    queue_writes(db, enrolment, "thread", [Create(row.key, communication)], by, now=now)
    return row


def _communication(
    row: ThreadMessageRow,
    answer: ResponseRow,
    enrolment: EnrolmentRow,
    answered: Message | None,
) -> dict[str, Any]:
    """The message as a FHIR R4 Communication (the module's docstring says why each part)."""
    patient = {"reference": f"Patient/{enrolment.patient}"}
    communication: dict[str, Any] = {
        "resourceType": "Communication",
        "identifier": [key_identifier(row.key)],
        "basedOn": [key_reference(answer.task_key or enrolment.key)],
        "status": "completed",
        "sent": _aware(row.created_at).isoformat(timespec="seconds"),
        "about": [key_reference(answer.key)],
        "sender": {"reference": row.author},
        "payload": [{"contentString": row.text}],
    }
    if answered is not None:
        communication["inResponseTo"] = [key_reference(answered.key)]
    if row.clinician_only:  # out of the client's compartment: to the practice
        if enrolment.practice:
            communication["recipient"] = [{"reference": enrolment.practice}]
        return communication
    communication["subject"] = patient
    # A reply goes to the care professional whose message it answers (a client replies
    # only once there is one); a care professional's message to the client.
    if row.author.startswith("Patient/") and answered is not None:
        communication["recipient"] = [{"reference": answered.author}]
    else:
        communication["recipient"] = [patient]
    return communication


def mark_seen(db: Session, answer: ResponseRow, *, now: datetime | None = None) -> int:
    """The client read the thread about ``answer``: its care professionals' messages are
    no longer new (the notice on their home goes). Returns how many were new."""
    result = db.execute(
        update(ThreadMessageRow)
        .where(
            ThreadMessageRow.response_key == answer.key,
            ThreadMessageRow.seen_at.is_(None),
            ThreadMessageRow.clinician_only.is_(False),
            ThreadMessageRow.author.not_like("Patient/%"),
        )
        .values(seen_at=_now(now))
    )
    return int(getattr(result, "rowcount", 0) or 0)


def new_responses(db: Session, *, fhir_base: str, patient: str) -> list[ResponseRow]:
    """The patient's answers with a care professional's message they have not read yet,
    newest message first (never a note for care professionals only)."""
    query = (
        _patients_responses(fhir_base, patient)
        .join(ThreadMessageRow, ThreadMessageRow.response_key == ResponseRow.key)
        .where(
            ThreadMessageRow.seen_at.is_(None),
            ThreadMessageRow.clinician_only.is_(False),
            ThreadMessageRow.author.not_like("Patient/%"),
        )
        .order_by(ThreadMessageRow.created_at.desc())
    )
    seen: dict[str, ResponseRow] = {}
    for row in db.scalars(query):
        seen.setdefault(row.key, row)
    return list(seen.values())


def readable_answer(
    definitions: Definitions, answer: ResponseRow, *, lang: str, forms: Forms | None = None
) -> ResponseOverview:
    """The answer as its title and question/answer pairs, in the Questionnaire's order and
    texts, as the care professional's page shows it (``patient_overview``)."""
    return _readable(definitions, forms or _forms_from(definitions), answer, lang)


def answer_title(
    definitions: Definitions, answer: ResponseRow, *, lang: str, forms: Forms | None = None
) -> str:
    """The title of the questionnaire ``answer`` answers, in ``lang``."""
    return _title_of(definitions, forms or _forms_from(definitions), answer.questionnaire, lang)
