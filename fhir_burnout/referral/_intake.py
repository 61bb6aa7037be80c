"""Taking in a referral: a FHIR ServiceRequest for treatment at this practice is recorded,
exactly once, and waits for triage (or becomes the patient's place on the waiting list at
once, where the practice switched automatic enrolment on).

Referrals arrive three ways: a Subscription notification, the reconciliation poll that
catches any notification that was lost, and a referral system that pushes them. Any of
them may see the same referral, at the same moment too; :func:`take_referral` is
idempotent on the ServiceRequest's identifier (per EHR): the first one records it, the
others find that record. By default the referral then waits as "aangemeld, nog niet
beoordeeld" until a care professional accepts or declines it (``_triage.py``): whether
self-help suits a person is a clinical judgement. With automatic enrolment it enrols the
patient in the waiting-list track at once. Enrolment is idempotent per patient and track
as well, so a second referral of a patient already on the waiting list is recorded and
keeps the place they have, and a referral of a client already in the programme (enrolled
from the chart) is recorded with the plan they are in, without triage.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fhir_burnout.errors import FhirBurnoutError
from fhir_burnout.referral._tables import ACCEPTED, TRIAGE, ReferralRow
from fhir_burnout.sync import (
    Agent,
    Create,
    Operation,
    UpdateTask,
    enqueue,
    key_identifier,
    key_reference,
)
from fhir_burnout.workflow import (
    CURRENT,
    Definitions,
    EnrolmentRow,
    enrol,
    invite,
    partition,
    queue_writes,
)

SeenBy = Literal["subscription", "reconciliation", "post", "letter"]
#: The track a referral enrols in: the client starts while waiting for treatment.
WAITING_LIST = "waiting-list"
#: ServiceRequest.status values that ask for something still to be done (R4 request-status).
_OPEN = frozenset({"active"})
#: A FHIR id (R4 §2.24.0.1): what a Patient reference on the EHR ends with.
_FHIR_ID = re.compile(r"[A-Za-z0-9\-\.]{1,64}")
#: Namespace of referral keys (uuid5 of the EHR's base and the referral's identifier).
_KEYS = uuid.UUID("4f3c7d1e-2b7a-5c0e-9a51-7d1f0b2c6e88")


class ReferralError(FhirBurnoutError, ValueError):
    """A ServiceRequest we cannot take in as a referral; the message says why."""

    code = "invalid"


@dataclass(frozen=True)
class Intake:
    """What taking in a referral did: its record, and whether this call made it."""

    referral: ReferralRow
    new: bool


def referral_key(fhir_base: str, system: str, value: str) -> str:
    """The key of a referral: the same for the same identifier on the same EHR."""
    return str(uuid.uuid5(_KEYS, f"{fhir_base.rstrip('/')}|{system}|{value}"))


def referral_identifier(request: Mapping[str, Any]) -> tuple[str, str]:
    """The (system, value) that names a referral: its first identifier with both."""
    for identifier in request.get("identifier", []) or []:
        if not isinstance(identifier, Mapping):
            continue
        system, value = identifier.get("system"), identifier.get("value")
        if isinstance(system, str) and system and isinstance(value, str) and value:
            return system, value
    raise ReferralError("the ServiceRequest has no identifier with a system and a value")


def referral_patient(request: Mapping[str, Any], fhir_base: str) -> str:
    """The id of the Patient a referral is for, on the EHR at ``fhir_base`` (its subject
    ``Patient/<id>``, or absolute on that base); ReferralError otherwise."""
    reference = str((request.get("subject") or {}).get("reference") or "")
    base = fhir_base.rstrip("/") + "/"
    if reference.startswith(base):
        reference = reference[len(base) :]
    kind, _, patient = reference.partition("/")
    if kind != "Patient" or not _FHIR_ID.fullmatch(patient):
        raise ReferralError(
            "the ServiceRequest's subject must be a Patient on this EHR (Patient/<id>)"
        )
    return patient


def take_referral(
    db: Session,
    definitions: Definitions,
    *,
    fhir_base: str,
    service_request: Mapping[str, Any],
    seen_by: SeenBy,
    practice: str | None = None,
    triage: bool = True,
    now: datetime | None = None,
    identity_issue: str | None = None,
) -> Intake:
    """Record a referral (a FHIR R4 ServiceRequest read from ``fhir_base``), once: the same
    referral again, by any way, finds the first record. With ``triage`` (the default) it
    waits for a care professional's decision (:func:`accept_referral`,
    :func:`decline_referral`) and the referrer's Task says ``received``; without, its
    patient is enrolled in the waiting-list track at once and invited. A client already in
    the programme keeps their plan either way. In the caller's transaction. Raises
    ReferralError for a ServiceRequest that is not an active referral of a Patient.
    ``identity_issue`` (BSN_MISMATCH): its patient is not certain, so it waits for triage
    whatever the practice chose, and nothing about it goes to the EHR until a person
    decided (:func:`~fhir_burnout.referral.accept_referral` sends what was held)."""
    if service_request.get("resourceType") != "ServiceRequest":
        raise ReferralError("a referral is a FHIR ServiceRequest")
    system, value = referral_identifier(service_request)
    fhir_base = fhir_base.rstrip("/")
    key = referral_key(fhir_base, system, value)
    known = db.get(ReferralRow, key)
    if known is not None:
        return Intake(known, new=False)
    status = service_request.get("status")
    if status not in _OPEN:
        raise ReferralError(f"the ServiceRequest is {status!r}, not active: nothing to take in")
    patient = referral_patient(service_request, fhir_base)
    request_id = service_request.get("id")
    if not request_id and seen_by not in ("post", "letter"):
        raise ReferralError("a ServiceRequest read from the EHR has an id")
    now = now or datetime.now(UTC)
    # A client already in the programme (enrolled from the chart, say) keeps their plan:
    # a care professional chose it, so there is nothing to triage. Everyone else waits for
    # triage, or starts on the waiting list where the practice enrols automatically.
    enrolment = None if identity_issue else current_enrolment(db, fhir_base, patient)
    if enrolment is None and not triage and not identity_issue:
        enrolment = enrol(
            db, definitions, fhir_base=fhir_base, patient=patient, track=WAITING_LIST,
            practice=practice, now=now,
        )  # fmt: skip
    if enrolment is not None and enrolment.track == WAITING_LIST:
        invite(db, enrolment, now=now)  # in a plan of the care professional's: invited there
    if not identity_issue:  # else held: the EHR's chart of maybe someone else stays as it is
        _Writes(fhir_base, patient, practice).first(
            db, key, service_request, enrolment=enrolment, now=now
        )
    row = ReferralRow(
        key=key,
        fhir_base=fhir_base,
        identifier_system=system,
        identifier_value=value,
        service_request=f"ServiceRequest/{request_id}" if request_id else None,
        patient=patient,
        enrolment_key=enrolment.key if enrolment is not None else None,
        seen_by=seen_by,
        received_at=now,
        state=TRIAGE if enrolment is None else ACCEPTED,
        request=json.dumps(dict(service_request), ensure_ascii=False),
        practice=practice,
        decided_at=None if enrolment is None else now,
        identity_issue=identity_issue,
    )
    return _record_once(db, row)


def _record_once(db: Session, row: ReferralRow) -> Intake:
    """Add the referral's row, or find the one another way recorded first."""
    try:
        with db.begin_nested():
            db.add(row)
            db.flush()
    except IntegrityError:
        # Another way saw the same referral at the same moment and recorded it first (the
        # rolled-back row has left the session; theirs is committed and visible now).
        found = db.get(ReferralRow, row.key)
        if found is None:
            raise
        return Intake(found, new=False)
    return Intake(row, new=True)


def current_enrolment(db: Session, fhir_base: str, patient: str) -> EnrolmentRow | None:
    """The patient's newest current (active or paused) enrolment on this EHR, if any."""
    return db.scalar(
        select(EnrolmentRow)
        .where(
            EnrolmentRow.fhir_base == fhir_base.rstrip("/"),
            EnrolmentRow.patient == patient,
            EnrolmentRow.status.in_(CURRENT),
        )
        .order_by(EnrolmentRow.created_at.desc())
        .limit(1)
    )


#: The referrer's view of what happened (Task.businessStatus; Dutch: the EHR's readers are).
WAITING_LIST_STATUS = "Op de wachtlijst; gestart met het zelfhulpprogramma"
TRIAGE_STATUS = "Aangemeld, nog niet beoordeeld"
#: Namespace of the keys derived from a referral's key.
_DERIVED = uuid.UUID("0b7e4a52-98c1-5d5e-8f0a-3c2d6e1f4a77")


def status_key(referral: str) -> str:
    """The write key of the Task that tells the referrer what became of a referral."""
    return str(uuid.uuid5(_DERIVED, f"{referral}|status"))


@dataclass(frozen=True)
class _Writes:
    """The writes about one referred patient, for the EHR: in the patient's partition of
    the outbox (in order with their other writes), on behalf of the practice. A referral
    that waits for triage has no enrolment yet, so these do not go through one."""

    fhir_base: str
    patient: str
    practice: str | None

    def queue(
        self, db: Session, kind: str, operations: list[Operation], who: str | None,
        now: datetime,
    ) -> None:  # fmt: skip
        """Queue ``operations`` in the caller's transaction, made by ``who`` (None: the app)."""
        enqueue(
            db, fhir_base=self.fhir_base, partition=partition(self.fhir_base, self.patient),
            kind=kind, operations=operations, agent=Agent(who=who, on_behalf_of=self.practice),
            now=now,
        )  # fmt: skip

    def first(
        self, db: Session, key: str, service_request: Mapping[str, Any], *,
        enrolment: EnrolmentRow | None, now: datetime,
    ) -> None:  # fmt: skip
        """What the EHR gets when a referral is taken in: a pushed referral itself (so the
        chart shows it; its own notification or poll of it then finds our record), and the
        referrer's status Task."""
        request_id = service_request.get("id")
        if not request_id:
            self.referral(db, key, service_request, now)
            focus = key_reference(key)
        else:
            focus = {"reference": f"ServiceRequest/{request_id}"}
        self.status(db, key, focus=focus, service_request=service_request,
                    enrolment=enrolment, now=now)  # fmt: skip

    def referral(
        self, db: Session, key: str, service_request: Mapping[str, Any], now: datetime
    ) -> None:
        """The pushed ServiceRequest, for the EHR, under the referral's key."""
        resource = {k: v for k, v in service_request.items() if k not in ("id", "meta", "text")}
        # Their identifier first: it names the referral wherever it is seen again.
        resource["identifier"] = [*service_request.get("identifier", []), key_identifier(key)]
        resource["subject"] = {"reference": f"Patient/{self.patient}"}
        if self.practice and not resource.get("performer"):
            resource["performer"] = [{"reference": self.practice}]
        self.queue(db, "referral", [Create(key, resource)], None, now)

    def status(
        self,
        db: Session,
        key: str,
        *,
        focus: dict[str, Any],
        service_request: Mapping[str, Any],
        enrolment: EnrolmentRow | None,
        now: datetime,
        subject: bool = True,
    ) -> None:
        """A Task that fulfils the referral, for the referrer to see (R4: a request's filler
        reports with a Task whose ``focus`` is the request; the ServiceRequest itself is the
        referrer's and stays as they wrote it): ``received`` while it waits for triage,
        ``accepted`` with the CarePlan as output once the patient is enrolled."""
        task_key = status_key(key)
        task: dict[str, Any] = {
            "resourceType": "Task",
            "identifier": [key_identifier(task_key)],
            "basedOn": [focus],
            "focus": focus,
            "status": "received" if enrolment is None else "accepted",
            "businessStatus": {
                "text": TRIAGE_STATUS if enrolment is None else WAITING_LIST_STATUS
            },
            "intent": "order",
            "code": {
                "coding": [
                    {"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}
                ]
            },
            "authoredOn": now.isoformat(timespec="seconds"),
            "lastModified": now.isoformat(timespec="seconds"),
        }
        if subject:  # else the patient is uncertain: the Task names no one (BSN_MISMATCH)
            task["for"] = {"reference": f"Patient/{self.patient}"}
        if enrolment is not None:
            task["output"] = [_careplan_output(enrolment)]
        requester = service_request.get("requester")
        if isinstance(requester, dict) and requester.get("reference"):
            task["requester"] = {"reference": str(requester["reference"])}
        if self.practice:
            task["owner"] = {"reference": self.practice}
        self.queue(db, "referral-status", [Create(task_key, task)], None, now)


def _careplan_output(enrolment: EnrolmentRow) -> dict[str, Any]:
    return {"type": {"text": "CarePlan"}, "valueReference": key_reference(enrolment.key)}


#: What the referrer reads when treatment starts, and when the programme ends.
TREATMENT_STARTED = "Behandeling gestart"
PROGRAMME_ENDED = "Zelfhulpprogramma afgerond"


def report_to_referrer(
    db: Session,
    enrolment: EnrolmentRow,
    status: Literal["in-progress", "completed"],
    *,
    by: str | None = None,
    reason: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> int:
    """Tell the referrers of an enrolment's referrals how it goes on: ``in-progress`` when
    the client moves from the waiting list into treatment, ``completed`` when the
    programme is done (also when the enrolment carries on from the one the referral
    enrolled, after a switch of track). Queued for the EHR with the change that caused
    it; returns how many referrals were told (none for a client enrolled from the chart).
    ``reason``: why it ended (a CodeableConcept), when a care professional said so."""
    now = now or datetime.now(UTC)
    chain, follows = [enrolment.key], enrolment.follows  # a switch carries the referral on
    while follows is not None and follows not in chain:
        chain.append(follows)
        follows = db.scalar(select(EnrolmentRow.follows).where(EnrolmentRow.key == follows))
    keys = db.scalars(select(ReferralRow.key).where(ReferralRow.enrolment_key.in_(chain)))
    why = reason or (TREATMENT_STARTED if status == "in-progress" else PROGRAMME_ENDED)
    operations: list[Operation] = [
        UpdateTask(
            status_key(key), status, status_reason=dict(why) if isinstance(why, Mapping) else why
        )
        for key in keys
    ]
    if operations:
        queue_writes(db, enrolment, "referral-status", operations, by, now=now)
    return len(operations)
