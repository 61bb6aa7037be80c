"""The app's own small FHIR endpoint: ``POST /fhir/PlanDefinition/{id}/$apply``.

Other systems (a referral system, another module) enrol a patient the way R4 describes
(PlanDefinition $apply, §12.18.4): a Parameters body with ``subject`` (the Patient) and
optionally ``practitioner`` and ``organization``; the answer is the CarePlan, with its
RequestGroup and Tasks contained. The plan reaches the EHR through the outbox, like every
other write. Callers authenticate with a bearer token from the practice's authorization
server (the one a configured EHR names in its SMART configuration) that allows creating
CarePlans (``system/CarePlan.c`` or wider). Every error is an OperationOutcome.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, current_app, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from fhir_burnout.errors import FhirBurnoutError
from fhir_burnout.smart_launch import AccessTokenError, InsufficientScopeError, require_scope
from fhir_burnout.sync import OutboxEntry
from fhir_burnout.web._bearer import authenticate, challenge
from fhir_burnout.web._outcomes import FHIR_JSON, outcome_response
from fhir_burnout.workflow import EnrolmentRow, PlanError, enrol

bp = Blueprint("fhir_api", __name__, url_prefix="/fhir")


class BadRequestError(FhirBurnoutError, ValueError):
    """The request body is not what the operation takes."""

    code = "invalid"


@bp.post("/PlanDefinition/<plan_id>/$apply")
def apply(plan_id: str) -> Response:
    """Enrol the Parameters' subject in the track ``plan_id``; answer with the CarePlan."""
    state = current_app.extensions["fhir_burnout"]
    try:
        claims, fhir_base = authenticate(state)
        # A machine caller acting for the practice: a person's user/ token (a patient's
        # at the portal, say) may never enrol or refer anyone.
        require_scope(claims, "CarePlan", "c", contexts=("system",))
        params = _parameters()
        patient = _patient(params)
        author = _reference(params.get("practitioner"), ("Practitioner", "PractitionerRole"))
        practice = _reference(params.get("organization"), ("Organization",))
        if practice is None and state["settings"].backends:
            practice = state["settings"].backend(fhir_base).practice
        with Session(state["engine"]) as db, db.begin():
            enrolment = enrol(
                db, state["definitions"], fhir_base=fhir_base, patient=patient, track=plan_id,
                author=author, practice=practice,
            )  # fmt: skip
            careplan = _careplan(db, enrolment)
    except (AccessTokenError, InsufficientScopeError) as error:
        return outcome_response(error, *challenge(error))
    except PlanError as error:
        return outcome_response(error, 404)
    except BadRequestError as error:
        return outcome_response(error, 400)
    return Response(json.dumps(careplan, ensure_ascii=False), status=200, mimetype=FHIR_JSON)


def _parameters() -> dict[str, Any]:
    try:
        body = json.loads(request.get_data(as_text=True) or "null")
    except ValueError:
        raise BadRequestError("the body is not JSON") from None
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise BadRequestError("the body must be a FHIR Parameters resource")
    found: dict[str, Any] = {}
    for parameter in body.get("parameter", []) or []:
        name = parameter.get("name")
        value = next((v for k, v in parameter.items() if k.startswith("value")), None)
        if name and value is not None:
            found.setdefault(str(name), value)
    return found


def _reference(value: Any, types: tuple[str, ...]) -> str | None:
    if value is None:
        return None
    text = value.get("reference") if isinstance(value, dict) else value
    if not isinstance(text, str) or text.split("/")[0] not in types or text.count("/") != 1:
        raise BadRequestError(f"expected a reference to {' or '.join(types)}, got {text!r}")
    return text


def _patient(params: dict[str, Any]) -> str:
    subject = _reference(params.get("subject"), ("Patient",))
    if subject is None:
        raise BadRequestError("the parameter 'subject' (Patient/id) is required")
    return subject.split("/")[1]


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
