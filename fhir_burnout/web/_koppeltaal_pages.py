"""The Koppeltaal launch routes: ``POST /koppeltaal/launch`` and ``GET /koppeltaal/callback``.

A portal form-POSTs ``launch`` (the HTI token) and ``iss``; we send the browser to the
domain's authorization service (``fhir_burnout.koppeltaal._launch``) with the pending launch
kept server-side and bound to this browser, as the SMART routes do (web/_sessions.py). At the
callback the code is exchanged, the launch's Task, Patient and ActivityDefinition are read with
the module's backend token and checked, the client is enrolled (once per KT Task), and the
person gets a launch session of our own: the domain's ``NOOP`` access token is never kept or
sent. Every launch and every refused launch is logged as a KT2_AuditEvent through the outbox,
with the HTI token's ``jti`` as trace id (TOP-KT-012c). Error pages say what to do, show a
reference (the request id, also in the AuditEvent), and never technical detail.

The launch POST comes from the portal's page, another origin, so it cannot carry our CSRF
token: what protects the launch is the authorization service's sign-in and the ``state``
bound to this browser, as in any SMART launch. A domain's id_token carries the auth
service's own nonce, not ours (issue 19), so each HTI token's ``jti`` is taken once, right
after the code exchange (``koppeltaal.take_launch_token``); a second use is refused.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, current_app, redirect, request, url_for
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from fhir_burnout.errors import ContentError, FhirServerError
from fhir_burnout.koppeltaal import (
    NOT_STARTED,
    ForeignDefinitionError,
    ForeignTaskError,
    HtiLaunch,
    HtiToken,
    KoppeltaalLaunchError,
    KoppeltaalTaskError,
    LaunchedTask,
    RelatedPersonLaunchError,
    ReplayedLaunchError,
    TracedSession,
    TraceIds,
    audit,
    begin_hti_launch,
    complete_hti_launch,
    hti_launcher,
    hti_trace_id,
    koppeltaal_ehr,
    queue_audit_event,
    queue_task_status,
    record_launch,
    resolve_launch,
    take_launch_token,
    take_task,
    traced,
)
from fhir_burnout.settings import Ehr, Settings
from fhir_burnout.smart_launch import (
    AuthorizationDeniedError,
    CodeExchange,
    IdTokenError,
    LaunchError,
    LaunchResult,
    TokenRequestError,
    UntrustedIssuerError,
)
from fhir_burnout.sync import NoAuthorisationError
from fhir_burnout.web import _callbacks as callbacks
from fhir_burnout.web._callbacks import browser_id
from fhir_burnout.web._context import app_context
from fhir_burnout.web._csrf import csrf_exempt
from fhir_burnout.web._launch import person_name, sign_in
from fhir_burnout.web._render import render
from fhir_burnout.web._request_ids import current_request_id
from fhir_burnout.web._sessions import SESSION_MAX, SessionStore

bp = Blueprint("koppeltaal", __name__, url_prefix="/koppeltaal")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Refused:
    """How a refused launch ends: the page's message key, the HTTP status, and the
    AuditEvent's outcome (4 expected, 8 unexpected) and description (ids and error codes,
    never tokens or health data)."""

    message: str
    status: int
    outcome: str
    description: str


def _request_id() -> str:
    """This request's id (the one on its log lines): on the error page, in the AuditEvent
    and the X-Request-Id header."""
    return current_request_id()


def _error_page(message: str, status: int) -> Response:
    """A readable page (Dutch first) with a reference for the helpdesk; no technical detail."""
    body, code = render(
        "koppeltaal_error.html", status=status, message=message, reference=_request_id()
    )
    response = current_app.make_response((body, code))
    response.headers["X-Request-Id"] = _request_id()
    return response


def _audit(
    ehr: Ehr,
    *,
    trace_id: str | None,
    failure: _Refused | None = None,
    task: dict[str, Any] | None = None,
    task_id: str | None = None,
    db: Session | None = None,
    launcher: str | None = None,
) -> None:
    """Queue the launch's KT2_AuditEvent for the domain (koppeltaal/_audit.py): launched
    (``task`` as read) or refused (``failure``, with the Task's id when known). Trace id: the
    HTI ``jti``; request id: this request's, the reference on the error page; the launching
    app (``launcher``, the HTI ``iss``) as the second agent."""
    settings: Settings = app_context().settings
    now = datetime.now(UTC)
    ids = TraceIds(trace_id=trace_id, request_id=_request_id())
    if failure is None:
        assert task is not None  # a launch that went through names its Task
        version = (task.get("meta") or {}).get("versionId")
        event = audit.launched(
            client_id=ehr.client_id, base_url=settings.base_url, task_id=str(task["id"]),
            task_version=str(version) if version else None, launcher=launcher, ids=ids, now=now,
        )  # fmt: skip
    else:
        event = audit.launch_failed(
            client_id=ehr.client_id, base_url=settings.base_url,
            description=failure.description, expected=failure.outcome == "4",
            task_id=task_id, launcher=launcher, ids=ids, now=now,
        )  # fmt: skip
    if db is not None:
        queue_audit_event(db, ehr.fhir_base, event, kind="koppeltaal-audit", now=now)
        return
    with Session(app_context().engine) as own, own.begin():
        queue_audit_event(own, ehr.fhir_base, event, kind="koppeltaal-audit", now=now)


@bp.post("/launch")
@csrf_exempt
def hti_launch() -> Response:
    """The portal's launch: ``launch`` (the HTI token) and ``iss`` by form POST (TOP-KT-007)."""
    state = app_context()
    launch, iss = request.form.get("launch", ""), request.form.get("iss", "")
    trace_id = hti_trace_id(launch) or str(uuid.uuid4())
    launcher = hti_launcher(launch)
    try:
        ehr = koppeltaal_ehr(iss, state.settings.ehrs)
    except UntrustedIssuerError:
        log.info("koppeltaal launch refused: untrusted iss (request %s)", _request_id())
        return _error_page("kt_error_untrusted", 400)
    if not launch:
        refused = _Refused("kt_error_launch", 400, "4", "a launch without a launch token")
        _audit(ehr, trace_id=trace_id, failure=refused, launcher=launcher)
        return _error_page(refused.message, refused.status)
    try:
        config = state.discovery.get(ehr.fhir_base)
        url, pending = begin_hti_launch(
            ehr, config, f"{state.settings.base_url}/koppeltaal/callback", launch
        )
    except LaunchError as exc:
        log.warning("koppeltaal launch could not start: %s (request %s)", type(exc).__name__,
                    _request_id())  # fmt: skip
        refused = _Refused(
            "kt_error_unavailable", 502, "8", "the authorization service could not be reached"
        )
        _audit(ehr, trace_id=trace_id, failure=refused, launcher=launcher)
        return _error_page(refused.message, refused.status)
    store: SessionStore = state.store
    store.save_pending(
        pending,
        browser_id(),
        {
            "koppeltaal": True,
            "trace_id": trace_id,
            "request": _request_id(),
            "launcher": launcher,
            # taken once the auth service has checked the token (no token is kept)
            "hti": asdict(HtiToken.read(launch)),
        },
    )
    return redirect(url, code=303)


@bp.get("/launch")
def hti_launch_by_get() -> Response:
    """Koppeltaal launches by form POST only (TOP-KT-007: the token stays out of URLs and
    logs): a GET is refused, with a readable page."""
    response = _error_page("kt_error_launch", 405)
    response.headers["Allow"] = "POST"
    return response


@bp.get("/callback")
def hti_callback() -> Response:
    """The authorization service sends the person back with ``code`` and ``state``."""
    state = app_context()
    back = callbacks.callback()
    try:
        pending, extra, ehr = back.take(koppeltaal_ehr, koppeltaal=True)
    except LaunchError as exc:
        back.refused(exc, _request_id())
        return _error_page("kt_error_start_again", 400)
    trace_id = str(extra.get("trace_id") or uuid.uuid4())
    launcher = extra.get("launcher") if isinstance(extra.get("launcher"), str) else None
    context: HtiLaunch | None = None
    try:
        # Everything we send for this launch carries its trace: the HTI token's jti as trace
        # id, this request as the cause (TOP-KT-011, TOP-KT-012c).
        with traced(trace_id, _request_id()):
            config = state.discovery.get(ehr.fhir_base)
            exchange = CodeExchange(ehr, config, pending, back.params, TracedSession())
            context = complete_hti_launch(exchange, alg=_alg(ehr.fhir_base))
            with Session(state.engine) as db, db.begin():
                # a launch started before this version kept no "hti": refused, readably
                take_launch_token(db, ehr.fhir_base, HtiToken(**(extra.get("hti") or {})))
            launched = resolve_launch(
                state.ehr_clients.get(ehr.fhir_base), context, client_id=ehr.client_id
            )
        # The Task's status goes out in the launch's trace too (the outbox keeps it).
        with traced(trace_id, _request_id()), Session(state.engine) as db, db.begin():
            row = take_task(
                db,
                state.definitions,
                ehr.fhir_base,
                launched.task,
                launched.activity_definition,
                practice=_practice(ehr.fhir_base),
                publisher=ehr.client_id,
            )
            if context.role == "patient" and launched.view is None and row.status in NOT_STARTED:
                # The client starts: the portal sees the Task in progress (K5's adapter sends
                # it with If-Match, and never moves a Task back).
                queue_task_status(db, row, "in-progress", who=context.sub)
            if context.role == "practitioner":  # their client from now on (_care)
                record_launch(
                    db, ehr.fhir_base, practitioner=context.sub,
                    task_id=str(launched.launched["id"]), patient=context.patient,
                )  # fmt: skip
            _audit(ehr, trace_id=trace_id, task=launched.launched, db=db, launcher=launcher)
            enrolment_key = row.enrolment_key
    except Exception as exc:  # every refusal is audited; anything else is re-raised
        refused = _refusal(exc)
        if refused is None:
            raise
        back.refused(exc, _request_id())
        task = context.task if context is not None else getattr(exc, "task", None)
        task_id = task.split("/", 1)[1] if task else None
        _audit(ehr, trace_id=trace_id, failure=refused, task_id=task_id, launcher=launcher)
        return _error_page(refused.message, refused.status)
    log.info("koppeltaal launch (request %s, enrolment %s)", _request_id(), enrolment_key)
    _sign_in(ehr, context, launched)
    page = "practitioner.practitioner_page" if context.role == "practitioner" else "launch.home"
    return redirect(url_for(page), code=303)  # with the launch's own context handle


def _practice(fhir_base: str) -> str | None:
    settings: Settings = app_context().settings
    try:
        return settings.ehr(fhir_base).practice
    except ContentError:
        return None


def _alg(fhir_base: str) -> str | None:
    """The configured algorithm of our client assertions (``koppeltaal_alg``), if any."""
    settings: Settings = app_context().settings
    try:
        return settings.ehr(fhir_base).assertion_alg
    except ContentError:
        return None


#: Refusals by type, first match wins: the message key, the HTTP status (4xx for what the
#: launcher or the data caused, 401/403 for authorization, 5xx for failures on the way) and
#: the AuditEvent outcome (4 expected, 8 unexpected: TOP-KT-012b/c).
_REFUSALS: tuple[tuple[type[Exception], str, int, str], ...] = (
    (AuthorizationDeniedError, "kt_error_link", 403, "4"),  # expired, used before, not ours
    (ForeignTaskError, "kt_error_not_yours", 403, "4"),
    (ForeignDefinitionError, "kt_error_foreign", 403, "4"),
    (RelatedPersonLaunchError, "kt_error_related_person", 403, "4"),
    (ReplayedLaunchError, "kt_error_link", 403, "4"),  # its jti was taken before (issue 19)
    (KoppeltaalLaunchError, "kt_error_launch", 400, "8"),
    (IdTokenError, "kt_error_launch", 401, "8"),
    (TokenRequestError, "kt_error_launch", 502, "8"),
    (NoAuthorisationError, "kt_error_launch", 502, "8"),  # no module key for the domain
    (LaunchError, "kt_error_launch", 502, "8"),
)
#: take_task's refusals by reason (KoppeltaalTaskError.reason).
_TASK_REFUSALS = {
    "not-ours": ("kt_error_foreign", 403),
    "definition": ("kt_error_foreign", 403),
    "patient": ("kt_error_not_yours", 403),
    "owner": ("kt_error_not_yours", 403),
    "view": ("kt_error_not_yours", 403),
    "status": ("kt_error_task_closed", 409),
}


#: What of an authorization service's error_description goes into the audit: plain words.
_SAFE = re.compile(r"[^A-Za-z0-9 .,:;'()/_-]+")


def _refusal(exc: Exception) -> _Refused | None:
    """How a refused launch ends (page, status, audit); None: not a refusal but a bug. The
    audit's description holds ids and error codes, never tokens or health data."""
    if isinstance(exc, KoppeltaalTaskError):
        message, status = _TASK_REFUSALS.get(exc.reason, ("kt_error_launch", 400))
        return _Refused(message, status, "4", str(exc))
    if isinstance(exc, FhirServerError):
        if exc.status == 404:
            return _Refused("kt_error_not_found", 404, "4", "a launch resource was not found")
        return _Refused("kt_error_unavailable", 502, "8", "the domain's FHIR service failed")
    for kind, message, status, outcome in _REFUSALS:
        if isinstance(exc, kind):
            if isinstance(exc, KoppeltaalLaunchError):
                return _Refused(message, status, exc.audit_outcome, str(exc))
            code = getattr(exc, "error", None) or type(exc).__name__
            said = _SAFE.sub(" ", str(getattr(exc, "description", "") or ""))[:120].strip()
            detail = f"launch refused: {code}" + (f" ({said})" if said else "")
            return _Refused(message, status, outcome, detail)
    return None


def _sign_in(ehr: Ehr, context: HtiLaunch, launched: LaunchedTask) -> None:
    """A launch session of our own for the person who launched; the browser keeps its id."""
    store: SessionStore = app_context().store
    now = time.time()
    result = LaunchResult(
        access_token="",  # Koppeltaal's NOOP token means nothing: nothing is kept
        refresh_token=None,
        expires_at=now + SESSION_MAX,
        scope="",
        patient=context.patient.split("/", 1)[1],
        encounter=None,
        fhir_user=context.sub,
        need_patient_banner=False,
        smart_style_url=None,
        intent=context.intent,
        locale=None,
        id_token_claims=context.id_token_claims,
        not_granted=(),
    )
    sid = store.create_session(ehr.fhir_base, result, context.role)
    sign_in(sid)
    # The person's name, read with the backend token just now: the pages greet them without
    # asking the domain again (there is no user token to ask with).
    store.remember_name(sid, person_name(launched.user))
