"""New Tasks from a Koppeltaal domain: the KT2_Subscription, and the poll that takes them in.

TOP-KT-006: a KT2_Subscription is a rest-hook without payload; a notification only says that
something matching the criteria changed, so the receiver logs a ``receive`` AuditEvent and
searches. Ours watches ``Task?status=ready,in-progress,on-hold,cancelled,entered-in-error``
(a portal assigned something, or changed a Task we took in: ``_portal``) and carries
``Authorization: Bearer <token>`` in ``channel.header``, an HMAC of the domain's FHIR base
under the app's secret key (the pattern of the referral Subscription, with its own purpose,
so neither token opens the other's endpoint).

:func:`reconcile_tasks` is the search: the Tasks changed since the last poll that succeeded
(``_lastUpdated``, the domain's clock, inclusive), those that instantiate one of our
ActivityDefinitions (read once per poll; the IG's ``instantiates`` extension), a ``view``
subtask only checked against the IG's rule (its main Task is what enrols), and each new one
taken in with :func:`take_task`, the same function the launch uses: whichever comes first
enrols, the other finds the row. A Task we took in that changed since is followed
(:func:`~fhir_burnout.koppeltaal._portal.follow_portal`: cancelled in the portal stops the
programme, on hold pauses it); the search is the same, so its cost stays what changed.
:class:`KoppeltaalPoller` runs it in the worker process
when a notification asked for it and every ``interval`` seconds in any case, so a lost
notification changes nothing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from fhir_burnout.db import upsert
from fhir_burnout.errors import FhirServerError
from fhir_burnout.fhir import FhirClient, channel_id, channel_token, channel_token_ok
from fhir_burnout.koppeltaal._audit import processing_error
from fhir_burnout.koppeltaal._audit_outbox import queue_audit_event
from fhir_burnout.koppeltaal._enrol import (
    KoppeltaalTaskError,
    check_view_rule,
    find_task,
    instantiates,
    is_view,
    take_task,
    target_of,
)
from fhir_burnout.koppeltaal._portal import follow_portal
from fhir_burnout.koppeltaal._tables import KoppeltaalPollRow
from fhir_burnout.koppeltaal._trace import traced
from fhir_burnout.settings import Settings
from fhir_burnout.sync import Retries, error_kind
from fhir_burnout.workflow import Definitions

log = logging.getLogger(__name__)

KT2_SUBSCRIPTION = "http://koppeltaal.nl/fhir/StructureDefinition/KT2Subscription"
#: What our Subscription watches: a Task a portal made ready for someone, and the changes a
#: portal makes to Tasks we took in (put on hold, back, cancelled: see ``_portal``). One
#: search parameter with OR'd values (R4 search: a comma), so one Subscription.
CRITERIA = "Task?status=ready,in-progress,on-hold,cancelled,entered-in-error"
#: Why we subscribe (R4 Subscription.reason is required; Dutch first, as the domain reads it).
REASON = "fhir-burnout: nieuwe taken voor onze modules / new Tasks for our modules"
#: What the HMAC signs before the FHIR base (the referral token signs another purpose).
_PURPOSE = "koppeltaal-notify|"
#: Page size asked of the domain (it may give fewer).
PAGE = 100


def _base(fhir_base: str) -> str:
    return fhir_base.rstrip("/")


def domain_id(fhir_base: str) -> str:
    """A short, stable name for a domain in the notification URL."""
    return channel_id(fhir_base)


def notify_endpoint(base_url: str, fhir_base: str) -> str:
    """Where the domain at ``fhir_base`` notifies us: ``<base_url>/koppeltaal/notify?ehr=…``."""
    return f"{base_url.rstrip('/')}/koppeltaal/notify?ehr={domain_id(fhir_base)}"


def notify_token(secret_key: str, fhir_base: str) -> str:
    """The bearer token the domain sends with its notifications: base64url(HMAC-SHA256(
    secret_key, "koppeltaal-notify|" + fhir_base)), unpadded. Never log it."""
    return channel_token(secret_key, _PURPOSE, fhir_base)


def notify_token_ok(secret_key: str, fhir_base: str, authorization: str | None) -> bool:
    """Whether an ``Authorization`` header carries the domain's token (constant time)."""
    return channel_token_ok(secret_key, _PURPOSE, fhir_base, authorization)


@dataclass(frozen=True)
class Subscribed:
    """What :func:`subscribe` did: ``created``, ``renewed`` (its status was not active or
    requested, or its header or criteria were stale), or ``unchanged``."""

    action: Literal["created", "renewed", "unchanged"]
    subscription: str  # Subscription/<id>
    status: str


def subscription(endpoint: str, token: str, criteria: str = CRITERIA) -> dict[str, Any]:
    """Our KT2_Subscription (rest-hook, no payload: IG KT2_Subscription.fsh)."""
    return {
        "resourceType": "Subscription",
        "meta": {"profile": [KT2_SUBSCRIPTION]},
        "status": "requested",
        "reason": REASON,
        "criteria": criteria,
        "channel": {
            "type": "rest-hook",
            "endpoint": endpoint,
            "header": [f"Authorization: Bearer {token}"],
        },
    }


def subscribe(
    client: FhirClient, endpoint: str, token: str, criteria: str = CRITERIA
) -> Subscribed:
    """Make sure the domain notifies ``endpoint`` of ``criteria``, idempotently: ours (same
    endpoint, rest-hook) is kept as it is when current, renewed with ``If-Match`` when it is
    in ``error``/``off`` or stale, else created by POST (the server gives the id)."""
    wanted = subscription(endpoint, token, criteria)
    found = [
        s
        for s in client.search("Subscription", {"url": endpoint})
        if (s.get("channel") or {}).get("endpoint") == endpoint
        and (s.get("channel") or {}).get("type") == "rest-hook"
    ]
    if found:
        existing = min(found, key=lambda s: s.get("status") != "active")
        channel = existing.get("channel") or {}
        status = str(existing.get("status"))
        if (
            status in ("active", "requested")
            and existing.get("criteria") == criteria
            and channel.get("header") == wanted["channel"]["header"]
            and "payload" not in channel
        ):
            return Subscribed("unchanged", f"Subscription/{existing['id']}", status)
        renewed = {
            **{k: v for k, v in existing.items() if k not in ("error", "text")},
            **{k: v for k, v in wanted.items() if k != "meta"},
            "meta": {
                **(existing.get("meta") or {}),
                "profile": sorted({*(existing.get("meta") or {}).get("profile", []),
                                   KT2_SUBSCRIPTION}),
            },
        }  # fmt: skip
        version = (existing.get("meta") or {}).get("versionId")
        stored = client.update(renewed, version_id=version)
        return Subscribed("renewed", f"Subscription/{existing['id']}", str(stored.get("status")))
    created = client.create(wanted)
    return Subscribed("created", f"Subscription/{created.get('id')}", str(created.get("status")))


@dataclass
class TaskPollResult:
    """What one poll saw: Tasks returned, ours among them, newly taken in, refused (why)."""

    seen: int = 0
    ours: int = 0
    new: int = 0
    refused: list[str] = field(default_factory=list)
    #: Tasks we took in that the portal changed, and what we did (``Task/<id>: stopped``)
    portal: list[str] = field(default_factory=list)


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class _Definitions:
    """The ActivityDefinitions named by the Tasks of one poll, each read once; None for one
    that is not ours (or that we may not read)."""

    def __init__(self, client: FhirClient, definitions: Definitions) -> None:
        self.client, self.definitions = client, definitions
        self._read: dict[str, dict[str, Any] | None] = {}

    def ours(self, reference: str) -> dict[str, Any] | None:
        if reference not in self._read:
            try:
                found: dict[str, Any] | None = self.client.read(*reference.split("/", 1))
                target_of(self.definitions, found or {})
            except KoppeltaalTaskError:
                found = None
            except FhirServerError as error:
                if error.status not in (403, 404, 410):
                    raise
                found = None
            self._read[reference] = found
        return self._read[reference]


def _parent(client: FhirClient, task: Mapping[str, Any]) -> dict[str, Any] | None:
    for part in task.get("partOf", []) or []:
        reference = str((part or {}).get("reference") or "")
        if reference.startswith("Task/"):
            try:
                return client.read("Task", reference.split("/", 1)[1])
            except FhirServerError as error:
                if error.status not in (403, 404, 410):
                    raise
    return None


def reconcile_tasks(
    engine: Engine,
    client: FhirClient,
    definitions: Definitions,
    *,
    practice: str | None = None,
    publisher: str | None = None,
    client_id: str | None = None,
    base_url: str | None = None,
    now: datetime | None = None,
) -> TaskPollResult:
    """Take in every new Task for one of our ActivityDefinitions changed on the domain since
    the last poll that succeeded; a Task we have is followed where the portal changed it
    (:func:`follow_portal`). Each Task in a
    transaction of its own: one refused (with why in the result) holds back none of the
    others, and, given ``client_id`` and ``base_url`` (our Device and site), is reported to
    the domain as a processing-error AuditEvent (TOP-KT-006 step 8, TOP-KT-012b) through the
    outbox. A poll that fails midway leaves the mark where it was."""
    fhir_base = client.base_url.rstrip("/")
    with Session(engine) as db:
        state = db.get(KoppeltaalPollRow, fhir_base)
        since = state.seen_until if state is not None else None
    params = {"_sort": "_lastUpdated", "_count": str(PAGE)}
    if since:
        params["_lastUpdated"] = f"ge{since}"
    result, newest = TaskPollResult(), since
    ads = _Definitions(client, definitions)
    for task in client.search("Task", params):
        result.seen += 1
        updated = str((task.get("meta") or {}).get("lastUpdated") or "")
        if updated and (newest is None or _instant(updated) > _instant(newest)):
            newest = updated
        named = instantiates(task)
        ad = ads.ours(named) if named else None
        if ad is None:
            continue  # another module's Task: none of our business
        result.ours += 1
        try:
            if is_view(task):
                # Read-only access for someone else to the patient's main Task: it enrols
                # no one; only its rule is checked (and a broken one reported).
                check_view_rule(task, _parent(client, task))
                continue
            with Session(engine) as db, db.begin():
                existing = find_task(db, fhir_base, str(task.get("id")))
                if existing is not None:
                    # Known: a change made in the portal acts on our programme (_portal).
                    changed = follow_portal(
                        db, definitions, existing, task, now=now or _utcnow(),
                        client_id=client_id, base_url=base_url,
                    )  # fmt: skip
                    if changed is not None:
                        result.portal.append(f"Task/{changed.task_id}: {changed.action}")
                    continue
                if task.get("status") != "ready":
                    continue  # not (or no longer) an assignment waiting to be started
                take_task(
                    db, definitions, fhir_base, task, ad, practice=practice,
                    publisher=publisher, now=now,
                )  # fmt: skip
                result.new += 1
        except KoppeltaalTaskError as refused:
            result.refused.append(f"Task/{task.get('id')}: {refused.reason}")
            if client_id and base_url:
                with Session(engine) as db, db.begin():
                    _report(
                        db, fhir_base, task, refused, client_id=client_id, base_url=base_url
                    )  # fmt: skip
    with Session(engine) as db, db.begin():
        mark = {"fhir_base": fhir_base, "seen_until": newest, "succeeded_at": now or _utcnow()}
        upsert(db, KoppeltaalPollRow, [mark], "fhir_base")
    return result


def _report(
    db: Session,
    fhir_base: str,
    task: Mapping[str, Any],
    refused: KoppeltaalTaskError,
    *,
    client_id: str,
    base_url: str,
) -> None:
    """Queue the processing-error AuditEvent of a Task we could not take in: a data error
    (outcome 4: the same Task will not do better), about the Task at the version read, with
    the trace ids of the search that brought it (the last request of this trace)."""
    event = processing_error(
        client_id=client_id, base_url=base_url, kind="data", description=str(refused),
        interaction="search-type", resource_type="Task", resource_id=str(task.get("id")),
        version=(task.get("meta") or {}).get("versionId"),
    )  # fmt: skip
    queue_audit_event(db, fhir_base, event, kind="koppeltaal-error")


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def want_poll(
    db: Session,
    fhir_base: str,
    *,
    trace_id: str | None = None,
    cause: str | None = None,
    now: datetime | None = None,
) -> None:
    """Record that a notification asks for a poll of ``fhir_base`` (and in which trace)."""
    wanted = {
        "fhir_base": _base(fhir_base),
        "wanted_at": now or _utcnow(),
        "trace_id": trace_id,
        "cause": cause,
    }
    upsert(db, KoppeltaalPollRow, [wanted], "fhir_base")


@dataclass(frozen=True)
class Subscriber:
    """What the poller needs to subscribe and to sign its AuditEvents: the app's base URL
    (the notification endpoint is below it, and it is the events' site), the secret key
    (the notification token) and our client id per domain."""

    base_url: str
    secret_key: str = field(repr=False)
    client_ids: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> Subscriber:
        """From the config: every EHR with ``mode = "koppeltaal"``."""
        ids = {_base(b.fhir_base): b.worker_client_id for b in settings.ehrs_in("koppeltaal")}
        return cls(settings.base_url, settings.secret_key, ids)

    def identity(self, fhir_base: str) -> tuple[str | None, str | None]:
        """Our client id on the domain and our base URL (the AuditEvents' agent and site)."""
        return self.client_ids.get(_base(fhir_base)), self.base_url

    def subscribe(self, client: FhirClient) -> Subscribed:
        """Our KT2_Subscription on the domain of ``client`` (see :func:`subscribe`)."""
        fhir_base = client.base_url
        endpoint = notify_endpoint(self.base_url, fhir_base)
        return subscribe(client, endpoint, notify_token(self.secret_key, fhir_base))


PollState = Literal["polled", "idle", "failed", "waiting"]


@dataclass(frozen=True)
class TaskPollOutcome:
    """What one round did for one domain: ``polled`` (why: ``notified``, ``interval``,
    ``first``), ``idle``, ``failed`` (the error's kind), ``waiting`` (after a failure)."""

    fhir_base: str
    state: PollState
    why: str = ""
    result: TaskPollResult | None = None
    error: str | None = None


class KoppeltaalPoller:
    """Runs :func:`reconcile_tasks` for each Koppeltaal domain when a notification asked for
    it or ``interval`` seconds passed (0: only when notified). ``domains``: ``(fhir_base,
    practice)`` pairs; ``client_for`` as the outbox worker's. ``run_once`` from tests,
    ``run`` from the worker; neither raises for a poll that fails. Taking a Task in is
    idempotent, so two processes polling at once only repeat work."""

    def __init__(
        self,
        engine: Engine,
        client_for: Callable[[str], FhirClient],
        definitions: Definitions,
        domains: Iterable[tuple[str, str | None]],
        *,
        interval: float = 300.0,
        publisher: str | None = None,
        subscriber: Subscriber | None = None,
        clock: Callable[[], datetime] = _utcnow,
        retry_base: float = 5.0,
        retry_cap: float = 300.0,
    ) -> None:
        self.engine, self.client_for, self.definitions = engine, client_for, definitions
        self.domains = tuple((_base(base), practice) for base, practice in domains)
        self.interval, self.publisher, self.clock = interval, publisher, clock
        self.subscriber = subscriber
        self._subscribed: set[str] = set()
        self.retries = Retries(retry_base, retry_cap)

    @classmethod
    def from_settings(
        cls,
        engine: Engine,
        client_for: Callable[[str], FhirClient],
        definitions: Definitions,
        settings: Settings,
    ) -> KoppeltaalPoller:
        """A poller for every EHR with ``mode = "koppeltaal"``, at the reconciliation
        interval of the config (``referral_poll_seconds``)."""
        domains = [(b.fhir_base, b.practice) for b in settings.ehrs_in("koppeltaal")]
        return cls(engine, client_for, definitions, domains,
                   interval=settings.referral_poll_seconds,
                   subscriber=Subscriber.from_settings(settings))  # fmt: skip

    def run(self, stop: threading.Event, *, idle: float = 1.0) -> None:
        """Poll what is due every ``idle`` seconds until ``stop`` is set."""
        while not stop.is_set():
            self.run_once()
            stop.wait(idle)

    def run_once(self) -> list[TaskPollOutcome]:
        """One round: poll each domain that is due."""
        return [self.poll(base, practice) for base, practice in self.domains]

    def poll(self, fhir_base: str, practice: str | None) -> TaskPollOutcome:
        """Poll one domain if it is due; never raises."""
        now = self.clock()
        if self.retries.waiting(fhir_base, now):
            return TaskPollOutcome(fhir_base, "waiting")
        self._subscribe(fhir_base)
        try:
            return self._poll(fhir_base, practice, now)
        except Exception as error:
            self.retries.failed(fhir_base, now)
            kind = error_kind(error)
            log.warning("Koppeltaal Task poll of %s failed (%s)", fhir_base, kind)
            return TaskPollOutcome(fhir_base, "failed", error=kind)

    def _subscribe(self, fhir_base: str) -> None:
        """Once per process and domain: make sure our KT2_Subscription is there (idempotent;
        a failure is retried with the poll) and remember its id."""
        if self.subscriber is None or fhir_base in self._subscribed:
            return
        try:
            with traced():
                done = self.subscriber.subscribe(self.client_for(fhir_base))
            with Session(self.engine) as db, db.begin():
                mark = {"fhir_base": fhir_base, "subscription": done.subscription.split("/")[-1]}
                upsert(db, KoppeltaalPollRow, [mark], "fhir_base")
        except Exception as error:
            # The poll goes on without it (it is what makes a lost notification harmless);
            # the next round tries again. The error's kind only: no URLs, no tokens.
            log.warning("Koppeltaal Subscription on %s failed (%s)", fhir_base,
                        type(error).__name__)  # fmt: skip
            return
        self._subscribed.add(fhir_base)
        log.info("Koppeltaal Subscription on %s: %s", fhir_base, done.action)

    def _poll(self, fhir_base: str, practice: str | None, now: datetime) -> TaskPollOutcome:
        with Session(self.engine) as db:
            row = db.get(KoppeltaalPollRow, fhir_base)
            wanted = row.wanted_at if row is not None else None
            last = row.succeeded_at if row is not None else None
            trace_id, cause = (row.trace_id, row.cause) if row is not None else (None, None)
        if wanted is not None:
            why = "notified"
        elif self.interval <= 0:
            return TaskPollOutcome(fhir_base, "idle")
        elif last is None:
            why = "first"
        elif now - _aware(last) >= timedelta(seconds=self.interval):
            why = "interval"
        else:
            return TaskPollOutcome(fhir_base, "idle")
        # The notification's trace goes on (TOP-KT-006 step 6); a scheduled poll starts one.
        with traced(trace_id if wanted is not None else None, cause if wanted else None):
            who = self.subscriber.identity(fhir_base) if self.subscriber else (None, None)
            result = reconcile_tasks(
                self.engine, self.client_for(fhir_base), self.definitions,
                practice=practice, publisher=self.publisher, client_id=who[0],
                base_url=who[1], now=now,
            )  # fmt: skip
        if wanted is not None:
            with Session(self.engine) as db, db.begin():
                db.execute(
                    update(KoppeltaalPollRow)
                    .where(KoppeltaalPollRow.fhir_base == fhir_base,
                           KoppeltaalPollRow.wanted_at == wanted)
                    .values(wanted_at=None, trace_id=None, cause=None)
                )  # fmt: skip
        self.retries.succeeded(fhir_base)
        log.info(
            "Koppeltaal Task poll of %s (%s): %d seen, %d ours, %d new, %d refused, "
            "%d changed in the portal",
            fhir_base, why, result.seen, result.ours, result.new, len(result.refused),
            len(result.portal),
        )  # fmt: skip
        return TaskPollOutcome(fhir_base, "polled", why, result)
