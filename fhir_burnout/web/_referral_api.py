"""``POST /referrals``: where a referral system pushes a referral (docs/referral-api.md).

The body is a FHIR R4 ServiceRequest whose subject is a Patient on the EHR, a Bundle
(transaction, batch or collection) with one ServiceRequest and its Patient, or an XML
referral letter (docs/referral-letter.md). The caller authenticates with a bearer token
from the practice's authorization server (:mod:`fhir_burnout.web._bearer`) that allows
creating ServiceRequests (``system/ServiceRequest.c`` or wider).

In this order, each step refusing with an OperationOutcome: the token (401, 403), the
content type (415), the size (413, before anything is parsed), the body (400, 413), the
referral itself (422). Then the patient gets an id on the EHR: read (a ServiceRequest
naming ``Patient/<id>``), or found by identifier or created
(:func:`fhir_burnout.referral.match_or_create_patient`; several matches: 409). Only then
is the referral taken in (:func:`fhir_burnout.referral.take_referral`, one transaction):
201 for a new referral, 200 for one we have (the same referral pushed again), the body
being the ServiceRequest as taken in, its subject ``Patient/<id>``. When the EHR does not
answer nothing is stored and the answer is 503 with ``Retry-After``: the referral system
sends the same referral again later, which is safe because intake is idempotent.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any, Literal

from fhir.resources.R4B import get_fhir_model_class
from flask import Blueprint, Response, current_app, request
from pydantic import ValidationError
from sqlalchemy.orm import Session

from fhir_burnout.errors import FhirBurnoutError, FhirConnectionError, FhirServerError
from fhir_burnout.fhir import FhirClient
from fhir_burnout.referral import (
    MAX_LETTER_BYTES,
    AmbiguousPatientError,
    ReferralError,
    ReferralLetterError,
    ReferralRow,
    existing_patient,
    letter_to_fhir,
    match_or_create_patient,
    read_referral_letter,
    referral_identifier,
    referral_key,
    referral_patient,
    take_referral,
)
from fhir_burnout.smart_launch import (
    AccessTokenError,
    InsufficientScopeError,
    TokenRequestError,
    require_scope,
)
from fhir_burnout.sync import EhrClients
from fhir_burnout.web._bearer import authenticate, challenge
from fhir_burnout.web._outcomes import FHIR_JSON, outcome_response

bp = Blueprint("referral_api", __name__)
log = logging.getLogger(__name__)

JSON_TYPES = frozenset({FHIR_JSON, "application/json"})
XML_TYPES = frozenset({"application/xml", "text/xml"})
#: The largest body taken, of any type: a referral letter's limit, far above any referral.
MAX_BODY_BYTES = MAX_LETTER_BYTES
#: Seconds a referral system is asked to wait when the EHR does not answer (unless the
#: EHR itself said how long).
RETRY_AFTER_SECONDS = 30
BUNDLE_TYPES = frozenset({"transaction", "batch", "collection"})

_QUOTED = re.compile(r"'[^']*'")


class BadBodyError(FhirBurnoutError, ValueError):
    """The body is not a referral we can read (HTTP 400)."""

    code = "invalid"

    def __init__(self, message: str, issues: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self._issues = issues

    def issues(self) -> list[dict[str, Any]]:
        """One issue per problem found, else the message."""
        return self._issues or super().issues()


class UnsupportedMediaError(FhirBurnoutError, ValueError):
    """A Content-Type this endpoint does not take (HTTP 415)."""

    code = "not-supported"


class BodyTooLargeError(FhirBurnoutError, ValueError):
    """More than :data:`MAX_BODY_BYTES` (HTTP 413), refused before it is parsed."""

    code = "too-long"


class EhrUnavailableError(FhirBurnoutError):
    """The EHR did not answer, or not usably: try again later (HTTP 503)."""

    code = "transient"

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Pushed:
    """A referral as pushed: its ServiceRequest, and the Patient it refers to when the
    body brought one (else the ServiceRequest names ``Patient/<id>`` on the EHR)."""

    service_request: dict[str, Any]
    patient: dict[str, Any] | None
    seen_by: Literal["post", "letter"]


@bp.post("/referrals")
def push() -> Response:
    """Take in a pushed referral: 201 when new, 200 when we have it; else an
    OperationOutcome (400, 401, 403, 409, 413, 415, 422, 503)."""
    state = current_app.extensions["fhir_burnout"]
    try:
        claims, fhir_base = authenticate(state)
        # A machine caller acting for the practice: a person's user/ token (a patient's
        # at the portal, say) may never enrol or refer anyone.
        require_scope(claims, "ServiceRequest", "c", contexts=("system",))
        kind = _kind()
        body = _body()
        practice = state["settings"].backend(fhir_base).practice
        pushed = _letter(body, practice) if kind == "xml" else _fhir(body, fhir_base)
        service_request, new = _take(state, fhir_base, pushed, practice)
    except FhirBurnoutError as error:
        return _refusal(error)
    response = Response(
        json.dumps(service_request, ensure_ascii=False), 201 if new else 200, mimetype=FHIR_JSON
    )
    response.headers["Cache-Control"] = "no-store"
    return response


#: The HTTP status of each refusal (the first class that matches).
_STATUS: tuple[tuple[type[FhirBurnoutError], int], ...] = (
    (UnsupportedMediaError, 415),
    (BodyTooLargeError, 413),
    (BadBodyError, 400),
    (AmbiguousPatientError, 409),
    (ReferralError, 422),
)


def _refusal(error: FhirBurnoutError) -> Response:
    """The OperationOutcome answer to ``error``, with its status and headers."""
    headers: dict[str, str] = {}
    if isinstance(error, AccessTokenError | InsufficientScopeError):
        status, headers = challenge(error)
    elif isinstance(error, ReferralLetterError):
        status = 413 if error.code == "too-long" else 400
    elif isinstance(error, EhrUnavailableError):
        status = 503
        headers["Retry-After"] = str(max(RETRY_AFTER_SECONDS, int(error.retry_after or 0)))
    else:
        # Not listed: our configuration (no backend or key for this EHR), 500.
        status = next((s for kind, s in _STATUS if isinstance(error, kind)), 500)
        if status == 500:
            log.error("pushed referral: cannot be taken in here: %s", error)
    response = outcome_response(error, status, headers)
    response.headers["Cache-Control"] = "no-store"
    return response


def _kind() -> Literal["json", "xml"]:
    mimetype = request.mimetype
    if mimetype in JSON_TYPES:
        return "json"
    if mimetype in XML_TYPES:
        return "xml"
    raise UnsupportedMediaError(
        f"Content-Type {mimetype or '(none)'!r} is not taken here: send FHIR JSON"
        " (application/fhir+json) or a referral letter (application/xml)"
    )


def _body() -> bytes:
    """The body, refused once it is larger than :data:`MAX_BODY_BYTES` without reading
    more of it than that (a declared length is refused before reading at all)."""
    declared = request.content_length
    if declared is not None and declared > MAX_BODY_BYTES:
        raise _too_large(declared)
    data = request.stream.read(MAX_BODY_BYTES + 1)
    if len(data) > MAX_BODY_BYTES:
        raise _too_large(None)
    return bytes(data)


def _too_large(size: int | None) -> BodyTooLargeError:
    said = f"{size} bytes" if size is not None else "larger than that"
    return BodyTooLargeError(f"the body is {said}; at most {MAX_BODY_BYTES} bytes are accepted")


# --- reading the body ------------------------------------------------------------------


def _letter(body: bytes, practice: str | None) -> Pushed:
    patient, service_request = letter_to_fhir(read_referral_letter(body), practice=practice)
    return Pushed(service_request, patient, "letter")


def _fhir(body: bytes, fhir_base: str) -> Pushed:
    try:
        resource = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BadBodyError("the body is not JSON (UTF-8)") from None
    kind = resource.get("resourceType") if isinstance(resource, dict) else None
    if kind == "ServiceRequest":
        _validate(resource, "ServiceRequest")
        referral_patient(resource, fhir_base)
        return Pushed(resource, None, "post")
    if kind == "Bundle":
        return _bundle(resource, fhir_base)
    raise BadBodyError("the body must be a FHIR ServiceRequest or a Bundle with one")


def _bundle(bundle: dict[str, Any], fhir_base: str) -> Pushed:
    """The ServiceRequest and its Patient from a Bundle; references between entries are
    resolved as R4 describes (http://hl7.org/fhir/R4/bundle.html#references): a
    reference equal to an entry's fullUrl, or ``Patient/<id>`` of a Patient entry."""
    if bundle.get("type") not in BUNDLE_TYPES:
        raise BadBodyError(
            f"the Bundle's type must be one of {', '.join(sorted(BUNDLE_TYPES))},"
            f" not {str(bundle.get('type'))[:40]!r}"
        )
    entries = bundle.get("entry")
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise BadBodyError("the Bundle has no entries")
    requests, patients = [], []
    for n, entry in enumerate(entries):
        resource = entry.get("resource")
        kind = resource.get("resourceType") if isinstance(resource, dict) else None
        if kind == "ServiceRequest":
            requests.append((n, entry))
        elif kind == "Patient":
            patients.append((n, entry))
        else:
            raise BadBodyError(
                f"Bundle.entry[{n}]: a referral Bundle holds one ServiceRequest and its"
                " Patient, nothing else"
            )
    if len(requests) != 1 or len(patients) > 1:
        raise BadBodyError(
            "the Bundle must hold exactly one ServiceRequest and at most one Patient"
        )
    (n, entry) = requests[0]
    service_request = entry["resource"]
    _validate(service_request, f"Bundle.entry[{n}].resource")
    subject = str((service_request.get("subject") or {}).get("reference") or "")
    if patients:
        (m, patient_entry) = patients[0]
        patient = patient_entry["resource"]
        _validate(patient, f"Bundle.entry[{m}].resource")
        names = {str(patient_entry.get("fullUrl") or "")} - {""}
        if patient.get("id"):
            names.add(f"Patient/{patient['id']}")
        if subject in names:
            return Pushed(service_request, patient, "post")
        raise BadBodyError(
            "the ServiceRequest's subject is not the Bundle's Patient: reference its fullUrl"
            " (urn:uuid:...)"
        )
    referral_patient(service_request, fhir_base)
    return Pushed(service_request, None, "post")


def _validate(resource: dict[str, Any], where: str) -> None:
    """Check structure, cardinality and formats against the R4B model; the problems name
    the element and never its value (it may be patient data)."""
    kind = str(resource["resourceType"])
    try:
        get_fhir_model_class(kind).model_validate(resource)
    except ValidationError as exc:
        issues = []
        for error in exc.errors()[:20]:
            path = ".".join([where, *(str(p) for p in error["loc"])])
            message = _QUOTED.sub("'…'", str(error["msg"]))
            issues.append(
                {
                    "severity": "error",
                    "code": "structure",
                    "diagnostics": f"{path}: {message}",
                    "expression": [path],
                }
            )
        raise BadBodyError(f"{where} is not a valid FHIR R4 {kind}", issues) from None
    except (KeyError, TypeError, ValueError):  # a nested resource of an unknown type
        raise BadBodyError(f"{where} is not a valid FHIR R4 {kind}") from None


# --- taking it in ----------------------------------------------------------------------


def _take(
    state: dict[str, Any], fhir_base: str, pushed: Pushed, practice: str | None
) -> tuple[dict[str, Any], bool]:
    """Give the patient an id on the EHR (unless we know the referral), then take the
    referral in: (the ServiceRequest as taken in, whether it is new)."""
    request_ = {k: v for k, v in pushed.service_request.items() if k not in ("id", "meta")}
    key = referral_key(fhir_base, *referral_identifier(request_))
    with Session(state["engine"]) as db:
        known = db.get(ReferralRow, key)
        patient = known.patient if known is not None else None
    if patient is None:
        # Refuse what take_referral would refuse before anything is written to the EHR.
        if request_.get("status") != "active":
            raise ReferralError(
                f"the ServiceRequest is {request_.get('status')!r}, not active: nothing to take in"
            )
        patient, on_ehr = _patient_on_ehr(state, fhir_base, pushed, referral_identifier(request_))
        if on_ehr is not None:
            # The EHR has this referral already (the referrer wrote it there too): that one
            # is taken in, so the EHR does not get it a second time from us.
            request_ = on_ehr
            patient = referral_patient(on_ehr, fhir_base)
    request_["subject"] = {**(request_.get("subject") or {}), "reference": f"Patient/{patient}"}
    with Session(state["engine"]) as db, db.begin():
        intake = take_referral(
            db, state["definitions"], fhir_base=fhir_base, service_request=request_,
            seen_by=pushed.seen_by, practice=practice,
            triage=state["settings"].backend(fhir_base).triage,
        )  # fmt: skip
        new = intake.new
    # The key is a hash of the identifier: no patient data in the log.
    log.info("pushed referral %s: %s", key, "taken in" if new else "known already")
    return request_, new


def _patient_on_ehr(
    state: dict[str, Any], fhir_base: str, pushed: Pushed, identifier: tuple[str, str]
) -> tuple[str, dict[str, Any] | None]:
    """The referred patient's id on the EHR, found or created (the one synchronous write:
    see fhir_burnout.referral._patients), and the EHR's own copy of the referral when it
    has one with this identifier; EhrUnavailableError when the EHR does not answer."""
    try:
        client = _client(state, fhir_base)
        found = list(client.search("ServiceRequest", {"identifier": "|".join(identifier)}))
        if len(found) == 1:
            return "", dict(found[0])
        if pushed.patient is None:
            patient = existing_patient(client, referral_patient(pushed.service_request, fhir_base))
        else:
            patient = match_or_create_patient(client, pushed.patient)
        return patient, None
    except (FhirConnectionError, TokenRequestError) as error:
        log.warning("pushed referral: the EHR does not answer (%s)", type(error).__name__)
        raise EhrUnavailableError(
            "the EHR does not answer; nothing was stored: send the referral again later"
        ) from None
    except FhirServerError as error:
        if error.status in (400, 422):  # the EHR refuses the Patient: the referrer can fix it
            raise ReferralError(f"the EHR refused the Patient: {error}") from None
        log.warning("pushed referral: the EHR answered %s", error.status)
        raise EhrUnavailableError(
            f"the EHR answered {error.status}; nothing was stored: send the referral again later",
            error.retry_after,
        ) from None


def _client(state: dict[str, Any], fhir_base: str) -> FhirClient:
    # The worker's Backend Services clients, one set per app (made on first use).
    clients = state.get("ehr_clients")
    if clients is None:
        clients = state.setdefault("ehr_clients", EhrClients(state["settings"]))
    client: FhirClient = clients.get(fhir_base)
    return client
