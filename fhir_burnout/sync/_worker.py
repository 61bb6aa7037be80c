"""The worker: claims outbox entries and delivers each as one transaction to its EHR.

Outcome per attempt:

- the EHR answers 2xx: the entry is delivered; where each resource landed is kept;
- 412 on a Task update: the Task changed in the EHR since we last saw it; read it again and
  apply our change to the current Task when it still moves it forward, up to three times;
- no answer, 408, 409, 425, 429, 5xx, 401 (after one fresh token), or a reference to a
  resource not delivered yet: tried again later, with exponential backoff and jitter, or
  after the ``Retry-After`` the EHR asked for;
- any other 4xx (400 and 422 with an OperationOutcome, 403, 404): a dead letter with the
  EHR's message, until a person requeues it (``fhir-burnout sync retry ID``);
- an entry this version cannot read (an unknown operation, a missing field), or one that
  does not go to this kind of EHR: a dead letter saying which operation and why
  (``sync._operations``), sent nowhere;
- no authorisation to write with (the EHR's authorization server refuses the worker, or
  the person whose action caused the write has no authorisation left): tried again later,
  the entry marked with why it waits (``waiting_for``), which ``sync status`` and the
  practice's page show.

Nothing is ever deleted. Every outcome is recorded as an event of the entry.
"""

from __future__ import annotations

import json
import logging
import random
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, assert_never

import requests
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from fhir_burnout.db import upsert
from fhir_burnout.errors import FhirBurnoutError, FhirConnectionError, FhirServerError
from fhir_burnout.fhir import FhirClient
from fhir_burnout.smart_launch import TokenRequestError
from fhir_burnout.sync._bundle import (
    KEY_SYSTEM,
    Known,
    Waiting,
    apply_update,
    provenance,
    referenced_keys,
    resolve,
)
from fhir_burnout.sync._operations import (
    Create,
    KoppeltaalResults,
    KoppeltaalTaskStatus,
    Operation,
    OperationError,
    UpdateCarePlan,
    UpdateTask,
    operations_of,
)
from fhir_burnout.sync._outbox import (
    Claimed,
    claim,
    mark_all_delivered,
    mark_dead,
    mark_retry,
    record,
    utcnow,
)
from fhir_burnout.sync._tables import DeliveredResource

log = logging.getLogger(__name__)

#: Statuses worth trying again: the EHR may well accept the same request later.
TRANSIENT = frozenset({401, 408, 409, 425, 429, 500, 502, 503, 504})
CONFLICT_ROUNDS = 3


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter: ``base * 2**(attempt-1)``, capped, times 0.5 to 1."""

    base: float = 2.0
    cap: float = 900.0
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds until the next try; never earlier than the EHR's Retry-After."""
        wanted = min(self.cap, self.base * 2.0 ** max(0, attempt - 1))
        jittered = float(wanted * self.rng.uniform(0.5, 1.0))
        return max(jittered, retry_after) if retry_after is not None else jittered


@dataclass(frozen=True)
class Outcome:
    """What one delivery attempt came to."""

    state: str  # delivered | retry | dead
    what: str
    status: int | None = None
    retry_after: float | None = None
    written: tuple[Known, ...] = ()
    #: why the entry cannot be delivered before something changes (sync.WAITING), or None
    waiting_for: str | None = None


class NoAuthorisationError(FhirBurnoutError):
    """Nothing to write with for this entry: no worker credentials, or no authorisation of
    the person whose action caused it. ``reason`` is one of ``sync.WAITING``."""

    code = "security"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class WriteAccess:
    """How one entry reaches its EHR: a FHIR client with the right token, whether the
    Bundle states who made the change in a Provenance (with Backend Services the app
    writes for someone; with a person's own token the EHR records them itself, and a
    patient's scopes do not reach a Provenance of their Tasks), and whether the worker
    closes the client after the entry."""

    client: FhirClient
    provenance: bool = True
    close: bool = False


class Worker:
    """Delivers the outbox of one database to the EHRs it names.

    ``client_for(fhir_base)`` gives a FhirClient (with its token source) for an EHR; the
    worker does not close it. ``access_for(entry)``, when given, decides per entry instead
    (:class:`WriteAccess`: Backend Services, or the authorisation of the person whose action
    caused it; it raises :class:`NoAuthorisationError` when there is none).
    ``deliver_for(fhir_base)``, when given, may name another way to deliver the entries of
    an EHR (an EHR in another integration mode: the caller decides which, this package
    knows none); None keeps :meth:`deliver`. Run ``run_once`` from tests, ``run`` from the
    command.
    """

    def __init__(
        self,
        engine: Engine,
        client_for: Callable[[str], FhirClient],
        *,
        owner: str | None = None,
        lease: float = 60.0,
        batch: int = 10,
        backoff: Backoff | None = None,
        clock: Callable[[], datetime] = utcnow,
        deliver_for: Callable[[str], Callable[[Claimed], Outcome] | None] | None = None,
        access_for: Callable[[Claimed], WriteAccess] | None = None,
    ) -> None:
        self.engine = engine
        self.client_for = client_for
        self.access_for = access_for
        self.deliver_for = deliver_for
        self.owner = owner or f"worker-{uuid.uuid4().hex[:8]}"
        self.lease = lease
        self.batch = batch
        self.backoff = backoff or Backoff()
        self.clock = clock

    def run_once(self) -> int:
        """Claim a batch and deliver it; the number of entries handled (0: nothing due)."""
        entries = claim(
            self.engine, self.owner, limit=self.batch, lease=self.lease, now=self.clock()
        )
        # Deliver the batch, then record every outcome in one commit: a commit costs a
        # disk flush, a delivery a round trip. Should we die in between, the leases run out
        # and the entries are delivered again, which their write keys make harmless.
        outcomes = [(entry, self.attempt(entry)) for entry in entries]
        if outcomes:
            self._record(outcomes)
        return len(entries)

    def run(self, stop: threading.Event, *, idle: float = 1.0) -> None:
        """Deliver until ``stop`` is set, resting ``idle`` seconds when nothing is due."""
        while not stop.is_set():
            try:
                handled = self.run_once()
            except Exception as error:
                # The database went away for a moment, say: carry on, the entries are safe
                # where they are. Only the error's type is logged: database errors quote
                # the statement's parameters, and those hold health data.
                log.error(
                    "outbox worker %s: a round failed (%s); trying again",
                    self.owner,
                    type(error).__name__,
                )
                handled = 0
            if not handled:
                stop.wait(idle)

    def handle(self, entry: Claimed) -> Outcome:
        """Deliver one claimed entry and record the outcome."""
        outcome = self.attempt(entry)
        self._record([(entry, outcome)])
        return outcome

    def attempt(self, entry: Claimed) -> Outcome:
        """Try to deliver one claimed entry; what came of it (nothing recorded yet)."""
        deliver = self.deliver_for(entry.fhir_base) if self.deliver_for is not None else None
        try:
            outcome = (deliver or self.deliver)(entry)
        except Waiting as waiting:
            outcome = Outcome("retry", str(waiting))
        except OperationError as error:  # before FhirBurnoutError: no try will do better
            outcome = Outcome("dead", f"the entry cannot be delivered: {error}")
        except FhirServerError as error:
            outcome = _classify(error)
        except NoAuthorisationError as error:
            outcome = Outcome("retry", str(error), waiting_for=error.reason)
        except TokenRequestError as error:
            outcome = _refused_token(error)
        except (FhirBurnoutError, requests.RequestException) as error:
            # No token (the authorization server is down or refuses us), no discovery:
            # nothing reached the EHR, so trying again later is safe.
            outcome = Outcome("retry", f"could not reach the EHR: {type(error).__name__}")
        return outcome

    def _record(self, outcomes: list[tuple[Claimed, Outcome]]) -> None:
        now = self.clock()
        with Session(self.engine) as db, db.begin():
            delivered = [(e, o) for e, o in outcomes if o.state == "delivered"]
            written = [(e.fhir_base, k) for e, o in delivered for k in o.written]
            if written:
                _remember(db, written, now)
            if delivered:
                mark_all_delivered(db, [(e.id, o.what) for e, o in delivered], self.owner, now)
            for entry, outcome in outcomes:
                if outcome.state == "retry":
                    delay = self.backoff.delay(entry.attempts, outcome.retry_after)
                    mark_retry(
                        db, entry.id, self.owner, at=now + timedelta(seconds=delay),
                        status=outcome.status, error=outcome.what, now=now,
                        waiting_for=outcome.waiting_for,
                    )  # fmt: skip
                elif outcome.state == "dead":
                    mark_dead(
                        db, entry.id, self.owner, status=outcome.status, error=outcome.what,
                        now=now,
                    )  # fmt: skip

    def deliver(self, entry: Claimed) -> Outcome:
        """Send the entry's transaction with the access its EHR takes writes with."""
        operations = operations_of(entry.payload)  # read first: no token for what cannot go
        if self.access_for is None:
            access = WriteAccess(self.client_for(entry.fhir_base))
            return self._deliver(entry, operations, access)
        access = self.access_for(entry)
        try:
            return self._deliver(entry, operations, access)
        finally:
            if access.close:
                access.client.close()

    def _deliver(
        self, entry: Claimed, operations: tuple[Operation, ...], access: WriteAccess
    ) -> Outcome:
        """Send the entry's transaction; on 412, read the Tasks again and retry."""
        client = access.client
        stale: set[str] = set()
        notes: list[str] = []
        for _round in range(CONFLICT_ROUNDS):
            known = self._known(entry.fhir_base, operations)
            bundle, plan, skipped = self._bundle(
                entry, client, operations, known, stale, with_provenance=access.provenance
            )
            if not plan:
                return Outcome("delivered", "; ".join([*notes, *skipped]) or "nothing to write")
            try:
                response = client.transaction(bundle)
            except FhirServerError as error:
                if error.status != 412:
                    raise
                # Someone changed a Task we update: read those Tasks again next round.
                stale |= {key for kind, key, _ in plan if kind == "update"}
                notes.append("a Task changed in the EHR meanwhile; read it again")
                continue
            written = _written(plan, response)
            return Outcome(
                "delivered", "; ".join([*notes, *skipped, "delivered"]), 200, None, written
            )
        return Outcome("retry", "the Tasks kept changing in the EHR", 412)

    def _known(self, fhir_base: str, operations: tuple[Operation, ...]) -> dict[str, Known]:
        created = {op.key for op in operations if isinstance(op, Create)}
        keys = {op.key for op in operations if not isinstance(op, Create)}
        keys |= referenced_keys([op.to_json() for op in operations]) - created
        if not keys:
            return {}  # only new resources that refer to each other: nothing to look up
        with Session(self.engine) as db:
            rows = db.scalars(select(DeliveredResource).where(DeliveredResource.key.in_(keys)))
            return {
                row.key: Known(
                    row.key,
                    row.resource_type,
                    row.fhir_id,
                    row.version_id,
                    json.loads(row.resource) if row.resource else None,
                )
                for row in rows
                if row.fhir_base == fhir_base
            }

    def _bundle(
        self,
        entry: Claimed,
        client: FhirClient,
        operations: tuple[Operation, ...],
        known: dict[str, Known],
        stale: set[str],
        *,
        with_provenance: bool = True,
    ) -> tuple[dict[str, Any], list[tuple[str, str, dict[str, Any]]], list[str]]:
        local = {op.key for op in operations if isinstance(op, Create)}
        entries: list[dict[str, Any]] = []
        plan: list[tuple[str, str, dict[str, Any]]] = []
        targets: list[dict[str, str]] = []
        skipped: list[str] = []
        now = self.clock()
        for op in operations:
            match op:
                case Create():
                    resource = resolve(op.resource, local, known)
                    entries.append(_create_entry(op.key, resource))
                    plan.append(("create", op.key, resource))
                    targets.append({"reference": f"urn:uuid:{op.key}"})
                case UpdateTask() | UpdateCarePlan():
                    current, version = _current(client, op, known, stale)
                    updated = apply_update(current, _resolved(op, local, known), now)
                    if updated is None:
                        skipped.append(_not_applied(op, current))
                        continue
                    entries.append(_update_entry(client.base_url, op.RESOURCE, updated, version))
                    plan.append(("update", op.key, updated))
                    targets.append({"reference": f"{op.RESOURCE}/{current['id']}"})
                case KoppeltaalTaskStatus() | KoppeltaalResults():
                    # Queued for a Koppeltaal domain (whose mode changed since, say): kept
                    # as a dead letter saying so, not sent.
                    raise OperationError(f"{op.OP} goes only to a Koppeltaal domain, and "
                                         f"{entry.fhir_base} is not one")  # fmt: skip
                case _:
                    assert_never(op)
        if entries and with_provenance:
            agent = entry.payload.get("agent", {})
            recorded = entry.payload.get("recorded") or now.isoformat(timespec="seconds")
            entries.append(
                {
                    "fullUrl": f"urn:uuid:{entry.key}",
                    "resource": provenance(entry.key, targets, agent, recorded),
                    "request": {
                        "method": "POST",
                        "url": "Provenance",
                        "ifNoneExist": f"_tag=https://fhir-burnout.org/fhir/outbox-entry|{entry.key}",
                    },
                }
            )
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
        return bundle, plan, skipped


def _create_entry(key: str, resource: dict[str, Any]) -> dict[str, Any]:
    """A conditional create on the write key (R4 §3.1.0.8.1), referable as urn:uuid:key."""
    return {
        "fullUrl": f"urn:uuid:{key}",
        "resource": resource,
        "request": {
            "method": "POST",
            "url": resource["resourceType"],
            "ifNoneExist": f"identifier={KEY_SYSTEM}|{key}",
        },
    }


def _current(
    client: FhirClient, op: UpdateTask | UpdateCarePlan, known: dict[str, Known], stale: set[str]
) -> tuple[dict[str, Any], str | None]:
    """The resource an update changes, as the EHR has it, and its version: our copy, or read
    again when we keep none or it changed meanwhile (a 412)."""
    if op.key not in known:
        raise Waiting(op.key)
    current, version = known[op.key].resource, known[op.key].version_id
    if current is None or op.key in stale:
        current = client.read(op.RESOURCE, known[op.key].fhir_id)
        version = current.get("meta", {}).get("versionId")
    return current, version


def _not_applied(op: UpdateTask | UpdateCarePlan, current: dict[str, Any]) -> str:
    """What the entry's events say of an update that changes nothing."""
    what = f"{op.RESOURCE} {current['id']}"
    if current.get("status") != op.status:
        return f"{what} is {current.get('status')} in the EHR; {op.status} not applied"
    return f"{what} was {op.status} already"


def _update_entry(
    base_url: str, kind: str, updated: dict[str, Any], version: str | None
) -> dict[str, Any]:
    """An update with ``ifMatch`` on the version we saw (R4 §3.1.0.4.1)."""
    request: dict[str, Any] = {"method": "PUT", "url": f"{kind}/{updated['id']}"}
    if version:
        request["ifMatch"] = f'W/"{version}"'
    return {
        "fullUrl": f"{base_url}/{kind}/{updated['id']}",
        "resource": updated,
        "request": request,
    }


def _resolved(
    op: UpdateTask | UpdateCarePlan, local: set[str], known: dict[str, Known]
) -> UpdateTask | UpdateCarePlan:
    """The update with its references (a Task's outputs) resolved for this Bundle."""
    if isinstance(op, UpdateTask):
        return replace(op, output=tuple(resolve(list(op.output), local, known)))
    return replace(op, extension=tuple(resolve(list(op.extension), local, known)))


def _classify(error: FhirServerError) -> Outcome:
    if isinstance(error, FhirConnectionError) or error.status is None:
        return Outcome("retry", "no answer from the EHR")
    text = str(error).splitlines()
    message = "; ".join(line.strip() for line in text[1:]) or text[0]
    if error.status in TRANSIENT:
        return Outcome(
            "retry", f"the EHR answered {error.status}", error.status, error.retry_after
        )
    return Outcome("dead", f"the EHR answered {error.status}: {message}", error.status)


#: What of an authorization server's words may be stored: no control characters, no more
#: than a sentence (its description is meant for developers, never holds a token).
_UNSAFE = re.compile(r"[^\w .,:;()/'\"-]")


def _refused_token(error: TokenRequestError) -> Outcome:
    """The EHR's authorization server answered the worker's token request: a refusal (4xx)
    is kept as the EHR said it, with the OAuth error and description (RFC 6749 §5.2), not as
    "could not reach the EHR"; a 5xx or ``temporarily_unavailable`` is a passing fault."""
    said = _UNSAFE.sub(" ", error.description)[:200].strip()
    code = _UNSAFE.sub(" ", error.error)[:60].strip()
    status = error.status
    if error.error == "temporarily_unavailable" or status is None or status >= 500:
        return Outcome("retry", f"the EHR's authorization server did not give the worker a "
                       f"token: {status or '-'} {code}", status)  # fmt: skip
    text = f"the EHR's authorization server refused the worker: {status} {code}"
    return Outcome(
        "retry", f"{text}: {said}" if said else text, status, waiting_for="worker-refused"
    )


def _written(
    plan: list[tuple[str, str, dict[str, Any]]], response: dict[str, Any]
) -> tuple[Known, ...]:
    """Where each resource landed, from the transaction-response (same order as the request)."""
    found = []
    for (kind, key, sent), answer in zip(plan, response.get("entry", []), strict=False):
        reply = answer.get("response", {})
        location = str(reply.get("location", ""))
        parts = location.split("/")
        if len(parts) < 2:
            continue
        resource_type, fhir_id = parts[0], parts[1]
        version = _etag_version(reply.get("etag")) or (parts[3] if len(parts) > 3 else None)
        created = str(reply.get("status", "")).startswith("201")
        # Only what we created or updated ourselves is a copy we can update from; a
        # conditional create that found an earlier one may have been changed since.
        trusted = kind == "update" or created
        copy = {**sent, "id": fhir_id, "meta": {**sent.get("meta", {}), "versionId": version}}
        found.append(Known(key, resource_type, fhir_id, version, copy if trusted else None))
    return tuple(found)


def _etag_version(etag: Any) -> str | None:
    if not isinstance(etag, str) or not etag:
        return None
    return etag.removeprefix("W/").strip('"') or None


def _remember(db: Session, written: list[tuple[str, Known]], now: datetime) -> None:
    """Upsert where each resource landed. Only Tasks keep a copy (we update those); the
    rest, health data included, is not stored twice."""
    rows = [
        {
            "key": known.key,
            "fhir_base": fhir_base,
            "resource_type": known.resource_type,
            "fhir_id": known.fhir_id,
            "version_id": known.version_id,
            "resource": json.dumps(known.resource, ensure_ascii=False)
            if known.resource and known.resource_type == "Task"
            else None,
            "updated_at": now,
        }
        for fhir_base, known in written
    ]
    upsert(db, DeliveredResource, rows, "key")


def note(engine: Engine, entry_id: int, what: str) -> None:
    """Record an event on an entry from outside a delivery (e.g. a person's remark)."""
    with Session(engine) as db, db.begin():
        record(db, entry_id, what)
