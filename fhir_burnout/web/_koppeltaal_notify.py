"""``POST /koppeltaal/notify?ehr=<id>``: a Koppeltaal domain's KT2_Subscription notification.

TOP-KT-006: the notification is an empty POST with our ``channel.header`` and the trace
headers. The endpoint checks the domain (``ehr``: ``koppeltaal.domain_id`` of a configured
EHR with ``mode = "koppeltaal"``) and its bearer token, then, in one transaction, records
that a poll is wanted (with the notification's ``X-Trace-Id`` and ``X-Request-Id``, which
the poll's requests carry on) and queues the ``receive`` AuditEvent for the domain through
the outbox. It answers 200 at once and never calls the domain itself: the worker's
``KoppeltaalPoller`` searches. Unknown domain: 404; missing or wrong token: 401; both as an
OperationOutcome.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from flask import Blueprint, Response, request
from sqlalchemy.orm import Session

from fhir_burnout.errors import FhirBurnoutError
from fhir_burnout.koppeltaal import (
    KoppeltaalPollRow,
    TraceIds,
    audit,
    domain_id,
    from_headers,
    notify_token_ok,
    queue_audit_event,
    want_poll,
)
from fhir_burnout.settings import Settings
from fhir_burnout.web._context import app_context
from fhir_burnout.web._csrf import csrf_exempt
from fhir_burnout.web._outcomes import (
    FHIR_JSON,
    NotifyTokenError,
    UnknownEhrError,
    outcome_response,
)

bp = Blueprint("koppeltaal_notify", __name__, url_prefix="/koppeltaal")


def _domain(settings: Settings, ehr: str) -> tuple[str, str] | None:
    """The FHIR base and our client id on the domain named by ``ehr``."""
    for backend in settings.ehrs:
        if backend.mode == "koppeltaal" and domain_id(backend.fhir_base) == ehr:
            return backend.fhir_base.rstrip("/"), backend.worker_client_id
    return None


@bp.post("/notify")
@csrf_exempt
def notify() -> Response:
    """Record that the domain asks for a poll, queue the ``receive`` AuditEvent; 200."""
    state = app_context()
    settings: Settings = state.settings
    nothing = {"Cache-Control": "no-store"}
    found = _domain(settings, request.args.get("ehr", ""))
    if found is None:
        error: FhirBurnoutError = UnknownEhrError("no Koppeltaal domain of this app has that id")
        return outcome_response(error, 404, nothing)
    fhir_base, client_id = found
    if not notify_token_ok(settings.secret_key, fhir_base, request.headers.get("Authorization")):
        error = NotifyTokenError("a notification needs the bearer token of its Subscription")
        challenge = {**nothing, "WWW-Authenticate": 'Bearer realm="koppeltaal"'}
        return outcome_response(error, 401, challenge)
    trace = from_headers(dict(request.headers))
    now = datetime.now(UTC)
    with Session(state.engine) as db, db.begin():
        row = db.get(KoppeltaalPollRow, fhir_base)
        subscription = (row.subscription if row is not None else None) or "unknown"
        want_poll(db, fhir_base, trace_id=trace.trace_id, cause=trace.cause, now=now)
        event = audit.notification_received(
            client_id=client_id, base_url=settings.base_url, subscription_id=subscription,
            ids=TraceIds(trace.trace_id, trace.cause, request.headers.get("X-Correlation-Id")),
            now=now,
        )  # fmt: skip
        queue_audit_event(db, fhir_base, event, kind="koppeltaal-receive", now=now)
    ok = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "information", "code": "informational",
                   "diagnostics": "notification received; the Tasks are fetched shortly"}],
    }  # fmt: skip
    return Response(json.dumps(ok), status=200, mimetype=FHIR_JSON, headers=nothing)
