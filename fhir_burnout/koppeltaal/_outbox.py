"""The outbox, delivered to a Koppeltaal domain: only what Koppeltaal lets a module write.

The programme queues the same outbox entries in both modes (``fhir_burnout.sync``): creates
of CarePlans, RequestGroups, Tasks, QuestionnaireResponses, Communications; Task and CarePlan
status changes. A Koppeltaal domain takes none of that (TOP-KT-009: Task.input/output are
0..0, there is no results channel; ids are the server's, TOP-KT-003). What goes there
instead, per entry (``_plan.plan_entry``):

- the status changes of KT2_Tasks that the entry stands for (a module or a whole track the
  portal assigned, and a ``KoppeltaalTaskStatus`` such as the launch's in-progress): which
  ones, and why, is ``_plan``'s docstring;
- a create of an AuditEvent: POSTed as it is (a conditional create on its write key, kept
  in ``meta.tag``: AuditEvent has no identifier);
- a ``KoppeltaalResults`` (``_results.queue_results``): the client's results
  as a DocumentReference (draft T029), queued when a KT2_Task is completed on the server and
  the domain's ``koppeltaal_results`` setting is on (``Ehr.results``; see ``_results``);
- everything else stays with us: recorded as the entry's event, never an error.

A status goes on as KOPPELTAAL.md §2 says: read the Task, set ``status`` and nothing else
(``meta.profile`` KT2Task ensured), PUT it to its own id with ``If-Match`` on the version
read (a Task read without ``meta.versionId`` is never PUT: a dead letter saying so); 412 →
read again and decide again, up to three times. The status only moves forward
(``_plan.may_move``): a Task cancelled, completed or failed in the portal is never reopened,
and "back from on-hold" is applied only while the Task is still on hold; a KT2_Task final as
we last saw it (``KoppeltaalTaskRow.status``: cancelled in the portal, see ``_portal``) is not
even read. The Task's
``resource-origin`` is the portal's and is sent back as read (the server refuses a change).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from fhir_burnout.errors import FhirBurnoutError, FhirServerError
from fhir_burnout.fhir import FhirClient
from fhir_burnout.integration import EhrClients
from fhir_burnout.koppeltaal._audit import origin_device, processing_error, status_changed
from fhir_burnout.koppeltaal._audit_outbox import queue_audit_event
from fhir_burnout.koppeltaal._backend import CONNECTION
from fhir_burnout.koppeltaal._plan import StatusChange, may_move, plan_entry, with_status
from fhir_burnout.koppeltaal._results import RenderResults, queue_results, send_results
from fhir_burnout.koppeltaal._tables import KoppeltaalTaskRow
from fhir_burnout.koppeltaal._trace import entry_trace, traced
from fhir_burnout.settings import Settings
from fhir_burnout.sync import (
    KEY_SYSTEM,
    Create,
    KoppeltaalResults,
    Outcome,
    operations_of,
)

log = logging.getLogger(__name__)

RESOURCE_ORIGIN = "http://koppeltaal.nl/fhir/StructureDefinition/resource-origin"
CONFLICT_ROUNDS = 3


class _Entry(Protocol):
    """What the adapter reads of a claimed outbox entry (``sync`` passes its ``Claimed``)."""

    @property
    def key(self) -> str: ...
    @property
    def fhir_base(self) -> str: ...
    @property
    def payload(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Applied:
    """What became of one status change on the server."""

    task_id: str
    sent: bool  # a PUT went through
    status: str  # the Task's status on the server now
    version_id: str | None
    note: str
    was: str = ""  # its status before
    origin: str | None = None  # the Device whose Task it is (its resource-origin)


class _PutRefusedError(FhirBurnoutError):
    """The domain refused our PUT of a status (``error``) on a Task made by ``origin``."""

    def __init__(self, error: FhirServerError, origin: str | None) -> None:
        super().__init__(str(error))
        self.error, self.origin = error, origin


class _UnversionedTaskError(FhirBurnoutError):
    """The domain gave us a KT2_Task without ``meta.versionId``: a PUT of it could not carry
    ``If-Match`` (TOP-KT-002), so none is sent. Nothing a retry would change: a dead letter."""

    code = "business-rule"

    def __init__(self, change: StatusChange) -> None:
        super().__init__(
            f"Task/{change.task_id} as read from the domain has no meta.versionId; a PUT needs "
            f"If-Match (TOP-KT-002), so Task.status {change.status} was not sent"
        )


def _version_of(task: Mapping[str, Any]) -> str | None:
    """The Task's ``meta.versionId`` as read, or None when the answer has none."""
    version = (task.get("meta") or {}).get("versionId")
    return str(version) if version not in (None, "") else None


class KoppeltaalOutbox:
    """Delivers outbox entries of Koppeltaal domains: :meth:`deliver` is what the sync
    ``Worker`` takes from ``deliver_for`` (see :func:`deliver_for`)."""

    def __init__(
        self,
        engine: Engine,
        client_for: Callable[[str], FhirClient],
        *,
        audit: Callable[[str], tuple[str, str] | None] | None = None,
        clock: Callable[[], datetime] | None = None,
        results: Callable[[str], bool] | None = None,
        render: RenderResults | None = None,
    ) -> None:
        self.engine = engine
        self.client_for = client_for
        #: (our client id there, our base URL) per domain: the status-change AuditEvent's
        #: agent and site; None writes no AuditEvent for a status change
        self.audit = audit
        self.clock = clock
        #: whether a domain takes our results as a DocumentReference (``Ehr.results``)
        self.results = results
        #: renders a results document as the EHR gets it (the web layer's template)
        self.render = render

    def deliver(self, entry: _Entry) -> Outcome:
        """Send what Koppeltaal allows of the entry; the rest stays with us. Its requests
        carry one trace, the same at every retry: the one it was queued in, else its own
        (``_trace.entry_trace``)."""
        trace = entry_trace(entry.payload, entry.key)
        with traced(trace.trace_id, trace.cause):
            return self._deliver(entry)

    def _deliver(self, entry: _Entry) -> Outcome:
        # Read first: an entry this version cannot read goes nowhere (the worker keeps it
        # as a dead letter; sync._operations).
        operations = operations_of(entry.payload)
        client = self.client_for(entry.fhir_base)
        with Session(self.engine) as db, db.begin():
            plan = plan_entry(db, entry.fhir_base, operations)
        notes: list[str] = []
        for create in plan.audit_events:
            tagged = f"_tag={KEY_SYSTEM}|{create.key}"
            created = client.create(_audit_event(create), if_none_exist=tagged)
            notes.append(f"AuditEvent/{created.get('id', '?')} sent")
        for document in plan.documents:
            notes.append(self._document(client, entry.fhir_base, document))
        for change in plan.changes:
            try:
                applied = self.apply(client, change)
            except _UnversionedTaskError as unversioned:
                return Outcome("dead", str(unversioned))
            except _PutRefusedError as refused:
                self._report(entry.fhir_base, change, refused.error, refused.origin)
                raise refused.error from None
            except FhirServerError as error:
                self._report(entry.fhir_base, change, error, None)
                raise
            if applied is None:
                return Outcome("retry", "the Koppeltaal Task kept changing on the server", 412)
            # A Task completed on the server (by us now, or before a retry): the results
            # go with it when the domain wants them (queued with what we remember).
            results = (
                change.status == applied.status == "completed"
                and self.results is not None
                and self.results(entry.fhir_base)
            )
            self._remember(
                entry.fhir_base, applied, results=results, event=self._event(entry, applied)
            )
            notes.append(applied.note)
        notes.extend(plan.skipped)
        if plan.kept:
            notes.append(plan.kept_text())
        return Outcome("delivered", "; ".join(notes) or "nothing to write", 200)

    def _document(self, client: FhirClient, fhir_base: str, op: KoppeltaalResults) -> str:
        """Publish (or remove) one results DocumentReference; what became of it."""
        who = self.audit(fhir_base) if self.audit is not None else None
        if who is None:
            return f"no DocumentReference for Task/{op.task_id}: no base URL"
        if self.render is None and not op.removed:
            return f"no DocumentReference for Task/{op.task_id}: this worker renders none"
        return send_results(
            client, op, engine=self.engine, fhir_base=fhir_base,
            render=self.render or _no_render, device=f"Device/{who[0]}", base_url=who[1],
            now=self._now(),
        )  # fmt: skip

    def _event(self, entry: _Entry, applied: Applied) -> dict[str, Any] | None:
        """The status change's own AuditEvent (TOP-KT-011 memo §3.5), built once, right after
        the PUT it names (the trace's last request), about the Task at its new version; None
        when nothing was sent or the domain's identity is unknown."""
        who = self.audit(entry.fhir_base) if self.audit is not None else None
        if not applied.sent or who is None:
            return None
        return status_changed(
            client_id=who[0], base_url=who[1], task_id=applied.task_id,
            task_version=applied.version_id, old=applied.was, new=applied.status,
            destination=applied.origin,
        )  # fmt: skip

    def _report(
        self, fhir_base: str, change: StatusChange, error: FhirServerError, origin: str | None
    ) -> None:
        """The domain refused our status change for good (a 4xx the worker does not retry):
        tell it with a processing-error AuditEvent (TOP-KT-012b; outcome 4, a data error),
        queued in the domain's audit partition (delivered, and retried, on its own: the
        entry's dead letter is the record that counts here)."""
        who = self.audit(fhir_base) if self.audit is not None else None
        if who is None or error.status is None or not 400 <= error.status < 500:
            return
        if error.status in (401, 408, 409, 412, 425, 429):
            return  # tried again later: not (yet) an error to report
        event = processing_error(
            client_id=who[0], base_url=who[1], kind="data",
            description=f"Task.status {change.status}: the server answered {error.status}",
            interaction="update", resource_type="Task", resource_id=change.task_id,
            destination=origin,
        )  # fmt: skip
        with Session(self.engine) as db, db.begin():
            queue_audit_event(db, fhir_base, event, kind="koppeltaal-error", now=self._now())

    def apply(self, client: FhirClient, change: StatusChange) -> Applied | None:
        """Read the KT2_Task, set the status if it still makes sense, PUT it with If-Match;
        on 412 read it again. None when it kept changing. A Task read without a version is
        never PUT (:class:`_UnversionedTaskError`): every PUT we send carries If-Match."""
        for _round in range(CONFLICT_ROUNDS):
            try:
                current = client.read("Task", change.task_id)
            except FhirServerError as error:
                if error.status in (404, 410):
                    return Applied(change.task_id, False, "gone", None,
                                   f"Task/{change.task_id} is gone from the domain")  # fmt: skip
                raise
            status = str(current.get("status"))
            version = _version_of(current)
            if not may_move(status, change.status, change.came_from):
                return Applied(
                    change.task_id, False, status, version,
                    f"Task/{change.task_id} is {status} on the server; {change.status} not sent",
                )  # fmt: skip
            if version is None:
                raise _UnversionedTaskError(change)
            try:
                stored = client.update(with_status(current, change.status), version_id=version)
            except FhirServerError as error:
                if error.status == 412:
                    continue  # changed since we read it (our If-Match is stale): read it again
                raise _PutRefusedError(error, origin_device(current)) from error
            return Applied(
                change.task_id, True, change.status,
                (stored.get("meta") or {}).get("versionId") or version,
                f"Task/{change.task_id} {change.status} (was {status})", status,
                origin_device(current),
            )  # fmt: skip
        return None

    def _now(self) -> datetime:
        return self.clock() if self.clock else datetime.now(UTC)

    def _remember(
        self,
        fhir_base: str,
        applied: Applied,
        *,
        results: bool = False,
        event: dict[str, Any] | None = None,
    ) -> None:
        """Record the Task as the server has it now, and in the same transaction queue what
        follows from it: its status-change AuditEvent (``event``), the results."""
        with Session(self.engine) as db, db.begin():
            now = self._now()
            if event is not None:
                queue_audit_event(db, fhir_base, event, kind="koppeltaal-audit", now=now)
            row = db.get(KoppeltaalTaskRow, (fhir_base.rstrip("/"), applied.task_id))
            if row is None:
                return
            row.status = applied.status
            if applied.version_id:
                row.version_id = str(applied.version_id)
            row.updated_at = now
            if results:
                queue_results(db, row, now=row.updated_at)


def _audit_event(op: Create) -> dict[str, Any]:
    """An AuditEvent to POST: no id (the server's) and no resource-origin (the server sets
    it), tagged with its write key (AuditEvent has no identifier) for the conditional create."""
    resource = {k: v for k, v in op.resource.items() if k != "id"}
    resource["extension"] = [
        e for e in resource.get("extension", []) or [] if e.get("url") != RESOURCE_ORIGIN
    ]
    if not resource["extension"]:
        del resource["extension"]
    meta = dict(resource.get("meta") or {})
    tags = [t for t in meta.get("tag", []) or [] if t.get("system") != KEY_SYSTEM]
    meta["tag"] = [*tags, {"system": KEY_SYSTEM, "code": op.key}]
    resource["meta"] = meta
    return resource


def _no_render(fhir_base: str, task_id: str) -> str:
    raise AssertionError("a removal renders nothing")


def deliver_for(
    settings: Settings,
    engine: Engine,
    client_for: Callable[[str], FhirClient] | None = None,
    *,
    render: RenderResults | None = None,
) -> Callable[[str], Callable[[Any], Outcome] | None]:
    """For the sync ``Worker``'s ``deliver_for``: the Koppeltaal adapter for each EHR whose
    ``mode`` is ``koppeltaal``, None (the SMART delivery) for every other. ``client_for``:
    default the shared pool with the Koppeltaal connection (``_backend.CONNECTION``);
    ``render``: the results document (``web.results_renderer``), for domains that take it."""
    client_for = client_for or EhrClients(settings, connections={"koppeltaal": CONNECTION}).get
    backends = {b.fhir_base: b for b in settings.ehrs_in("koppeltaal")}
    domains = set(backends)

    def audit(fhir_base: str) -> tuple[str, str] | None:
        backend = backends.get(fhir_base.rstrip("/"))
        return (backend.worker_client_id, settings.base_url) if backend is not None else None

    def results(fhir_base: str) -> bool:
        backend = backends.get(fhir_base.rstrip("/"))
        return backend is not None and backend.results

    outbox = KoppeltaalOutbox(engine, client_for, audit=audit, results=results, render=render)

    def pick(fhir_base: str) -> Callable[[Any], Outcome] | None:
        return outbox.deliver if fhir_base.rstrip("/") in domains else None

    return pick
