"""Inviting a client to start: a Task for the patient in the EHR, and a short code (or the
link with it) the practice sends them.

The code is not a password: whoever uses it still signs in at the practice's EHR, and the
code only counts for the patient it was made for. It tells us which programme the client
was invited to, and the practice sees in the EHR when the invitation was taken up.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fhir_burnout.sync import Create, UpdateTask, key_identifier, key_reference
from fhir_burnout.workflow._errors import EnrolmentStateError, NotFoundError
from fhir_burnout.workflow._outbox import _now, _translated, queue_writes
from fhir_burnout.workflow._tables import EnrolmentRow, InvitationRow

#: Letters and digits that cannot be mistaken for one another when read aloud or typed
#: (Crockford's base 32: no I, L, O or U).
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
#: 8 symbols: 40 bits, and a code is tried only by someone signed in as its patient.
CODE_LENGTH = 8
#: The invitation Task's text (Dutch first; English as the translation).
INVITATION_TEXT = (
    "Uitnodiging: begin met het zelfhulpprogramma bij burn-out",
    "Invitation: start the self-help programme for burn-out",
)


def _code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
    return f"{raw[:4]}-{raw[4:]}"


def normalise_code(text: str) -> str:
    """A code as people type it (lower case, spaces, O for 0) in the form we keep it."""
    raw = "".join(c for c in text.upper() if c.isalnum())
    raw = raw.translate(str.maketrans("OIL", "011"))
    return f"{raw[:4]}-{raw[4:]}" if len(raw) == CODE_LENGTH else raw


def invite(db: Session, enrolment: EnrolmentRow, *, now: datetime | None = None) -> InvitationRow:
    """The client's invitation to this enrolment: made once (a second call gives the first
    back), with a Task for the patient queued for the EHR."""
    found = db.scalar(select(InvitationRow).where(InvitationRow.enrolment_key == enrolment.key))
    if found is not None:
        return found
    now = _now(now)
    task_key = str(uuid.uuid4())
    row = InvitationRow(
        code=_code(), enrolment_key=enrolment.key, fhir_base=enrolment.fhir_base,
        patient=enrolment.patient, task_key=task_key, created_at=now,
    )  # fmt: skip
    db.add(row)
    patient = {"reference": f"Patient/{enrolment.patient}"}
    nl, en = INVITATION_TEXT
    task: dict[str, Any] = {
        "resourceType": "Task",
        "identifier": [key_identifier(task_key)],
        "basedOn": [key_reference(enrolment.key)],
        "focus": key_reference(enrolment.key),
        "status": "requested",
        "intent": "order",
        "code": _translated(nl, en),
        "for": patient,
        "owner": patient,
        "authoredOn": now.isoformat(timespec="seconds"),
        "input": [{"type": {"text": "uitnodigingscode"}, "valueString": row.code}],
    }
    if enrolment.practice:
        task["requester"] = {"reference": enrolment.practice}
    create = Create(task_key, task)
    queue_writes(db, enrolment, "invitation", [create], None, now=now)
    db.flush()
    return row


def accept_invitation(
    db: Session, code: str, *, fhir_base: str, patient: str, now: datetime | None = None
) -> InvitationRow:
    """The signed-in patient takes up their invitation: its Task is completed in the EHR.
    NotFoundError for a code that is unknown or not this patient's (the two are not told
    apart: a code says nothing about anyone else); taking it up again changes nothing."""
    now = _now(now)
    row = db.get(InvitationRow, normalise_code(code), with_for_update=True)
    if (
        row is None
        or row.fhir_base != fhir_base.rstrip("/")
        or not secrets.compare_digest(row.patient, patient)
    ):
        raise NotFoundError("there is no such invitation for this client")
    if row.accepted_at is not None:
        return row
    enrolment = db.get(EnrolmentRow, row.enrolment_key)
    if enrolment is None:  # pragma: no cover - a foreign key
        raise NotFoundError("the invitation's programme is gone")
    if enrolment.status not in ("active", "on-hold"):
        raise EnrolmentStateError(f"the programme is {enrolment.status}")
    db.execute(update(InvitationRow).where(InvitationRow.code == row.code).values(accepted_at=now))
    row.accepted_at = now
    change = UpdateTask(row.task_key, "completed")
    queue_writes(db, enrolment, "invitation-accepted", [change], f"Patient/{patient}", now=now)
    return row
