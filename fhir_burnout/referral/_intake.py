"""Taking in a referral: a FHIR ServiceRequest for treatment at this practice becomes the
patient's place on the waiting list, exactly once.

Referrals arrive three ways: a Subscription notification, the reconciliation poll that
catches any notification that was lost, and a referral system that pushes them. Any of
them may see the same referral, at the same moment too; :func:`take_referral` is
idempotent on the ServiceRequest's identifier (per EHR): the first one records it and
enrols the patient in the waiting-list track, the others find that record. Enrolment is
idempotent per patient and track as well, so a second referral of a patient already on the
waiting list is recorded and keeps the place they have, and a referral of a client already
in the programme (enrolled from the chart) is recorded with the plan they are in.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fhir_burnout.errors import FhirBurnoutError
from fhir_burnout.referral._tables import ReferralRow
from fhir_burnout.sync import key_identifier, key_reference
from fhir_burnout.workflow import Definitions, EnrolmentRow, enrol, invite, queue_writes
from fhir_burnout.workflow._tables import CURRENT

SeenBy = Literal["subscription", "reconciliation", "post", "letter"]
#: The track a referral enrols in: the client starts while waiting for treatment.
WAITING_LIST = "waiting-list"
#: ServiceRequest.status values that ask for something still to be done (R4 request-status).
_OPEN = frozenset({"active"})
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
    if kind != "Patient" or not patient or "/" in patient:
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
    now: datetime | None = None,
) -> Intake:
    """Record a referral (a FHIR R4 ServiceRequest read from ``fhir_base``) and enrol its
    patient in the waiting-list track, once: the same referral again, by any way, finds
    the first record. In the caller's transaction. Raises ReferralError for a
    ServiceRequest that is not an active referral of a Patient."""
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
    now = now or datetime.now(UTC)
    # A client already in the programme (enrolled from the chart, say) keeps their plan:
    # the referral is recorded with it. Everyone else starts on the waiting list.
    enrolment = db.scalar(
        select(EnrolmentRow)
        .where(
            EnrolmentRow.fhir_base == fhir_base,
            EnrolmentRow.patient == patient,
            EnrolmentRow.status.in_(CURRENT),
        )
        .order_by(EnrolmentRow.created_at.desc())
        .limit(1)
    ) or enrol(
        db, definitions, fhir_base=fhir_base, patient=patient, track=WAITING_LIST,
        practice=practice, now=now,
    )  # fmt: skip
    request_id = service_request.get("id")
    if not request_id and seen_by in ("post", "letter"):
        # Pushed to us, not read from the EHR: the EHR gets the referral too, so the chart
        # shows it (its own notification or poll of it then finds this record).
        _queue_referral(
            db, enrolment, key, service_request=service_request, practice=practice, now=now
        )
        focus = key_reference(key)
    elif request_id:
        focus = {"reference": f"ServiceRequest/{request_id}"}
    else:
        raise ReferralError("a ServiceRequest read from the EHR has an id")
    if enrolment.track == WAITING_LIST:  # in a plan of the care professional's: invited there
        invite(db, enrolment, now=now)
    _queue_status(
        db, enrolment, key, focus=focus, service_request=service_request, practice=practice,
        now=now,
    )  # fmt: skip
    row = ReferralRow(
        key=key,
        fhir_base=fhir_base,
        identifier_system=system,
        identifier_value=value,
        service_request=f"ServiceRequest/{request_id}" if request_id else None,
        patient=patient,
        enrolment_key=enrolment.key,
        seen_by=seen_by,
        received_at=now,
    )
    try:
        with db.begin_nested():
            db.add(row)
            db.flush()
    except IntegrityError:
        # Another way saw the same referral at the same moment and recorded it first (the
        # rolled-back row has left the session; theirs is committed and visible now).
        found = db.get(ReferralRow, key)
        if found is None:
            raise
        return Intake(found, new=False)
    return Intake(row, new=True)


#: The referrer's view of what happened (Task.businessStatus; Dutch: the EHR's readers are).
WAITING_LIST_STATUS = "Op de wachtlijst; gestart met het zelfhulpprogramma"
#: Namespace of the keys derived from a referral's key.
_DERIVED = uuid.UUID("0b7e4a52-98c1-5d5e-8f0a-3c2d6e1f4a77")


def status_key(referral: str) -> str:
    """The write key of the Task that tells the referrer what became of a referral."""
    return str(uuid.uuid5(_DERIVED, f"{referral}|status"))


def _queue_referral(
    db: Session,
    enrolment: EnrolmentRow,
    key: str,
    *,
    service_request: Mapping[str, Any],
    practice: str | None,
    now: datetime,
) -> None:
    resource = {k: v for k, v in service_request.items() if k not in ("id", "meta", "text")}
    # Their identifier first: it names the referral wherever it is seen again.
    resource["identifier"] = [*service_request.get("identifier", []), key_identifier(key)]
    resource["subject"] = {"reference": f"Patient/{enrolment.patient}"}
    if practice and not resource.get("performer"):
        resource["performer"] = [{"reference": practice}]
    create = {"op": "create", "key": key, "resource": resource}
    queue_writes(db, enrolment, "referral", [create], None, now=now)


def _queue_status(
    db: Session,
    enrolment: EnrolmentRow,
    key: str,
    *,
    focus: dict[str, str],
    service_request: Mapping[str, Any],
    practice: str | None,
    now: datetime,
) -> None:
    """A Task that fulfils the referral, for the referrer to see (R4: a request's filler
    reports with a Task whose ``focus`` is the request; the ServiceRequest itself is the
    referrer's and stays as they wrote it)."""
    task_key = status_key(key)
    task: dict[str, Any] = {
        "resourceType": "Task",
        "identifier": [key_identifier(task_key)],
        "basedOn": [focus],
        "focus": focus,
        "status": "accepted",
        "businessStatus": {"text": WAITING_LIST_STATUS},
        "intent": "order",
        "code": {
            "coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]
        },
        "for": {"reference": f"Patient/{enrolment.patient}"},
        "authoredOn": now.isoformat(timespec="seconds"),
        "lastModified": now.isoformat(timespec="seconds"),
        "output": [
            {
                "type": {"text": "CarePlan"},
                "valueReference": key_reference(enrolment.key),
            }
        ],
    }
    requester = service_request.get("requester")
    if isinstance(requester, dict) and requester.get("reference"):
        task["requester"] = {"reference": str(requester["reference"])}
    if practice:
        task["owner"] = {"reference": practice}
    create = {"op": "create", "key": task_key, "resource": task}
    queue_writes(db, enrolment, "referral-status", [create], None, now=now)


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
    operations = [
        {"op": "update-task", "key": status_key(key), "status": status, "statusReason": why}
        for key in keys
    ]
    if operations:
        queue_writes(db, enrolment, "referral-status", operations, by, now=now)
    return len(operations)
