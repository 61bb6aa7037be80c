"""New Tasks from a Koppeltaal domain: the KT2_Subscription, and the poll that takes them in.

TOP-KT-006: a KT2_Subscription is a rest-hook without payload; a notification only says that
something matching the criteria changed, so the receiver logs a ``receive`` AuditEvent and
searches. Ours watches ``Task?status=ready,in-progress,on-hold,cancelled,entered-in-error``
(a portal assigned something, or changed a Task we took in: ``_portal``) and carries
``Authorization: Bearer <token>`` in ``channel.header``, an HMAC of the domain's FHIR base
under the app's secret key (:data:`KOPPELTAAL_CHANNEL`: the referral channel's pattern with
its own purpose, so neither token opens the other's endpoint); the skeleton's
:func:`~fhir_burnout.integration.subscribe` makes it, with the KT2 profile.

:func:`reconcile_tasks` is the search: the Tasks changed since the last poll that succeeded
(``_lastUpdated``, the domain's clock, inclusive), those that instantiate one of our
ActivityDefinitions (read once per poll; the IG's ``instantiates`` extension), a ``view``
subtask only checked against the IG's rule (its main Task is what enrols), and each new one
taken in with :func:`take_task`, the same function the launch uses: whichever comes first
enrols, the other finds the row. A Task we took in that changed since is followed
(:func:`~fhir_burnout.koppeltaal._portal.follow_portal`: cancelled in the portal stops the
programme, on hold pauses it); the search is the same, so its cost stays what changed.
:class:`KoppeltaalFeed` is the skeleton's ``koppeltaal-tasks`` feed: the
:class:`~fhir_burnout.integration.Poller` runs it in the worker process when a notification
asked for it and every ``interval`` seconds in any case, so a lost notification changes
nothing; it subscribes once per process and carries a notification's trace on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from fhir_burnout.errors import FhirBurnoutError, FhirServerError
from fhir_burnout.fhir import FhirClient
from fhir_burnout.integration import (
    KOPPELTAAL_TASKS,
    Channel,
    Feed,
    PollResult,
    Subscribed,
    changed_since,
    subscribe,
    watched,
)
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
from fhir_burnout.koppeltaal._profiles import is_secure_enough
from fhir_burnout.koppeltaal._trace import traced
from fhir_burnout.settings import Settings
from fhir_burnout.workflow import Definitions

KT2_SUBSCRIPTION = "http://koppeltaal.nl/fhir/StructureDefinition/KT2Subscription"
#: What our Subscription watches: a Task a portal made ready for someone, and the changes a
#: portal makes to Tasks we took in (put on hold, back, cancelled: see ``_portal``). One
#: search parameter with OR'd values (R4 search: a comma), so one Subscription.
CRITERIA = "Task?status=ready,in-progress,on-hold,cancelled,entered-in-error"
#: Why we subscribe (R4 Subscription.reason is required; Dutch first, as the domain reads it).
REASON = "fhir-burnout: nieuwe taken voor onze modules / new Tasks for our modules"
#: Where a domain notifies us, and what its token signs before the FHIR base.
KOPPELTAAL_CHANNEL = Channel("koppeltaal-notify|", "/koppeltaal/notify")


def _base(fhir_base: str) -> str:
    return fhir_base.rstrip("/")


class InsecureNotifyEndpointError(FhirBurnoutError, ValueError):
    """Our ``base_url`` is plain http on another machine than this one: a Koppeltaal domain
    notifies https endpoints only (TOP-KT-006; the reference server refuses others with 422),
    and a notification's token must not cross the network in the clear."""

    code = "security"

    def __init__(self) -> None:
        super().__init__(
            "Koppeltaal-meldingen gaan alleen naar https: zet base_url op het https-adres van "
            "deze app. / Koppeltaal notifies https endpoints only: set base_url to this app's "
            "https address."
        )


def subscribe_tasks(
    client: FhirClient, *, base_url: str, secret_key: str, criteria: str = CRITERIA
) -> Subscribed:
    """Our KT2_Subscription on the domain of ``client`` (rest-hook, no payload: IG
    KT2_Subscription.fsh), one per endpoint: one with stale criteria is brought up to date.
    A plain-http ``base_url`` off this machine is refused before anything is sent
    (:class:`InsecureNotifyEndpointError`)."""
    if not is_secure_enough(base_url):
        raise InsecureNotifyEndpointError()
    fhir_base = client.base_url
    return subscribe(
        client, KOPPELTAAL_CHANNEL.endpoint(base_url, fhir_base),
        KOPPELTAAL_CHANNEL.token(secret_key, fhir_base), criteria, REASON,
        profile=KT2_SUBSCRIPTION, one_per_endpoint=True,
    )  # fmt: skip


@dataclass
class TaskPollResult(PollResult):
    """What one poll saw: Tasks returned, ours among them, newly taken in, refused (why)."""

    ours: int = 0
    #: Tasks we took in that the portal changed, and what we did (``Task/<id>: stopped``)
    portal: list[str] = field(default_factory=list)

    def counts(self) -> str:
        """The counts for the log (no health data)."""
        return (
            f"{self.seen} seen, {self.ours} ours, {self.new} new, {len(self.refused)} refused, "
            f"{len(self.portal)} changed in the portal"
        )


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


@dataclass(frozen=True)
class _Poll:
    """One poll of one domain: what taking a Task in needs besides the Task."""

    engine: Engine
    client: FhirClient
    definitions: Definitions
    ads: _Definitions
    result: TaskPollResult
    practice: str | None
    publisher: str | None
    client_id: str | None
    base_url: str | None
    now: datetime | None

    @property
    def fhir_base(self) -> str:
        return _base(self.client.base_url)

    def take(self, task: dict[str, Any]) -> None:
        """Take one Task of the search in, follow it, or pass it by (another module's)."""
        self.result.seen += 1
        named = instantiates(task)
        ad = self.ads.ours(named) if named else None
        if ad is None:
            return  # another module's Task: none of our business
        self.result.ours += 1
        try:
            self._take(task, ad)
        except KoppeltaalTaskError as refused:
            self.result.refused.append(f"Task/{task.get('id')}: {refused.reason}")
            if self.client_id and self.base_url:
                with Session(self.engine) as db, db.begin():
                    _report(db, self.fhir_base, task, refused, client_id=self.client_id,
                            base_url=self.base_url)  # fmt: skip

    def _take(self, task: dict[str, Any], ad: dict[str, Any]) -> None:
        if is_view(task):
            # Read-only access for someone else to the patient's main Task: it enrols no
            # one; only its rule is checked (and a broken one reported).
            check_view_rule(task, _parent(self.client, task))
            return
        with Session(self.engine) as db, db.begin():
            existing = find_task(db, self.fhir_base, str(task.get("id")))
            if existing is not None:
                # Known: a change made in the portal acts on our programme (_portal).
                changed = follow_portal(
                    db, self.definitions, existing, task, now=self.now or _utcnow(),
                    client_id=self.client_id, base_url=self.base_url,
                )  # fmt: skip
                if changed is not None:
                    self.result.portal.append(f"Task/{changed.task_id}: {changed.action}")
                return
            if task.get("status") != "ready":
                return  # not (or no longer) an assignment waiting to be started
            take_task(
                db, self.definitions, self.fhir_base, task, ad, practice=self.practice,
                publisher=self.publisher, now=self.now,
            )  # fmt: skip
            self.result.new += 1


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
    the last poll that succeeded (:func:`~fhir_burnout.integration.changed_since`); a Task
    we have is followed where the portal changed it (:func:`follow_portal`). Each Task in a
    transaction of its own: one refused (with why in the result) holds back none of the
    others, and, given ``client_id`` and ``base_url`` (our Device and site), is reported to
    the domain as a processing-error AuditEvent (TOP-KT-006 step 8, TOP-KT-012b) through the
    outbox. A poll that fails midway leaves the mark where it was."""
    poll = _Poll(
        engine, client, definitions, _Definitions(client, definitions), TaskPollResult(),
        practice, publisher, client_id, base_url, now,
    )  # fmt: skip
    changed_since(engine, client, KOPPELTAAL_TASKS, ("Task", {}), poll.take, now=now)
    return poll.result


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


@dataclass(frozen=True)
class Subscriber:
    """What the feed needs to subscribe and to sign its AuditEvents: the app's base URL
    (the notification endpoint is below it, and it is the events' site), the secret key
    (the notification token) and our client id per domain."""

    base_url: str
    secret_key: str = field(repr=False)
    client_ids: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> Subscriber:
        """From the config: every Koppeltaal domain."""
        ids = {w.fhir_base: w.client_id for w in watched(settings, KOPPELTAAL_TASKS)}
        return cls(settings.base_url, settings.secret_key, ids)

    def identity(self, fhir_base: str) -> tuple[str | None, str | None]:
        """Our client id on the domain and our base URL (the AuditEvents' agent and site)."""
        return self.client_ids.get(_base(fhir_base)), self.base_url


class KoppeltaalFeed(Feed):
    """The Tasks of each Koppeltaal domain (:func:`reconcile_tasks`). ``domains``:
    ``(fhir_base, practice)`` pairs. With a ``subscriber``, the poller makes our
    KT2_Subscription once per process and domain, and refused Tasks are reported to the
    domain; a poll a notification asked for runs in its trace. Taking a Task in is
    idempotent, so two processes polling at once only repeat work."""

    name = KOPPELTAAL_TASKS

    def __init__(
        self,
        definitions: Definitions,
        domains: Iterable[tuple[str, str | None]],
        *,
        publisher: str | None = None,
        subscriber: Subscriber | None = None,
    ) -> None:
        self.definitions, self.publisher, self.subscriber = definitions, publisher, subscriber
        self.practices = {_base(base): practice for base, practice in domains}
        self.ehrs = tuple(self.practices)

    @classmethod
    def from_settings(cls, definitions: Definitions, settings: Settings) -> KoppeltaalFeed:
        """The feed of every Koppeltaal domain in the config, subscribing."""
        domains = [(w.fhir_base, w.practice) for w in watched(settings, KOPPELTAAL_TASKS)]
        return cls(definitions, domains, subscriber=Subscriber.from_settings(settings))

    @property
    def subscribes_itself(self) -> bool:
        """Whether the poller makes our KT2_Subscription (given a subscriber)."""
        return self.subscriber is not None

    def subscribe(self, client: FhirClient) -> Subscribed:
        """Our KT2_Subscription on the domain of ``client`` (:func:`subscribe_tasks`)."""
        if self.subscriber is None:
            return super().subscribe(client)
        return subscribe_tasks(client, base_url=self.subscriber.base_url,
                               secret_key=self.subscriber.secret_key)  # fmt: skip

    def traced(self, trace_id: str | None, cause: str | None) -> AbstractContextManager[object]:
        """The notification's trace goes on in the poll (TOP-KT-006 step 6)."""
        return traced(trace_id, cause)

    def reconcile(
        self, engine: Engine, client: FhirClient, fhir_base: str, *, notified: bool, now: datetime
    ) -> TaskPollResult:
        """The poll of one domain's Tasks (:func:`reconcile_tasks`)."""
        who = self.subscriber.identity(fhir_base) if self.subscriber else (None, None)
        return reconcile_tasks(
            engine, client, self.definitions, practice=self.practices[fhir_base],
            publisher=self.publisher, client_id=who[0], base_url=who[1], now=now,
        )  # fmt: skip
