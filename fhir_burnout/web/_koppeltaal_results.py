"""``GET /koppeltaal/results/<key>``: the client's results document, where a Koppeltaal
DocumentReference's ``content.attachment.url`` points (draft T029; koppeltaal/_results.py).

The domain's store holds only the metadata and the link; the document stays here. IG 0.16.3
``documenten-delen.md`` ("Direct ophalen via de Koppeltaal FHIR store"): the EHR gets an
access token from the domain's authorization server and GETs the URL with it as
``Authorization: Bearer``; the scope that lets it read the DocumentReference lets it fetch the
document. So:

- **An EHR with a token** (:func:`_domain_caller`): a token the domain's auth service issued
  for us (``aud`` our ``base_url``, signature by the domain's keys: ``web/_bearer.py``), whose
  scopes let it read our DocumentReferences (``system/DocumentReference`` with ``r``, not
  narrowed to another app's ``resource-origin``). Authorisation is the domain's: no
  ``api_clients`` list of ours. Wrong or no token: 401 (OperationOutcome, RFC 6750
  challenge); a token that may not read them: 403; a key its domain does not know, or a
  token bound to another patient: 404.
- **A care professional's browser** (no token): a session launched by a care professional
  through a Koppeltaal launch of the same domain sees it for their own clients (the one they
  launched from, their CareTeams', those whose Task they launched; anyone else's: 404);
  another session gets a readable 403, a browser with neither a session nor a token a
  readable 401 (``WWW-Authenticate``).

The document is self-contained HTML (no scripts, links or styles from elsewhere; the EHR can
archive it as it is) about that client only, in Dutch (the DocumentReference's
``attachment.language``) for an EHR, in the reader's language for a person;
``Cache-Control: no-store``. Nothing about the client is logged.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any

from flask import Blueprint, Response, current_app, render_template, request
from sqlalchemy.orm import Session

from fhir_burnout.errors import FhirBurnoutError
from fhir_burnout.koppeltaal import CareTeamUnreadableError, KoppeltaalTaskRow, clients_of
from fhir_burnout.settings import Ehr, Settings
from fhir_burnout.smart_launch import AccessTokenError, InsufficientScopeError, require_scope
from fhir_burnout.web._bearer import UnknownCallerError, authenticate, challenge
from fhir_burnout.web._context import app_context
from fhir_burnout.web._i18n import format_date, translate, translate_n
from fhir_burnout.web._launch import SessionExpired, current_session, practitioner_reference
from fhir_burnout.web._machine import client_id_of
from fhir_burnout.web._memo import current_memo
from fhir_burnout.web._outcomes import outcome_response
from fhir_burnout.web._render import language, message_page
from fhir_burnout.web._sessions import LaunchSessionRow
from fhir_burnout.workflow import patient_overview

log = logging.getLogger(__name__)

bp = Blueprint("koppeltaal_results", __name__, url_prefix="/koppeltaal/results")

#: The document's language for an EHR: the DocumentReference's ``attachment.language``.
DOCUMENT_LANGUAGE = "nl"


class DocumentNotFoundError(FhirBurnoutError):
    """No results document of this key for the caller's domain (HTTP 404)."""

    code = "not-found"


class _RefusedError(Exception):
    """A caller let in by none of the two ways: the answer it gets."""

    def __init__(self, response: Response) -> None:
        super().__init__()
        self.response = response


def _koppeltaal_ehr(settings: Settings, fhir_base: str) -> Ehr | None:
    """The ``[[ehr]]`` of this Koppeltaal domain, or None."""
    wanted = fhir_base.rstrip("/")
    return next(
        (e for e in settings.ehrs if e.mode == "koppeltaal" and e.fhir_base == wanted), None
    )


def _reads_our_documents(claims: dict[str, Any], device: str) -> None:
    """Raise :class:`InsufficientScopeError` unless a ``system/`` scope lets the token read
    DocumentReferences, and is not narrowed to another app's (``?resource-origin=Device/x``,
    the Koppeltaal role scopes)."""
    for scope in str(claims.get("scope", "")).split():
        plain, _, narrowing = scope.partition("?")
        try:
            require_scope({"scope": plain}, "DocumentReference", "r", contexts=("system",))
        except InsufficientScopeError:
            continue
        if not narrowing or narrowing == f"resource-origin={device}":
            return
    raise InsufficientScopeError("the token's scopes do not allow reading our DocumentReferences")


def _domain_caller(key: str) -> tuple[str, KoppeltaalTaskRow]:
    """The domain of an EHR's token and the KT2_Task ``key`` of that domain; else
    :class:`_RefusedError` with the OperationOutcome the caller gets."""
    state = app_context()
    try:
        claims, fhir_base = authenticate(state)
        ehr = _koppeltaal_ehr(state.settings, fhir_base)
        if ehr is None:
            raise UnknownCallerError("the token comes from an EHR that is not a Koppeltaal domain")
        _reads_our_documents(claims, f"Device/{ehr.worker_client_id}")
    except (AccessTokenError, InsufficientScopeError, UnknownCallerError) as error:
        raise _RefusedError(outcome_response(error, *challenge(error))) from None
    domain = ehr.fhir_base.rstrip("/")
    with Session(state.reader) as db:
        task = db.get(KoppeltaalTaskRow, (domain, key))
    # A token with a launch context is for that one patient only.
    bound = str(claims.get("patient") or "").removeprefix("Patient/")
    if task is None or (bound and bound != task.patient.removeprefix("Patient/")):
        missing = DocumentNotFoundError(f"no results document {key[:64]!r} in this domain")
        raise _RefusedError(outcome_response(missing, 404))
    log.info("results document fetched by client %s", client_id_of(claims)[:64])
    return domain, task


def _koppeltaal_practitioner() -> LaunchSessionRow:
    """The signed-in care professional of a Koppeltaal domain; else :class:`_RefusedError` with the
    readable page: 401 for a browser with no session, 403 for anyone else's session."""
    try:
        row = current_session()
    except SessionExpired:
        row = None
    if row is None:
        page = current_app.make_response(message_page("ktr_portal_first", 401))
        page.headers["WWW-Authenticate"] = "Bearer"
        raise _RefusedError(page)
    settings: Settings = app_context().settings
    if row.role != "practitioner" or _koppeltaal_ehr(settings, row.fhir_base) is None:
        raise _RefusedError(current_app.make_response(message_page("ktr_portal_first", 403)))
    return row


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


def _document(domain: str, task: KoppeltaalTaskRow, lang: str) -> Response:
    """The results document of the client of ``task``, in ``lang``."""
    state = app_context()
    with Session(state.reader) as db:
        overview = patient_overview(
            db, state.definitions, fhir_base=domain, patient=task.patient.removeprefix("Patient/"),
            lang=lang, forms=current_memo().form,
        )  # fmt: skip

    def day(value: datetime | date) -> str:
        when = value.date() if isinstance(value, datetime) else value
        return format_date(when.isoformat(), lang)

    def t(key: str, **values: str) -> str:
        return translate(key, lang, **values)

    def tn(key: str, n: int, **values: str) -> str:
        return translate_n(key, n, lang, **values)

    html = render_template(
        "koppeltaal_results.html", lang=lang, t=t, tn=tn, overview=overview,
        patient=task.patient, printed=day(date.today()), day=day,
    )  # fmt: skip
    return Response(html, mimetype="text/html")


@bp.get("/<key>")
def results_page(key: str) -> Response:
    """The results document of the client of KT2_Task ``key``: for an EHR of the domain with
    its token, or a care professional the domain launched."""
    try:
        if "Authorization" in request.headers:
            domain, task = _domain_caller(key)
            return _no_store(_document(domain, task, DOCUMENT_LANGUAGE))
        row = _koppeltaal_practitioner()
    except _RefusedError as refused:
        return _no_store(refused.response)
    domain = row.fhir_base.rstrip("/")
    with Session(app_context().reader) as db:
        found = db.get(KoppeltaalTaskRow, (domain, key))
        if found is None or not _theirs(db, row, found):
            return _no_store(current_app.make_response(message_page("ktr_not_found", 404)))
    return _no_store(_document(domain, found, language()))


def _theirs(db: Session, row: LaunchSessionRow, task: KoppeltaalTaskRow) -> bool:
    """Whether the care professional of ``row`` may read the results of ``task``'s client:
    the client they launched from, one of their CareTeams' or whose Task they launched
    (``koppeltaal.clients_of``, as ``/practice``). Anyone else's client is "not found",
    also when the CareTeams cannot be read (never everybody's)."""
    patient = task.patient.removeprefix("Patient/")
    if row.patient == patient:
        return True
    by = practitioner_reference(row.fhir_user)
    if by is None:
        return False
    try:
        client = app_context().ehr_clients.get(task.fhir_base)
        return patient in clients_of(db, client, task.fhir_base, by)
    except (CareTeamUnreadableError, FhirBurnoutError):
        return False
