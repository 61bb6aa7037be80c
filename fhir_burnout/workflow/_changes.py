"""Task changes and what the plan's rules make of them: ready Tasks, opened phases, the next
time of a repeating action, and a phase opened by the care professional.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from fhir_burnout.sync import Create, Operation, UpdateTask, key_identifier, key_reference
from fhir_burnout.workflow._apply import SDC_TEMP
from fhir_burnout.workflow._definitions import Definitions, _dependencies, _repeat
from fhir_burnout.workflow._errors import EnrolmentStateError, NotFoundError, TaskChangedError
from fhir_burnout.workflow._locks import _held, _task
from fhir_burnout.workflow._outbox import _now, queue_writes
from fhir_burnout.workflow._practitioner_tasks import _measures_ended, _unlock_requests
from fhir_burnout.workflow._progress import PhaseState, TaskState, advance
from fhir_burnout.workflow._states import Actor, check_transition
from fhir_burnout.workflow._tables import EnrolmentRow, PhaseRow, TaskRow


def _task_facts(db: Session, enrolment: EnrolmentRow) -> list[Any]:
    """What the rules read of each of the enrolment's Tasks (key, action, kind, phase,
    status, position), as plain rows: an enrolment gathers Tasks week by week, and loading
    each as an object on every change was most of the cost of a submit."""
    return list(
        db.execute(
            select(
                TaskRow.key, TaskRow.action_id, TaskRow.kind, TaskRow.phase, TaskRow.status,
                TaskRow.position,
            ).where(TaskRow.enrolment_key == enrolment.key)
        ).all()
    )  # fmt: skip


def _apply_progress(
    db: Session,
    enrolment: EnrolmentRow,
    plan: Mapping[str, Any],
    now: datetime,
    facts: Sequence[Any] | None = None,
) -> list[str]:
    """Let the plan's rules move phases and Tasks; the keys of the Tasks that changed.
    ``facts``: the enrolment's Tasks as ``_task_facts`` gives them, when already read."""
    depends = _dependencies(plan)
    progress = advance(
        [PhaseState(p.code, p.position, p.unlock, p.status) for p in enrolment.phases],
        [
            TaskState(t.key, t.action_id, t.kind, t.phase, t.status, depends.get(t.action_id, ()))
            for t in (_task_facts(db, enrolment) if facts is None else facts)
            if t.kind != "practitioner"  # the care professional's own to-dos: not the plan's
        ],
    )
    for phase in enrolment.phases:
        if phase.code in progress.phases:
            phase.status = progress.phases[phase.code]
            if phase.status == "open" and phase.unlocked_at is None:
                phase.unlocked_at, phase.unlocked_by = now, "automatic"
    for key, status in progress.tasks.items():
        task = db.get(TaskRow, key)  # usually one or two; from the identity map when loaded
        assert task is not None  # read a moment ago, in this transaction
        task.status, task.updated_at = status, now
    return list(progress.tasks)


def change_task(
    db: Session,
    definitions: Definitions,
    task_key: str,
    status: str,
    *,
    actor: Actor,
    who: str | None = None,
    reason: str | None = None,
    now: datetime | None = None,
) -> TaskRow:
    """Move a Task (started, completed, paused, cancelled …) as ``actor`` may; the rules
    then move whatever follows from it. Refused with TaskTransitionError otherwise."""
    return _change(db, definitions, task_key, status, actor=actor, who=who, reason=reason, now=now)


def _change(
    db: Session,
    definitions: Definitions,
    task_key: str,
    status: str,
    *,
    actor: Actor,
    who: str | None,
    reason: str | None = None,
    output: list[dict[str, Any]] | None = None,
    output_key: str | None = None,
    extra: Sequence[Operation] = (),
    now: datetime | None = None,
) -> TaskRow:
    now = _now(now)
    task = _task(db, task_key)
    check_transition(task.status, status, actor)
    enrolment = task.enrolment
    changed = {"status": status, "status_reason": reason, "updated_at": now}
    if output_key is not None:
        changed["output_key"] = output_key
    # One UPDATE now, and the loaded Task told it is current: the unit of work's flush of
    # a single changed object cost more than the rest of a submit's writes.
    held = _held(db)
    seen = held[task.key][1]
    if seen is None:
        db.execute(_UPDATE_TASK, {"task": task.key, **changed})
    else:
        done: CursorResult[Any] = db.execute(  # type: ignore[assignment]
            _UPDATE_TASK_IF, {"task": task.key, "seen": seen, **changed}
        )
        if done.rowcount != 1:
            raise TaskChangedError(f"Task {task.key} changed since it was read as {seen!r}")
        held[task.key] = (task, status)  # a further change in this transaction starts here
    for name, value in changed.items():
        set_committed_value(task, name, value)
    change = UpdateTask(task.key, status, tuple(output or ()), reason or None)
    operations = [*extra, change, *_follow_up(db, definitions, enrolment, task, now)]
    queue_writes(db, enrolment, "task-status", operations, who, now=now)
    return task


_TASK_TABLE = TaskRow.metadata.tables[TaskRow.__tablename__]


#: The columns to set come with the parameters (SQLAlchemy Core: those not bound elsewhere).
_UPDATE_TASK = update(_TASK_TABLE).where(_TASK_TABLE.c.key == bindparam("task"))


_UPDATE_TASK_IF = _UPDATE_TASK.where(_TASK_TABLE.c.status == bindparam("seen"))


def _follow_up(
    db: Session, definitions: Definitions, enrolment: EnrolmentRow, task: TaskRow, now: datetime
) -> list[Operation]:
    """What the rules do after a change: ready Tasks, opened phases, next week's check-in."""
    operations: list[Operation] = []
    plan = definitions.by_canonical[enrolment.plan_definition]
    repeat = _repeat(plan, task.action_id) if task.status == "completed" else {}
    if repeat and (next_time := _next_time(db, enrolment, task, repeat, now)) is not None:
        operations.append(next_time)
    if task.kind != "module" and task.action_id not in definitions.waited_on(
        enrolment.plan_definition
    ):
        # Homework, a diary day, a check-in: nothing waits for them and they do not close a
        # phase, so the rules (which left every other Task where it should be after the
        # previous change) would move nothing. Most submits end here.
        return operations
    facts = _task_facts(db, enrolment)  # read once for the rules below
    for key in _apply_progress(db, enrolment, plan, now, facts):
        changed = db.get(TaskRow, key)
        assert changed is not None  # just changed, in this transaction
        operations.append(UpdateTask(key, changed.status))
    # The rules never move the care professional's Tasks, so the facts still hold for them.
    operations += _unlock_requests(db, enrolment, plan, now, facts)
    return operations


def _next_time(
    db: Session, enrolment: EnrolmentRow, done: TaskRow, repeat: Mapping[str, Any], now: datetime
) -> Create | None:
    """A new Task for the next time of a repeating action, or None when its ``count`` is
    reached. A weekly measure is ready from a week after the last; a daily diary at once
    (its own date question says which day it is about, so a missed day can be caught up)."""
    if enrolment.status != "active":
        return None  # a programme stopped, finished or paused asks nothing more
    times, last = db.execute(
        select(
            func.count().filter(TaskRow.action_id == done.action_id), func.max(TaskRow.position)
        ).where(TaskRow.enrolment_key == enrolment.key)
    ).one()
    if "count" in repeat and times >= repeat["count"]:
        return None
    start = None
    if repeat.get("periodUnit") == "wk":
        start = now.date() + timedelta(days=7 * int(repeat.get("period", 1)))
        if enrolment.measures_until is not None and start > enrolment.measures_until:
            return _measures_ended(db, enrolment, now)  # its time is over: ask, do not measure
    key = str(uuid.uuid4())
    row = TaskRow(
        key=key,
        position=int(last or 0) + 1,
        action_id=done.action_id,
        kind=done.kind,
        phase=done.phase,
        definition=done.definition,
        title=done.title,
        status="ready",
        owner=done.owner,
        updated_at=now,
        ready_from=start,
    )
    row.enrolment = enrolment  # in its collection if that is loaded; never loads it
    db.add(row)
    db.flush()
    patient = {"reference": f"Patient/{enrolment.patient}"}
    resource = {
        "resourceType": "Task",
        "identifier": [key_identifier(key)],
        "basedOn": [key_reference(enrolment.key)],
        "groupIdentifier": key_identifier(enrolment.key),
        "status": "ready",
        "intent": "order",
        "code": {"coding": [{"system": SDC_TEMP, "code": "complete-questionnaire"}]},
        "description": done.title,
        "for": patient,
        "owner": patient,
        "authoredOn": now.isoformat(timespec="seconds"),
        "input": [
            {
                "type": {"coding": [{"system": SDC_TEMP, "code": "questionnaire"}]},
                "valueCanonical": done.definition,
            }
        ],
    }
    if start is not None:
        resource["restriction"] = {"period": {"start": start.isoformat()}}
    return Create(key, resource)


def unlock_phase(
    db: Session,
    definitions: Definitions,
    enrolment_key: str,
    phase_code: str,
    *,
    by: str,
    now: datetime | None = None,
) -> PhaseRow:
    """Open a phase for the client (the care professional's decision in the standard track)."""
    now = _now(now)
    enrolment = db.get(EnrolmentRow, enrolment_key, with_for_update=True)
    if enrolment is None:
        raise NotFoundError(f"there is no enrolment {enrolment_key}")
    if enrolment.status != "active":
        raise EnrolmentStateError(f"an enrolment that is {enrolment.status} opens no phase")
    phase = next((p for p in enrolment.phases if p.code == phase_code), None)
    if phase is None:
        raise NotFoundError(f"the enrolment has no phase {phase_code!r}")
    if phase.status != "locked":
        return phase
    phase.status, phase.unlocked_at, phase.unlocked_by = "open", now, by
    plan = definitions.by_canonical[enrolment.plan_definition]
    changed = _apply_progress(db, enrolment, plan, now)
    statuses = {t.key: t.status for t in enrolment.tasks}
    operations: list[Operation] = [UpdateTask(k, statuses[k]) for k in changed]
    for request in enrolment.tasks:
        if request.action_id == f"unlock:{phase_code}" and request.status == "requested":
            request.status, request.updated_at = "completed", now
            operations.append(UpdateTask(request.key, "completed"))
    if operations:
        queue_writes(db, enrolment, "phase-unlocked", operations, by, now=now)
    return phase
