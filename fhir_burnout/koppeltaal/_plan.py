"""What an outbox entry becomes on a Koppeltaal domain (:func:`plan_entry`): the KT2_Task
status changes it stands for, and what stays with us. ``_outbox`` delivers the plan.

- a status change of a local Task that a :class:`KoppeltaalTaskRow` follows (a module the
  portal assigned) becomes the same status of that KT2_Task: in-progress, completed,
  on-hold, back from on-hold, cancelled, failed;
- for a KT2_Task that follows a whole enrolment (a track the portal assigned): the first
  module started → in-progress; every module completed, or the enrolment finished →
  completed; paused → on-hold, resumed → back; stopped → cancelled;
- a ``KoppeltaalTaskStatus`` (:func:`queue_task_status`): its status for that KT2_Task.

The status only moves forward (:func:`may_move`): a Task cancelled, completed or failed in the
portal is never reopened, and "back from on-hold" is applied only while the Task is still on
hold.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, assert_never

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from fhir_burnout.koppeltaal._tables import KoppeltaalTaskRow
from fhir_burnout.koppeltaal._trace import current, trace_context
from fhir_burnout.sync import (
    Agent,
    Create,
    KoppeltaalResults,
    KoppeltaalTaskStatus,
    Operation,
    UpdateCarePlan,
    UpdateTask,
    enqueue,
)
from fhir_burnout.workflow import EnrolmentRow, TaskRow, partition

#: The op for a KT2_Task status of our own choosing (the launch, say).
TASK_OP = KoppeltaalTaskStatus.OP
KT2_TASK = "http://koppeltaal.nl/fhir/StructureDefinition/KT2Task"
#: Statuses (R4 task-status) a KT2_Task never leaves: the portal's word is final.
TERMINAL = frozenset({"completed", "cancelled", "failed", "rejected", "entered-in-error"})
#: Statuses in which a KT2_Task has not been started yet.
NOT_STARTED = frozenset({"draft", "requested", "received", "accepted", "ready"})
#: A local Task's status → its KT2_Task's (``ready`` only as a resume, with ``from``).
_MODULE_STATUS = {s: s for s in ("in-progress", "completed", "on-hold", "cancelled", "failed")}
#: A local CarePlan's status → the KT2_Task of its whole track.
_TRACK_STATUS = {"on-hold": "on-hold", "completed": "completed", "revoked": "cancelled"}


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
