"""Moving a client to another track, keeping what they did, and notes for the client.

When treatment starts, the care professional moves a client from the waiting-list track to
the standard track (and after treatment, to after-care). The new enrolment carries on from
the old one: every module and every one-off homework the client finished there starts as
completed in the new plan, with its answers, so nothing is asked twice and the phase rules
open what follows. Measures (PHQ-9 at the start, say) and repeating homework start afresh:
a measure at the start of treatment is a new baseline, and a diary simply goes on. What the
client had begun and not finished moves with its draft. The old enrolment ends as
completed; its CarePlan is ``replaces``-d by the new one, and both reach the EHR in order.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fhir_burnout.sync import Create, key_identifier, key_reference
from fhir_burnout.workflow._definitions import Definitions, _repeat
from fhir_burnout.workflow._enrolment import enrol
from fhir_burnout.workflow._errors import EnrolmentStateError, NotFoundError
from fhir_burnout.workflow._outbox import _now, queue_writes
from fhir_burnout.workflow._pausing import _end
from fhir_burnout.workflow._tables import CURRENT, DraftRow, EnrolmentRow, NoteRow

#: Task kinds whose finished work carries over to the new track.
_CARRIED_KINDS = ("module", "homework")
#: Task statuses whose draft moves along to the same action in the new track.
_OPEN = ("ready", "in-progress", "on-hold")
#: The longest note a care professional can send (characters).
MAX_NOTE = 2000


def switch_track(
    db: Session,
    definitions: Definitions,
    enrolment_key: str,
    track: str,
    *,
    by: str,
    now: datetime | None = None,
) -> EnrolmentRow:
    """Move the client of a current enrolment to ``track``, keeping what they did; returns
    the new enrolment. Refused (EnrolmentStateError) for an enrolment that has ended, one
    already in that track, or when the client is already in that track."""
    now = _now(now)
    old = db.get(EnrolmentRow, enrolment_key, with_for_update=True)
    if old is None:
        raise NotFoundError(f"there is no enrolment {enrolment_key}")
    if old.status not in CURRENT:
        raise EnrolmentStateError(f"an enrolment that is {old.status} cannot switch track")
    if old.track == track:
        raise EnrolmentStateError(f"the enrolment is in the track {track!r} already")
    definitions.plan(track)  # an unknown track is refused before anything changes
    taken = db.scalar(
        select(EnrolmentRow.key).where(
            EnrolmentRow.fhir_base == old.fhir_base,
            EnrolmentRow.patient == old.patient,
            EnrolmentRow.track == track,
            EnrolmentRow.status.in_(CURRENT),
        )
    )
    if taken is not None:
        raise EnrolmentStateError(f"the client is in the track {track!r} already")
    plan = definitions.by_canonical[old.plan_definition]
    done: dict[str, str | None] = {}
    begun: dict[str, str] = {}  # action id -> the old Task with a draft
    for task in old.tasks:
        if task.kind not in _CARRIED_KINDS or _repeat(plan, task.action_id):
            continue
        if task.status == "completed":
            done[task.action_id] = task.output_key
        elif task.status in _OPEN:
            begun[task.action_id] = task.key
    # The old plan ends first: the client has one current plan at any moment.
    _end(db, old.key, "completed", "switched", by=by, reason=_SWITCHED, now=now)
    new = enrol(
        db, definitions, fhir_base=old.fhir_base, patient=old.patient, track=track,
        author=by, practice=old.practice, language=old.language, now=now, follows=old,
        done=done,
    )  # fmt: skip
    targets = {t.action_id: t.key for t in new.tasks if t.status != "completed"}
    for action_id, old_task in begun.items():
        if action_id in targets:
            db.execute(
                update(DraftRow)
                .where(DraftRow.task_key == old_task)
                .values(task_key=targets[action_id])
            )
    return new


#: Why the old plan ended (Dutch: the EHR's readers are Dutch).
_SWITCHED = "Overgestapt naar een ander traject"


def add_note(
    db: Session, enrolment_key: str, text: str, *, by: str, now: datetime | None = None
) -> NoteRow:
    """A note from the care professional for the client: shown on the client's first page,
    and sent to the EHR as a Communication to the patient about their CarePlan."""
    now = _now(now)
    text = text.strip()
    if not text:
        raise EnrolmentStateError("a note needs some text")
    if len(text) > MAX_NOTE:
        raise EnrolmentStateError(f"a note has at most {MAX_NOTE} characters")
    enrolment = db.get(EnrolmentRow, enrolment_key)
    if enrolment is None:
        raise NotFoundError(f"there is no enrolment {enrolment_key}")
    note = NoteRow(
        key=str(uuid.uuid4()), enrolment_key=enrolment.key, text=text, author=by,
        created_at=now,
    )  # fmt: skip
    db.add(note)
    communication: dict[str, Any] = {
        "resourceType": "Communication",
        "identifier": [key_identifier(note.key)],
        "basedOn": [key_reference(enrolment.key)],
        "status": "completed",
        "subject": {"reference": f"Patient/{enrolment.patient}"},
        "recipient": [{"reference": f"Patient/{enrolment.patient}"}],
        "sent": now.isoformat(timespec="seconds"),
        "payload": [{"contentString": text}],
    }
    if by.startswith(("Practitioner/", "PractitionerRole/")):
        communication["sender"] = {"reference": by}
    create = Create(note.key, communication)
    queue_writes(db, enrolment, "note", [create], by, now=now)
    return note


def notes_for(db: Session, fhir_base: str, patient: str) -> list[NoteRow]:
    """The notes for a patient on this EHR, newest first (from all their enrolments)."""
    return list(
        db.scalars(
            select(NoteRow)
            .join(EnrolmentRow, NoteRow.enrolment_key == EnrolmentRow.key)
            .where(
                EnrolmentRow.fhir_base == fhir_base.rstrip("/"), EnrolmentRow.patient == patient
            )
            .order_by(NoteRow.created_at.desc())
        ).all()
    )
