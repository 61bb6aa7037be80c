"""The app's own small FHIR endpoint: ``POST /fhir/PlanDefinition/{id}/$apply``.

Other systems (a referral system, another module) enrol a patient the way R4 describes
(PlanDefinition $apply, §12.18.4): a Parameters body with ``subject`` (the Patient on the
EHR); the answer is the CarePlan, with its RequestGroup and Tasks contained. The plan
reaches the EHR through the outbox, like every other write.

Only a machine caller the practice named may call it (:mod:`fhir_burnout.web._machine`: a
``system/CarePlan.c`` token for our base URL from a client in ``api_clients``). Who enrols
is the practice: the practice comes from the configuration (the ``[[ehr]]``'s
``practice``) and the caller from its token, never from the body, so R4's optional
``practitioner`` and ``organization`` parameters are refused (400) rather than believed.
The subject must be a FHIR id (R4 §2.24.0.1: at most 64 letters, digits, ``-`` and ``.``)
of a Patient the EHR has: it is read first, with the worker's credentials (no such Patient:
422; the EHR silent: 503 with ``Retry-After``, nothing stored). Every error is an
OperationOutcome; a body over :data:`MAX_BODY_BYTES` is refused (413) before it is parsed.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from flask import Blueprint, Response, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from fhir_burnout.errors import FhirBurnoutError
from fhir_burnout.referral import ReferralError, existing_patient
from fhir_burnout.sync import OutboxEntry
from fhir_burnout.web._context import AppContext, app_context
from fhir_burnout.web._csrf import csrf_exempt
from fhir_burnout.web._gate import backend_caller
from fhir_burnout.web._machine import (
    BodyTooLargeError,
    Caller,
    EhrUnavailableError,
    UnsupportedMediaError,
    asking_ehr,
    ehr_client,
    read_body,
)
from fhir_burnout.web._outcomes import FHIR_JSON, outcome_response
from fhir_burnout.workflow import EnrolmentRow, PlanError, enrol

bp = Blueprint("fhir_api", __name__, url_prefix="/fhir")
log = logging.getLogger(__name__)

#: The largest body taken: a Parameters resource with one reference is a few hundred bytes.
MAX_BODY_BYTES = 16 * 1024
#: A FHIR id (R4 §2.24.0.1 "id").
FHIR_ID = re.compile(r"[A-Za-z0-9\-\.]{1,64}")
#: The parameters this operation takes from a caller.
TAKEN = frozenset({"subject"})
#: R4 $apply parameters that name who enrols: the configuration and the token say that.
NOT_TAKEN = frozenset({"practitioner", "organization"})
JSON_TYPES = frozenset({FHIR_JSON, "application/json"})


class BadRequestError(FhirBurnoutError, ValueError):
    """The request body is not what the operation takes."""

    code = "invalid"


class NoSuchPatientError(FhirBurnoutError, ValueError):
    """The subject is not a Patient on the EHR (HTTP 422)."""

    code = "not-found"


#: The HTTP status of each refusal (the first class that matches).
_STATUS: tuple[tuple[type[FhirBurnoutError], int], ...] = (
    (PlanError, 404),
    (UnsupportedMediaError, 415),
    (BodyTooLargeError, 413),
    (BadRequestError, 400),
    (NoSuchPatientError, 422),
)


@bp.post("/PlanDefinition/<plan_id>/$apply")
@csrf_exempt
@backend_caller("CarePlan", "c")
def apply(caller: Caller, plan_id: str) -> Response:
    """Enrol the Parameters' subject in the track ``plan_id``; answer with the CarePlan."""
    state = app_context()
    try:
        if request.mimetype not in JSON_TYPES:
            raise UnsupportedMediaError(
                f"Content-Type {request.mimetype or '(none)'!r} is not taken here: send a FHIR"
                " Parameters resource as application/fhir+json"
            )
        patient = _patient(_parameters(read_body(MAX_BODY_BYTES)))
        state.definitions.plan(plan_id)  # an unknown track: 404 before the EHR is asked
        _on_ehr(state, caller.fhir_base, patient)
        # The practice is the configured one, for the EHR whose server issued the token.
        practice = state.settings.ehr(caller.fhir_base).practice
        with Session(state.engine) as db, db.begin():
            enrolment = enrol(
                db, state.definitions, fhir_base=caller.fhir_base, patient=patient,
                track=plan_id, practice=practice,
            )  # fmt: skip
            careplan = _careplan(db, enrolment)
            key = enrolment.key
    except EhrUnavailableError as error:
        return outcome_response(error, 503, error.headers())
    except FhirBurnoutError as error:
        status = next((s for kind, s in _STATUS if isinstance(error, kind)), None)
        if status is None:
            raise  # our configuration: the app's error handler answers 500
        return outcome_response(error, status)
    # The client id is not personal data; it says which system enrolled (for the audit).
    log.info("$apply: enrolment %s by API client %s", key, caller.client_id[:64])
    return Response(json.dumps(careplan, ensure_ascii=False), status=200, mimetype=FHIR_JSON)


def _parameters(body: bytes) -> dict[str, Any]:
    """The Parameters' values by name; BadRequestError for anything but a Parameters
    resource of known, single, valued parameters (R4 §2.36 Parameters)."""
    try:
        resource = json.loads(body.decode("utf-8-sig") or "null")
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BadRequestError("the body is not JSON (UTF-8)") from None
    if not isinstance(resource, dict) or resource.get("resourceType") != "Parameters":
        raise BadRequestError("the body must be a FHIR Parameters resource")
    parameters = resource.get("parameter", [])
    if not isinstance(parameters, list) or not all(isinstance(p, dict) for p in parameters):
        raise BadRequestError("Parameters.parameter must be a list of parameters")
    found: dict[str, Any] = {}
    for n, parameter in enumerate(parameters):
        name = parameter.get("name")
        where = f"Parameters.parameter[{n}]"
        if not isinstance(name, str) or not name:
            raise BadRequestError(f"{where} has no name")
        if name in NOT_TAKEN:
            raise BadRequestError(
                f"the parameter {name!r} is not taken: the author and the practice come from"
                " the practice's configuration and your token"
            )
        if name not in TAKEN:
            raise BadRequestError(f"unknown parameter {name[:40]!r}: only 'subject' is taken")
        if name in found:
            raise BadRequestError(f"the parameter {name!r} is given more than once")
        values = [v for k, v in parameter.items() if k.startswith("value")]
        others = (
            set(parameter)
            - {"name", "id", "extension"}
            - {k for k in parameter if k.startswith("value")}
        )
        if len(values) != 1 or others:  # resource and part: not for a subject
            raise BadRequestError(f"{where} ({name}) must have exactly one value[x]")
        found[name] = values[0]
    return found


def _patient(params: dict[str, Any]) -> str:
    """The subject's Patient id; BadRequestError unless it is ``Patient/<FHIR id>``."""
    value = params.get("subject")
    if value is None:
        raise BadRequestError("the parameter 'subject' (Patient/id) is required")
    text = value.get("reference") if isinstance(value, dict) else value
    kind, _, patient = text.partition("/") if isinstance(text, str) else ("", "", "")
    if kind != "Patient" or not FHIR_ID.fullmatch(patient):
        shown = repr(text[:80]) if isinstance(text, str) else "another type"
        raise BadRequestError(
            f"expected a reference to Patient (Patient/<id>, an id of at most 64 letters,"
            f" digits, '-' or '.'), got {shown}"
        )
    return patient


def _on_ehr(state: AppContext, fhir_base: str, patient: str) -> None:
    """Read the Patient on the EHR before anything is enrolled: NoSuchPatientError when it
    has none (404, 410), EhrUnavailableError when it does not answer."""
    with asking_ehr("enrol again"):
        try:
            existing_patient(ehr_client(state, fhir_base), patient)
        except ReferralError as error:
            raise NoSuchPatientError(str(error)) from None


def _careplan(db: Session, enrolment: EnrolmentRow) -> dict[str, Any]:
    """The CarePlan as queued for the EHR, with its RequestGroup and Tasks contained."""
    entries = db.scalars(
        select(OutboxEntry).where(OutboxEntry.kind == "enrolment").order_by(OutboxEntry.id)
    )
    for entry in entries:
        operations = json.loads(entry.payload)["operations"]
        if operations and operations[0]["key"] == enrolment.key:
            break
    else:  # pragma: no cover - an enrolment always has its entry
        raise PlanError(f"enrolment {enrolment.key} has no plan")
    keys = {op["key"] for op in operations}

    def local(value: Any) -> Any:
        if isinstance(value, dict):
            out = {k: local(v) for k, v in value.items()}
            reference = value.get("reference")
            if isinstance(reference, str) and reference[9:] in keys:
                out["reference"] = "#" + reference[9:]
            return out
        if isinstance(value, list):
            return [local(v) for v in value]
        return value

    careplan = local(operations[0]["resource"])
    careplan["activity"] = [{"reference": {"reference": "#" + operations[1]["key"]}}]
    careplan["contained"] = [{**local(op["resource"]), "id": op["key"]} for op in operations[1:]]
    for contained in careplan["contained"]:
        for link in ("basedOn",):
            if link in contained:
                contained[link] = [{"reference": "#"}]
    return dict(careplan)
