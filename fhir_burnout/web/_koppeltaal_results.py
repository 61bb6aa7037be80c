"""``GET /koppeltaal/results/<key>/<version>``: one published version of the client's results
document, where a Koppeltaal DocumentReference's ``content.attachment.url`` points (draft
T029; koppeltaal/_results.py).

The domain's store holds only the metadata and the link; the document stays here, as it was
rendered when it was published (:func:`results_renderer`, Dutch, for the worker) and stored
with its hash: the same bytes at every fetch, whatever the client does later (the draft's
"Onveranderlijk"). IG 0.16.3 ``documenten-delen.md`` ("Direct ophalen via de Koppeltaal FHIR
store"): the EHR gets an access token from the domain's authorization server and GETs the
URL with it as ``Authorization: Bearer``; the scope that lets it read the DocumentReference
lets it fetch the document. So:

- **An EHR with a token** (:func:`_domain_caller`): a token the domain's auth service issued
  for us (``aud`` our ``base_url``, signature by the domain's keys: ``web/_bearer.py``), whose
  scopes let it read our DocumentReferences (``system/DocumentReference`` with ``r``, not
  narrowed to another app's ``resource-origin``). Authorisation is the domain's: no
  ``api_clients`` list of ours. Wrong or no token: 401 (OperationOutcome, RFC 6750
  challenge); a token that may not read them: 403; a key or version its domain does not know
  (its retention ended, say), or a token bound to another patient: 404. Each fetch is a
  KT2_AuditEvent (``audit.document_fetched``; "Audit-logging bij de bron"), queued through
  the outbox.
- **A care professional's browser** (no token): a session launched by a care professional
  through a Koppeltaal launch of the same domain sees it for their own clients (the one they
  launched from, their CareTeams', those whose Task they launched; anyone else's: 404);
  another session gets a readable 403, a browser with neither a session nor a token a
  readable 401 (``WWW-Authenticate``).

``GET /koppeltaal/results/<key>`` (no version: the link of the build before versions, which
rendered the document anew at each fetch) answers 404 like an unknown version: nothing was
stored of what it showed, so nothing immutable can be served there.

The document is self-contained HTML (no scripts, links or styles from elsewhere; the EHR can
archive it as it is) about that client only, in Dutch (the DocumentReference's
``attachment.language``); its one style block is allowed by its hash (CSP), not a nonce,
since the bytes never change; ``Cache-Control: no-store``. Nothing about the client is logged.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, render_template, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from fhir_burnout.errors import FhirBurnoutError
from fhir_burnout.koppeltaal import (
    CareTeamUnreadableError,
    KoppeltaalTaskRow,
    RenderResults,
    ResultsDocumentRow,
    TraceIds,
    audit,
    clients_of,
    from_headers,
    queue_audit_event,
)
from fhir_burnout.settings import Ehr, Settings
from fhir_burnout.smart_launch import AccessTokenError, InsufficientScopeError, require_scope
from fhir_burnout.web._bearer import UnknownCallerError, authenticate, challenge
from fhir_burnout.web._context import app_context
from fhir_burnout.web._i18n import format_date, translate, translate_n
from fhir_burnout.web._launch import SessionExpired, current_session, practitioner_reference
from fhir_burnout.web._machine import client_id_of
from fhir_burnout.web._memo import current_memo
from fhir_burnout.web._outcomes import outcome_response
from fhir_burnout.web._render import message_page
from fhir_burnout.web._sessions import LaunchSessionRow
from fhir_burnout.workflow import patient_overview

log = logging.getLogger(__name__)

bp = Blueprint("koppeltaal_results", __name__, url_prefix="/koppeltaal/results")

#: The document's language: the DocumentReference's ``attachment.language``.
DOCUMENT_LANGUAGE = "nl"
_STYLE = re.compile(rb"<style>(.*?)</style>", re.DOTALL)


class DocumentNotFoundError(FhirBurnoutError):
    """No results document of this key and version for the caller's domain (HTTP 404)."""

    code = "not-found"


class _RefusedError(Exception):
    """A caller let in by none of the two ways: the answer it gets."""

    def __init__(self, response: Response) -> None:
        super().__init__()
        self.response = response


@dataclass(frozen=True)
class _Version:
    """One stored version, as read for an answer."""

    html: bytes
    sha1: str
    document_reference: str


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


def _not_found(key: str) -> _RefusedError:
    missing = DocumentNotFoundError(f"no results document {key[:64]!r} in this domain")
    return _RefusedError(outcome_response(missing, 404))


def _domain_caller(key: str) -> tuple[Ehr, dict[str, Any], KoppeltaalTaskRow]:
    """The domain of an EHR's token, the token's claims and the KT2_Task ``key`` of that
    domain; else :class:`_RefusedError` with the OperationOutcome the caller gets."""
    state = app_context()
    try:
        claims, fhir_base = authenticate(state)
        ehr = _koppeltaal_ehr(state.settings, fhir_base)
        if ehr is None:
            raise UnknownCallerError("the token comes from an EHR that is not a Koppeltaal domain")
        _reads_our_documents(claims, f"Device/{ehr.worker_client_id}")
    except (AccessTokenError, InsufficientScopeError, UnknownCallerError) as error:
        raise _RefusedError(outcome_response(error, *challenge(error))) from None
    with Session(state.reader) as db:
        task = db.get(KoppeltaalTaskRow, (ehr.fhir_base.rstrip("/"), key))
    # A token with a launch context is for that one patient only.
    bound = str(claims.get("patient") or "").removeprefix("Patient/")
    if task is None or (bound and bound != task.patient.removeprefix("Patient/")):
        raise _not_found(key)
    return ehr, claims, task


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


def _render_document(fhir_base: str, task: KoppeltaalTaskRow) -> str:
    """The results document of the client of ``task``, in Dutch, as it is published."""
    state, lang = app_context(), DOCUMENT_LANGUAGE
    with Session(state.reader) as db:
        overview = patient_overview(
            db, state.definitions, fhir_base=fhir_base,
            patient=task.patient.removeprefix("Patient/"), lang=lang, forms=current_memo().form,
        )  # fmt: skip

    def day(value: datetime | date) -> str:
        when = value.date() if isinstance(value, datetime) else value
        return format_date(when.isoformat(), lang)

    def t(key: str, **values: str) -> str:
        return translate(key, lang, **values)

    def tn(key: str, n: int, **values: str) -> str:
        return translate_n(key, n, lang, **values)

    return render_template(
        "koppeltaal_results.html", lang=lang, t=t, tn=tn, overview=overview,
        patient=task.patient, printed=day(date.today()), day=day,
    )  # fmt: skip


def results_renderer(app: Flask) -> RenderResults:
    """For the worker (``koppeltaal.deliver_for(render=…)``): renders the document of a
    domain's KT2_Task with ``app``'s templates and content, when it is published."""

    def render(fhir_base: str, task_id: str) -> str:
        with app.app_context():
            with Session(app_context().reader) as db:
                task = db.get(KoppeltaalTaskRow, (fhir_base.rstrip("/"), task_id))
            if task is None:
                raise DocumentNotFoundError(f"no Koppeltaal Task {task_id[:64]!r} to render")
            return _render_document(fhir_base.rstrip("/"), task)

    return render


def _stored(domain: str, key: str, version: str) -> _Version | None:
    """The stored version ``version`` of the document of Task ``key``, once the domain
    holds a link to it; else None (unknown, or its retention ended)."""
    with Session(app_context().reader) as db:
        row = db.scalar(
            select(ResultsDocumentRow).where(
                ResultsDocumentRow.version_id == version[:32],
                ResultsDocumentRow.fhir_base == domain,
                ResultsDocumentRow.task_id == key,
            )
        )
        if row is None or row.document_reference is None:
            return None
        return _Version(bytes(row.html), row.sha1, row.document_reference)


def _serve(found: _Version) -> Response:
    """The stored bytes as they are; the CSP lets their one style block in by its hash."""
    style = _STYLE.search(found.html)
    if style is not None:
        digest = base64.b64encode(hashlib.sha256(style.group(1)).digest()).decode("ascii")
        g.csp_style_hashes = [f"'sha256-{digest}'"]
    response = Response(found.html, content_type="text/html; charset=utf-8")
    response.headers["ETag"] = f'"{found.sha1}"'
    return _no_store(response)


def _audit_fetch(ehr: Ehr, claims: dict[str, Any], found: _Version) -> None:
    """One KT2_AuditEvent for this fetch by the domain's EHR, in the trace the request
    carries, queued for the domain (the worker sends it)."""
    state = app_context()
    trace = from_headers(dict(request.headers))
    event = audit.document_fetched(
        client_id=ehr.worker_client_id, base_url=state.settings.base_url,
        document_reference=found.document_reference, fetched_by=client_id_of(claims),
        ids=TraceIds(trace.trace_id, trace.cause, request.headers.get("X-Correlation-Id")),
    )  # fmt: skip
    with Session(state.engine) as db, db.begin():
        queue_audit_event(db, ehr.fhir_base.rstrip("/"), event, kind="koppeltaal-audit")
    log.info("results document fetched by client %s", client_id_of(claims)[:64])


@bp.get("/<key>/<version>")
def results_page(key: str, version: str) -> Response:
    """Version ``version`` of the results document of the client of KT2_Task ``key``: for
    an EHR of the domain with its token, or a care professional the domain launched."""
    return _answer(key, version)


@bp.get("/<key>")
def unversioned_results_page(key: str) -> Response:
    """The link of the build before versions: refused as the callers are, else 404."""
    return _answer(key, None)


def _answer(key: str, version: str | None) -> Response:
    try:
        if "Authorization" in request.headers:
            ehr, claims, _task = _domain_caller(key)
            found = _stored(ehr.fhir_base.rstrip("/"), key, version) if version else None
            if found is None:
                raise _not_found(key)
            _audit_fetch(ehr, claims, found)
            return _serve(found)
        row = _koppeltaal_practitioner()
    except _RefusedError as refused:
        return _no_store(refused.response)
    domain = row.fhir_base.rstrip("/")
    with Session(app_context().reader) as db:
        task = db.get(KoppeltaalTaskRow, (domain, key))
        mine = task is not None and _theirs(db, row, task)
    found = _stored(domain, key, version) if mine and version else None
    if found is None:
        return _no_store(current_app.make_response(message_page("ktr_not_found", 404)))
    return _serve(found)


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
