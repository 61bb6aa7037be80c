"""``POST /referrals``: where a referral system pushes a referral (docs/referral-api.md).

The body is a FHIR R4 ServiceRequest whose subject is a Patient on the EHR, a Bundle
(transaction, batch or collection) with one ServiceRequest and its Patient, or an XML
referral letter (docs/referral-letter.md). The caller authenticates with a bearer token
for the app (:mod:`fhir_burnout.web._machine`: a client the practice named in
``api_clients``, ``aud`` our base URL) that allows creating ServiceRequests
(``system/ServiceRequest.c`` or wider).

In this order, each step refusing with an OperationOutcome: the token (401, 403), the
content type (415), the size (413, before anything is parsed), the body (400, 413), the
referral itself (422). Then the patient gets an id on the EHR: read (a ServiceRequest
naming ``Patient/<id>``), or found by identifier or created
(:func:`fhir_burnout.referral.match_or_create_patient`; several matches: 409; a BSN match
under another name or birth date waits for a person). Only then is the referral taken in
(:func:`fhir_burnout.referral.take_referral`, one transaction): 201 for a new referral, 200
for one we have (the same referral pushed again). When the EHR does not answer nothing is
stored and the answer is 503 with ``Retry-After``: the referral system sends the same
referral again later, which is safe because intake is idempotent.

Nothing leaks to the caller: every value put into an EHR search is escaped (R4 §3.1.1.5.7:
a comma is OR otherwise), the answer is what the caller sent plus our ids (the referral's
key as an identifier, the Patient id we resolved from what they sent), never the EHR's
copy of anything, and a ServiceRequest the EHR already has under the same identifier is
adopted only when its ``performer`` is this practice (else 409).
"""

from __future__ import annotations

import itertools
import json
import logging
import re
from dataclasses import dataclass
from typing import Any, Literal

from fhir.resources.R4B import get_fhir_model_class
from flask import Blueprint, Response, request
from pydantic import ValidationError
from sqlalchemy.orm import Session

from fhir_burnout.errors import FhirBurnoutError, FhirServerError
from fhir_burnout.referral import (
    MAX_LETTER_BYTES,
    AmbiguousPatientError,
    PatientMatch,
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
    search_token,
    take_referral,
)
from fhir_burnout.sync import key_identifier
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

bp = Blueprint("referral_api", __name__)
log = logging.getLogger(__name__)

JSON_TYPES = frozenset({FHIR_JSON, "application/json"})
XML_TYPES = frozenset({"application/xml", "text/xml"})
#: The largest body taken, of any type: a referral letter's limit, far above any referral.
MAX_BODY_BYTES = MAX_LETTER_BYTES
BUNDLE_TYPES = frozenset({"transaction", "batch", "collection"})
#: The longest identifier system and value taken (what the referral table keeps): a longer
#: one is no referral system's, and would only reach the EHR as an oversized search.
MAX_SYSTEM, MAX_VALUE = 512, 256

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


class ReferralConflictError(FhirBurnoutError):
    """The EHR holds a referral with this identifier that is not for this practice, or
    several: nothing is taken in (HTTP 409)."""

    code = "conflict"


@dataclass(frozen=True)
class Pushed:
    """A referral as pushed: its ServiceRequest, and the Patient it refers to when the
    body brought one (else the ServiceRequest names ``Patient/<id>`` on the EHR)."""

    service_request: dict[str, Any]
    patient: dict[str, Any] | None
    seen_by: Literal["post", "letter"]


@bp.post("/referrals")
@csrf_exempt
@backend_caller("ServiceRequest", "c", no_store=True)
def push(caller: Caller) -> Response:
    """Take in a pushed referral: 201 when new, 200 when we have it; else an
    OperationOutcome (400, 401, 403, 409, 413, 415, 422, 503)."""
    state = app_context()
    try:
        fhir_base = caller.fhir_base
        kind = _kind()
        body = read_body(MAX_BODY_BYTES)
        practice = state.settings.ehr(fhir_base).practice
        pushed = _letter(body, practice) if kind == "xml" else _fhir(body, fhir_base)
        _check_sizes(pushed)
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
    (ReferralConflictError, 409),
    (ReferralError, 422),
)


def _refusal(error: FhirBurnoutError) -> Response:
    """The OperationOutcome answer to ``error``, with its status and headers."""
    headers: dict[str, str] = {}
    if isinstance(error, ReferralLetterError):
        status = 413 if error.code == "too-long" else 400
    elif isinstance(error, EhrUnavailableError):
        status, headers = 503, error.headers()
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


def _check_sizes(pushed: Pushed) -> None:
    """Refuse identifiers longer than a referral system's: they would reach the EHR as an
    oversized search (and an EHR that refuses it looks like an EHR that is down)."""
    sent = (("ServiceRequest", pushed.service_request), ("Patient", pushed.patient))
    for where, resource in sent:
        for identifier in (resource or {}).get("identifier") or []:
            if not isinstance(identifier, dict):
                continue
            system, value = identifier.get("system"), identifier.get("value")
            if len(str(system or "")) > MAX_SYSTEM or len(str(value or "")) > MAX_VALUE:
                raise BadBodyError(
                    f"{where}.identifier: a system is at most {MAX_SYSTEM} characters, a value"
                    f" at most {MAX_VALUE}"
                )


# --- taking it in ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Found:
    """Where a pushed referral's patient is on the EHR, and whether we may say so."""

    patient: str
    #: what the caller may be told: the Patient we resolved from what they sent (None: their
    #: own subject reference stays, because the id came from elsewhere or is uncertain)
    told: str | None
    identity_issue: str | None = None
    #: the EHR's own copy of the referral, adopted (its performer is this practice)
    on_ehr: dict[str, Any] | None = None


def _take(
    state: AppContext, fhir_base: str, pushed: Pushed, practice: str | None
) -> tuple[dict[str, Any], bool]:
    """Give the patient an id on the EHR (unless we know the referral), then take the
    referral in: (the answer for the caller, whether it is new)."""
    sent = {k: v for k, v in pushed.service_request.items() if k not in ("id", "meta")}
    identifier = referral_identifier(sent)
    key = referral_key(fhir_base, *identifier)
    with Session(state.engine) as db:
        known = db.get(ReferralRow, key)
        found = None if known is None else _Found(known.patient, _told(known))
    if found is None:
        # Refuse what take_referral would refuse before anything is written to the EHR.
        if sent.get("status") != "active":
            raise ReferralError(
                f"the ServiceRequest is {sent.get('status')!r}, not active: nothing to take in"
            )
        found = _patient_on_ehr(state, fhir_base, pushed, identifier, practice)
    # The EHR's copy is taken in when it is for this practice: the EHR has it already.
    taken = dict(found.on_ehr) if found.on_ehr is not None else dict(sent)
    taken["subject"] = {**(taken.get("subject") or {}), "reference": f"Patient/{found.patient}"}
    with Session(state.engine) as db, db.begin():
        intake = take_referral(
            db, state.definitions, fhir_base=fhir_base, service_request=taken,
            seen_by=pushed.seen_by, practice=practice,
            triage=state.settings.ehr(fhir_base).triage,
            identity_issue=found.identity_issue,
        )  # fmt: skip
        new = intake.new
    # The key is a hash of the identifier: no patient data in the log.
    log.info("pushed referral %s: %s", key, "taken in" if new else "known already")
    return _answer(sent, key, found.told), new


def _told(row: ReferralRow) -> str | None:
    """The Patient id a caller may be told for a referral we have: the one resolved from a
    push, not one read from the EHR's copy nor one under doubt."""
    pushed = row.seen_by in ("post", "letter") and row.service_request is None
    return row.patient if pushed and not row.identity_issue else None


def _answer(sent: dict[str, Any], key: str, patient: str | None) -> dict[str, Any]:
    """What the caller sent plus our ids: the referral's key (as the identifier the EHR's
    copy carries) and, where we may say it, the Patient on the EHR."""
    answer = dict(sent)
    answer["identifier"] = [*(sent.get("identifier") or []), key_identifier(key)]
    if patient is not None:
        answer["subject"] = {**(sent.get("subject") or {}), "reference": f"Patient/{patient}"}
    return answer


def _patient_on_ehr(
    state: AppContext, fhir_base: str, pushed: Pushed, identifier: tuple[str, str],
    practice: str | None,
) -> _Found:  # fmt: skip
    """The referred patient on the EHR, found or created (the one synchronous write: see
    fhir_burnout.referral._patients), or the EHR's own copy of the referral when it has one
    for this practice; EhrUnavailableError when the EHR does not answer."""

    def refused(error: FhirServerError) -> FhirBurnoutError | None:
        if error.status in (400, 422):  # the EHR refuses the Patient: the referrer can fix it
            return ReferralError(f"the EHR refused the Patient: {error}")
        return None

    with asking_ehr("send the referral again", refused):
        client = ehr_client(state, fhir_base)
        # Escaped (R4 §3.1.1.5.7), else a comma in the value searches for other referrals too.
        query = {"identifier": search_token(*identifier), "_count": "2"}
        copies = list(itertools.islice(client.search("ServiceRequest", query), 2))
        if copies:
            copy = _adoptable(copies, practice)
            return _Found(referral_patient(copy, fhir_base), None, on_ehr=copy)
        if pushed.patient is None:
            patient = existing_patient(client, referral_patient(pushed.service_request, fhir_base))
            return _Found(patient, patient)
        match: PatientMatch = match_or_create_patient(client, pushed.patient)
        told = None if match.identity_issue else match.id
        return _Found(match.id, told, match.identity_issue)


def _adoptable(copies: list[dict[str, Any]], practice: str | None) -> dict[str, Any]:
    """The EHR's one ServiceRequest with the pushed identifier, when it is for this
    practice (its performer); else ReferralConflictError, and nothing is taken in: a
    referral for another practice is not ours to read or to enrol from."""
    if len(copies) > 1:
        raise ReferralConflictError(
            "the EHR holds more than one referral with this identifier; the practice has to"
            " sort that out before this referral can be taken in"
        )
    performers = [p for p in copies[0].get("performer") or [] if isinstance(p, dict)]
    references = {str(p.get("reference") or "") for p in performers}
    if not practice or not any(r == practice or r.endswith(f"/{practice}") for r in references):
        raise ReferralConflictError(
            "the EHR holds a referral with this identifier that is not for this practice;"
            " nothing was taken in: give this referral an identifier of its own"
        )
    return copies[0]
