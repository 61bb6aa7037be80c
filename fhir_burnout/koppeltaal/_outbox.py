"""The outbox, delivered to a Koppeltaal domain: only what Koppeltaal lets a module write.

The programme queues the same outbox entries in both modes (``fhir_burnout.sync``): creates
of CarePlans, RequestGroups, Tasks, QuestionnaireResponses, Communications; Task and CarePlan
status changes. A Koppeltaal domain takes none of that (TOP-KT-009: Task.input/output are
0..0, there is no results channel; ids are the server's, TOP-KT-003). What goes there
instead, per entry (:func:`plan_entry`):

- a status change of a local Task that a :class:`KoppeltaalTaskRow` follows (a module the
  portal assigned) becomes the same status of that KT2_Task: in-progress, completed,
  on-hold, back from on-hold, cancelled, failed;
- for a KT2_Task that follows a whole enrolment (a track the portal assigned): the first
  module started → in-progress; every module completed, or the enrolment finished →
  completed; paused → on-hold, resumed → back; stopped → cancelled;
- a ``KoppeltaalTaskStatus`` (:func:`queue_task_status`): its status for that KT2_Task (the
  launch queues in-progress);
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
(:func:`may_move`): a Task cancelled, completed or failed in the portal is never reopened,
and "back from on-hold" is applied only while the Task is still on hold; a KT2_Task final as
we last saw it (``KoppeltaalTaskRow.status``: cancelled in the portal, see ``_portal``) is not
even read. The Task's
``resource-origin`` is the portal's and is sent back as read (the server refuses a change).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, assert_never

from sqlalchemy import and_, or_, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from fhir_burnout.errors import FhirBurnoutError, FhirServerError
from fhir_burnout.fhir import FhirClient
from fhir_burnout.integration import EhrClients
from fhir_burnout.koppeltaal._audit import origin_device, processing_error, status_changed
from fhir_burnout.koppeltaal._audit_outbox import queue_audit_event
from fhir_burnout.koppeltaal._backend import CONNECTION
from fhir_burnout.koppeltaal._results import RenderResults, queue_results, send_results
from fhir_burnout.koppeltaal._tables import KoppeltaalTaskRow
from fhir_burnout.koppeltaal._trace import current, entry_trace, trace_context, traced
from fhir_burnout.settings import Settings
from fhir_burnout.sync import (
    KEY_SYSTEM,
    Agent,
    Create,
    KoppeltaalResults,
    KoppeltaalTaskStatus,
    Operation,
    Outcome,
    UpdateCarePlan,
    UpdateTask,
    enqueue,
    operations_of,
)
from fhir_burnout.workflow import EnrolmentRow, TaskRow, partition

log = logging.getLogger(__name__)

#: The op for a KT2_Task status of our own choosing (the launch, say).
TASK_OP = KoppeltaalTaskStatus.OP
KT2_TASK = "http://koppeltaal.nl/fhir/StructureDefinition/KT2Task"
RESOURCE_ORIGIN = "http://koppeltaal.nl/fhir/StructureDefinition/resource-origin"
#: Statuses (R4 task-status) a KT2_Task never leaves: the portal's word is final.
TERMINAL = frozenset({"completed", "cancelled", "failed", "rejected", "entered-in-error"})
#: Statuses in which a KT2_Task has not been started yet.
NOT_STARTED = frozenset({"draft", "requested", "received", "accepted", "ready"})
#: A local Task's status → its KT2_Task's (``ready`` only as a resume, with ``from``).
_MODULE_STATUS = {s: s for s in ("in-progress", "completed", "on-hold", "cancelled", "failed")}
#: A local CarePlan's status → the KT2_Task of its whole track.
_TRACK_STATUS = {"on-hold": "on-hold", "completed": "completed", "revoked": "cancelled"}
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
class StatusChange:
    """A status for one KT2_Task; with ``came_from``, only while the Task is still there
    (a resume: back from on-hold)."""

    task_id: str
    status: str
    came_from: str | None = None


@dataclass(frozen=True)
class EntryPlan:
    """What of an entry goes to the domain, and what stays with us (counted by kind)."""

    changes: tuple[StatusChange, ...]
    audit_events: tuple[Create, ...]
    kept: tuple[tuple[str, int], ...]
    #: KT2_Tasks left alone: final as we last saw them (cancelled in the portal, say)
    skipped: tuple[str, ...] = ()
    #: results DocumentReferences to send (the ``koppeltaal-results`` operations)
    documents: tuple[KoppeltaalResults, ...] = ()

    def kept_text(self) -> str:
        """``stays with us: 2 Task, 1 CarePlan`` (empty when nothing stays)."""
        if not self.kept:
            return ""
        return "stays with us: " + ", ".join(f"{n} {kind}" for kind, n in self.kept)


def may_move(current: str, target: str, came_from: str | None = None) -> bool:
    """Whether a KT2_Task that is ``current`` on the server takes ``target`` from us: never
    out of a terminal status, never back to not started, started only once; ``came_from``
    (a resume) only while it is still at that status."""
    if current == target or current in TERMINAL:
        return False
    if came_from is not None:
        return current == came_from
    if target == "in-progress":
        return current in NOT_STARTED
    if target == "on-hold":
        return current in NOT_STARTED | {"in-progress"}
    return target in ("completed", "cancelled", "failed")


def with_status(task: Mapping[str, Any], status: str) -> dict[str, Any]:
    """The Task as read, with ``status`` and nothing else changed (``meta.profile`` KT2Task
    added when missing)."""
    new = copy.deepcopy(dict(task))
    new["status"] = status
    meta = new.setdefault("meta", {})
    profiles = list(meta.get("profile") or [])
    if KT2_TASK not in profiles:
        meta["profile"] = [*profiles, KT2_TASK]
    return new


def queue_task_status(
    db: Session,
    row: KoppeltaalTaskRow,
    status: str,
    *,
    who: str | None = None,
    now: datetime | None = None,
) -> str:
    """Queue ``status`` for the KT2_Task of ``row`` (in the caller's transaction; the caller
    commits), in the patient's outbox partition, in the current trace (a launch's: its
    delivery and retries stay in it); returns the entry's key."""
    return enqueue(
        db,
        fhir_base=row.fhir_base,
        partition=partition(row.fhir_base, row.patient.removeprefix("Patient/")),
        kind=TASK_OP,
        operations=[KoppeltaalTaskStatus(row.task_id, row.task_id, status)],
        agent=Agent(who=who),
        now=now,
        context=trace_context(current()),
    )


def _count(kept: dict[str, int], kind: str) -> None:
    kept[kind] = kept.get(kind, 0) + 1


def plan_entry(db: Session, fhir_base: str, operations: Iterable[Operation]) -> EntryPlan:
    """Map an entry's operations to what Koppeltaal allows (see the module's docstring).
    Reads the local state; re-points a row whose enrolment was switched to another track
    (the caller commits)."""
    fhir_base = fhir_base.rstrip("/")
    operations = list(operations)
    task_ops = [op for op in operations if isinstance(op, UpdateTask)]
    plan_ops = {op.key: op for op in operations if isinstance(op, UpdateCarePlan)}
    keys = {op.key for op in task_ops}
    local = {t.key: t for t in db.scalars(select(TaskRow).where(TaskRow.key.in_(keys)))}
    enrolments = {t.enrolment_key for t in local.values()} | set(plan_ops)
    rows = list(
        db.scalars(
            select(KoppeltaalTaskRow).where(
                KoppeltaalTaskRow.fhir_base == fhir_base,
                or_(
                    KoppeltaalTaskRow.local_task_key.in_(keys),
                    and_(
                        KoppeltaalTaskRow.local_task_key.is_(None),
                        KoppeltaalTaskRow.enrolment_key.in_(enrolments),
                    ),
                ),
            )
        )
    )
    by_local: dict[str, list[KoppeltaalTaskRow]] = {}
    for row in rows:
        if row.local_task_key:  # a module may be assigned more than once
            by_local.setdefault(row.local_task_key, []).append(row)
    changes: dict[str, StatusChange] = {}
    audit_events: list[Create] = []
    documents: list[KoppeltaalResults] = []
    kept: dict[str, int] = {}
    for op in operations:
        match op:
            case Create():
                resource_type = str(op.resource.get("resourceType"))
                if resource_type == "AuditEvent":
                    audit_events.append(op)
                else:
                    _count(kept, resource_type)
            case KoppeltaalResults():
                documents.append(op)
            case KoppeltaalTaskStatus():
                changes[op.task_id] = StatusChange(op.task_id, op.status, op.came_from)
            case UpdateTask():
                for row in by_local.get(op.key, []):
                    change = _module_change(db, row, local.get(op.key), op)
                    if change is not None:
                        changes[change.task_id] = change
                _count(kept, "Task")  # our own Task's change itself stays with us
            case UpdateCarePlan():
                _count(kept, "CarePlan")
            case _:
                assert_never(op)
    for row in rows:
        if row.local_task_key is None:
            change = _track_change(db, row, task_ops, local, plan_ops.get(row.enrolment_key))
            if change is not None:
                changes[change.task_id] = change
    # A KT2_Task final as we last saw it (cancelled in the portal, or completed) takes
    # nothing more from us: not even tried (no read, no PUT).
    final: dict[str, str] = {}
    if changes:
        found = select(KoppeltaalTaskRow.task_id, KoppeltaalTaskRow.status).where(
            KoppeltaalTaskRow.fhir_base == fhir_base,
            KoppeltaalTaskRow.task_id.in_(list(changes)),
            KoppeltaalTaskRow.status.in_(TERMINAL),
        )
        final = {task_id: status for task_id, status in db.execute(found)}
    skipped = tuple(
        f"Task/{task_id} is {status}: nothing sent" for task_id, status in final.items()
    )
    sent = tuple(c for task_id, c in changes.items() if task_id not in final)
    return EntryPlan(
        sent, tuple(audit_events), tuple(sorted(kept.items())), skipped, tuple(documents)
    )


def _successor(db: Session, enrolment_key: str) -> EnrolmentRow | None:
    """The enrolment that carries on from this one (a switch of track), if any."""
    return db.scalar(select(EnrolmentRow).where(EnrolmentRow.follows == enrolment_key))


def _module_change(
    db: Session, row: KoppeltaalTaskRow, task: TaskRow | None, op: UpdateTask
) -> StatusChange | None:
    status, came_from = op.status, op.came_from
    if status == "cancelled" and task is not None:
        # A switch of track ends the old enrolment's Tasks; the module carries on in the
        # new one, and so does the portal's Task: follow it there instead of cancelling.
        successor = _successor(db, task.enrolment_key)
        if successor is not None:
            moved = db.scalar(
                select(TaskRow).where(
                    TaskRow.enrolment_key == successor.key, TaskRow.action_id == task.action_id
                )
            )
            if moved is not None:
                row.local_task_key, row.enrolment_key = moved.key, successor.key
                return None
    if came_from is not None:
        return StatusChange(row.task_id, status, came_from)
    target = _MODULE_STATUS.get(status)
    return StatusChange(row.task_id, target) if target else None


def _modules(db: Session, enrolment_key: str) -> list[str]:
    return list(
        db.scalars(
            select(TaskRow.status).where(
                TaskRow.enrolment_key == enrolment_key, TaskRow.kind == "module"
            )
        )
    )


def _track_change(
    db: Session,
    row: KoppeltaalTaskRow,
    task_ops: list[UpdateTask],
    local: Mapping[str, TaskRow],
    careplan_op: UpdateCarePlan | None,
) -> StatusChange | None:
    if careplan_op is not None:
        status, came_from = careplan_op.status, careplan_op.came_from
        successor = _successor(db, row.enrolment_key)
        if successor is not None:  # switched: the portal's Task follows the new enrolment
            row.enrolment_key = successor.key
            return None
        if came_from is not None:  # resumed
            started = any(s not in {"ready", "draft"} for s in _modules(db, row.enrolment_key))
            back = "in-progress" if started else "ready"
            return StatusChange(row.task_id, back, came_from)
        target = _TRACK_STATUS.get(status)
        return StatusChange(row.task_id, target) if target else None
    moved = [
        op
        for op in task_ops
        if (task := local.get(op.key)) is not None
        and task.enrolment_key == row.enrolment_key
        and task.kind == "module"
        and op.status in ("in-progress", "completed")
    ]
    if not moved:
        return None
    modules = _modules(db, row.enrolment_key)
    if modules and all(s == "completed" for s in modules):
        return StatusChange(row.task_id, "completed")
    return StatusChange(row.task_id, "in-progress")


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
