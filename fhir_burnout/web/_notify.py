"""``POST /referrals/notify?ehr=<id>`` and ``POST /koppeltaal/notify?ehr=<id>``: an EHR's
Subscription notification (R4 rest-hook; Koppeltaal TOP-KT-006), one view for every feed
(docs/architecture.md, the adapter seam).

The notification only says that something matching our criteria changed; R4 lets it come
without a body or with just an id, so the body is not read at all. The endpoint checks the
EHR (``ehr``: the :func:`~fhir_burnout.integration.channel_id` of an EHR the feed watches)
and the ``Authorization: Bearer`` token of the feed's channel (the Subscription's
``channel.header``), then, in one transaction, records that a poll is wanted (with the
notification's ``X-Trace-Id`` and ``X-Request-Id`` where the feed carries its trace on) and
runs the feed's hook (Koppeltaal: queue the ``receive`` AuditEvent for the domain through
the outbox). It answers 200 at once and never calls the EHR itself, so a slow EHR cannot
make its own notifications time out: the worker's poller searches. Unknown EHR: 404; a
missing or wrong token: 401 (with the feed's realm); both as an OperationOutcome. The URLs
never change: EHRs hold Subscriptions that point at them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import Blueprint, Response, request
from sqlalchemy.orm import Session

from fhir_burnout.errors import FhirBurnoutError
from fhir_burnout.integration import (
    KOPPELTAAL_TASKS,
    REFERRALS,
    Channel,
    Watched,
    channel_id,
    poll_row,
    want_poll,
    watched,
)
from fhir_burnout.koppeltaal import (
    KOPPELTAAL_CHANNEL,
    TraceIds,
    audit,
    from_headers,
    queue_audit_event,
)
from fhir_burnout.referral import REFERRAL_CHANNEL
from fhir_burnout.settings import Settings
from fhir_burnout.web._context import app_context
from fhir_burnout.web._csrf import csrf_exempt
from fhir_burnout.web._outcomes import (
    FHIR_JSON,
    NotifyTokenError,
    UnknownEhrError,
    outcome_response,
)


@dataclass(frozen=True)
class Notification:
    """A notification that passed the checks: from ``ehr``, at ``now``, in a trace (the
    feeds that keep none: ids None)."""

    ehr: Watched
    settings: Settings
    now: datetime
    trace_id: str | None = None
    cause: str | None = None
    correlation_id: str | None = None


@dataclass(frozen=True)
class Notifier:
    """The notification endpoint of one feed: its blueprint's name, its channel (path and
    token), the realm of its 401, what its 404 and 200 say, whether it keeps the trace, and
    its hook inside the transaction that records the wish."""

    blueprint: str
    feed: str
    channel: Channel
    realm: str
    unknown: str
    fetched: str
    keeps_trace: bool = False
    received: Callable[[Session, Notification], None] | None = None

    @property
    def endpoint(self) -> str:
        """The Flask endpoint of its view."""
        return f"{self.blueprint}.notify"

    def ehr(self, settings: Settings, ehr: str) -> Watched | None:
        """The EHR of this feed named by ``ehr`` in the URL (None: none is)."""
        return next((w for w in watched(settings, self.feed) if channel_id(w.fhir_base) == ehr),
                    None)  # fmt: skip

    def verified(self, settings: Settings, ehr: str, authorization: str | None) -> Watched | None:
        """The EHR named by ``ehr``, if ``authorization`` carries its token."""
        found = self.ehr(settings, ehr)
        if found is None or not self.channel.token_ok(
            settings.secret_key, found.fhir_base, authorization
        ):
            return None
        return found


def _queue_receive(db: Session, notified: Notification) -> None:
    """The ``receive`` AuditEvent of a KT2 notification, naming our Subscription (TOP-KT-011)."""
    fhir_base = notified.ehr.fhir_base
    row = poll_row(db, fhir_base, KOPPELTAAL_TASKS)
    subscription = (row.subscription if row is not None else None) or "unknown"
    event = audit.notification_received(
        client_id=notified.ehr.client_id, base_url=notified.settings.base_url,
        subscription_id=subscription,
        ids=TraceIds(notified.trace_id, notified.cause, notified.correlation_id),
        now=notified.now,
    )  # fmt: skip
    queue_audit_event(db, fhir_base, event, kind="koppeltaal-receive", now=notified.now)


NOTIFIERS: Mapping[str, Notifier] = {
    n.endpoint: n
    for n in (
        Notifier(
            "referral_notify", REFERRALS, REFERRAL_CHANNEL, "referrals",
            "no EHR of this app has that id: subscribe again (fhir-burnout referrals subscribe)",
            "notification received; the referrals are fetched shortly",
        ),
        Notifier(
            "koppeltaal_notify", KOPPELTAAL_TASKS, KOPPELTAAL_CHANNEL, "koppeltaal",
            "no Koppeltaal domain of this app has that id",
            "notification received; the Tasks are fetched shortly",
            keeps_trace=True, received=_queue_receive,
        ),
    )
}  # fmt: skip


def _notification(notifier: Notifier, ehr: Watched, settings: Settings) -> Notification:
    now = datetime.now(UTC)
    if not notifier.keeps_trace:
        return Notification(ehr, settings, now)
    trace = from_headers(dict(request.headers))
    return Notification(ehr, settings, now, trace.trace_id, trace.cause,
                        request.headers.get("X-Correlation-Id"))  # fmt: skip


def notify(notifier: Notifier) -> Response:
    """Record that the EHR named by ``ehr`` asks for a poll of the feed, run the feed's
    hook; 200 at once."""
    state = app_context()
    settings: Settings = state.settings
    nothing = {"Cache-Control": "no-store"}
    ehr = notifier.ehr(settings, request.args.get("ehr", ""))
    if ehr is None:
        error: FhirBurnoutError = UnknownEhrError(notifier.unknown)
        return outcome_response(error, 404, nothing)
    authorization = request.headers.get("Authorization")
    if not notifier.channel.token_ok(settings.secret_key, ehr.fhir_base, authorization):
        error = NotifyTokenError("a notification needs the bearer token of its Subscription")
        challenge = {**nothing, "WWW-Authenticate": f'Bearer realm="{notifier.realm}"'}
        return outcome_response(error, 401, challenge)
    notified = _notification(notifier, ehr, settings)
    with Session(state.engine) as db, db.begin():
        want_poll(db, ehr.fhir_base, notifier.feed, trace_id=notified.trace_id,
                  cause=notified.cause, now=notified.now)  # fmt: skip
        if notifier.received is not None:
            notifier.received(db, notified)
    ok = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "information", "code": "informational",
                   "diagnostics": notifier.fetched}],
    }  # fmt: skip
    return Response(json.dumps(ok), status=200, mimetype=FHIR_JSON, headers=nothing)


def _blueprint(notifier: Notifier) -> Blueprint:
    prefix, _, rule = notifier.channel.path.rpartition("/")
    bp = Blueprint(notifier.blueprint, __name__, url_prefix=prefix)

    @bp.post(f"/{rule}", endpoint="notify")
    @csrf_exempt
    def notify_view() -> Response:
        """Record that the EHR asks for a poll of this feed (:func:`notify`); 200."""
        return notify(notifier)

    return bp


#: One blueprint per feed, each with the one view (endpoint ``<blueprint>.notify``).
blueprints = tuple(_blueprint(n) for n in NOTIFIERS.values())
