"""Taking in a referral: a FHIR ServiceRequest for treatment at this practice becomes the
patient's place on the waiting list, exactly once.

Referrals arrive three ways: a Subscription notification, the reconciliation poll that
catches any notification that was lost, and a referral system that pushes them. Any of
them may see the same referral, at the same moment too; :func:`take_referral` is
idempotent on the ServiceRequest's identifier (per EHR): the first one records it and
enrols the patient in the waiting-list track, the others find that record. Enrolment is
idempotent per patient and track as well, so a second referral of a patient already on the
waiting list is recorded and keeps the place they have.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fhir_burnout.errors import FhirBurnoutError
from fhir_burnout.referral._tables import ReferralRow
from fhir_burnout.workflow import Definitions, enrol

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


def _identifier(request: Mapping[str, Any]) -> tuple[str, str]:
    for identifier in request.get("identifier", []) or []:
        system, value = identifier.get("system"), identifier.get("value")
        if isinstance(system, str) and system and isinstance(value, str) and value:
            return system, value
    raise ReferralError("the ServiceRequest has no identifier with a system and a value")


def _patient(request: Mapping[str, Any], fhir_base: str) -> str:
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
    system, value = _identifier(service_request)
    fhir_base = fhir_base.rstrip("/")
    key = referral_key(fhir_base, system, value)
    known = db.get(ReferralRow, key)
    if known is not None:
        return Intake(known, new=False)
    status = service_request.get("status")
    if status not in _OPEN:
        raise ReferralError(f"the ServiceRequest is {status!r}, not active: nothing to take in")
    patient = _patient(service_request, fhir_base)
    now = now or datetime.now(UTC)
    enrolment = enrol(
        db, definitions, fhir_base=fhir_base, patient=patient, track=WAITING_LIST,
        practice=practice, now=now,
    )  # fmt: skip
    request_id = service_request.get("id")
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
