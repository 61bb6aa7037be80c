"""Enrolment and every change to a client's programme, with its writes for the EHR.

Each function works in the caller's SQLAlchemy session and transaction: the local change
and the outbox entry that carries it to the EHR are committed together, by the caller,
and nothing here waits on the EHR. The web pages, the CLI and the ``$apply`` operation
all call these.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.orm.attributes import set_committed_value

from fhir_burnout.errors import FhirBurnoutError
from fhir_burnout.questionnaire import Signal
from fhir_burnout.questionnaire._form import localized
from fhir_burnout.sync import Agent, enqueue, key_identifier, key_reference
from fhir_burnout.workflow._apply import SDC_TEMP, PlanError, apply_plan, measures_until
from fhir_burnout.workflow._progress import PhaseState, TaskState, advance
from fhir_burnout.workflow._states import Actor, check_transition
from fhir_burnout.workflow._tables import (
    CURRENT,
    DraftRow,
    EnrolmentRow,
    PhaseRow,
    ResponseRow,
    TaskRow,
)


class NotFoundError(FhirBurnoutError, LookupError):
    """An enrolment, phase or Task that does not exist."""

    code = "not-found"


class EnrolmentStateError(FhirBurnoutError, ValueError):
    """The enrolment is not in a state that allows this (resume what is not paused, say)."""

    code = "business-rule"


class TaskChangedError(FhirBurnoutError):
    """A Task read earlier (``expect``) was changed by someone else before this change."""

    code = "conflict"


@dataclass(frozen=True)
class Definitions:
    """The programme's published resources: PlanDefinitions by track, all by canonical."""

    plans: Mapping[str, Mapping[str, Any]]
    by_canonical: Mapping[str, Mapping[str, Any]] = field(repr=False)
    _waited_on: dict[str, frozenset[str]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @classmethod
    def from_resources(cls, resources: Iterable[Mapping[str, Any]]) -> Definitions:
        """Index a built package (a list of FHIR resources)."""
        plans: dict[str, Mapping[str, Any]] = {}
        by_canonical: dict[str, Mapping[str, Any]] = {}
        for resource in resources:
            if "url" not in resource:
                continue
            by_canonical[str(resource["url"])] = resource
            by_canonical[f"{resource['url']}|{resource.get('version')}"] = resource
            if resource.get("resourceType") == "PlanDefinition":
                plans[str(resource["id"])] = resource
        return cls(plans, by_canonical)

    def waited_on(self, canonical: str) -> frozenset[str]:
        """The ids of the actions that other actions of a PlanDefinition wait for (the
        targets of its ``relatedAction``s): only a change to one of these, or to a module
        (which closes its phase), can move anything else."""
        if canonical not in self._waited_on:
            depends = _dependencies(self.by_canonical[canonical])
            targets = frozenset(t for related in depends.values() for t, _ in related)
            self._waited_on[canonical] = targets
        return self._waited_on[canonical]

    def plan(self, track: str) -> Mapping[str, Any]:
        """The PlanDefinition of ``track``."""
        if track not in self.plans:
            known = ", ".join(sorted(self.plans))
            raise PlanError(f"there is no track {track!r} (tracks: {known})")
        return self.plans[track]


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)


def partition(fhir_base: str, patient: str) -> str:
    """The outbox partition of a patient: their writes reach the EHR in order."""
    return f"{fhir_base.rstrip('/')}#Patient/{patient}"


def _agent(who: str | None, practice: str | None) -> Agent:
    return Agent(who=who, on_behalf_of=practice)


def enrol(
    db: Session,
    definitions: Definitions,
    *,
    fhir_base: str,
    patient: str,
    track: str,
    author: str | None = None,
    practice: str | None = None,
    language: str = "nl",
    today: date | None = None,
    now: datetime | None = None,
    follows: EnrolmentRow | None = None,
    done: Mapping[str, str | None] | None = None,
) -> EnrolmentRow:
    """Enrol a patient in a track (PlanDefinition $apply); the same patient and track again
    give back the active enrolment instead of a second plan. ``follows``: the enrolment
    this one carries on from (its CarePlan ``replaces`` that one), with ``done``: the
    actions already done there (action id -> the key of its QuestionnaireResponse, if
    any), which start here as completed."""
    fhir_base = fhir_base.rstrip("/")
    existing = _active(db, fhir_base, patient, track)
    if existing is not None:
        return existing
    now = _now(now)
    plan = definitions.plan(track)
    rg_author = author if author and author.split("/")[0] in _RG_AUTHORS else None
    applied = apply_plan(
        plan,
        definitions.by_canonical,
        patient=patient,
        author=author,
        today=today or now.date(),
        now=now,
    )
    enrolment = EnrolmentRow(
        key=applied.key,
        fhir_base=fhir_base,
        patient=patient,
        track=track,
        plan_definition=applied.plan_definition,
        status="active",
        author=author,
        practice=practice,
        language=language,
        period_start=today or now.date(),
        created_at=now,
        request_group_key=applied.request_group_key,
        follows=follows.key if follows is not None else None,
        measures_until=measures_until(plan, today or now.date()),
    )
    for phase in applied.phases:
        enrolment.phases.append(
            PhaseRow(
                code=phase.code,
                position=phase.position,
                unlock=phase.unlock,
                status="open" if phase.unlock == "start" else "locked",
            )
        )
    done = done or {}
    for position, task in enumerate(applied.tasks):
        carried = task.action_id in done
        enrolment.tasks.append(
            TaskRow(
                key=task.key,
                position=position,
                action_id=task.action_id,
                kind=task.kind,
                phase=task.phase,
                definition=task.definition,
                title=task.title,
                status="completed" if carried else "draft",
                status_reason=_CARRIED if carried else None,
                output_key=done.get(task.action_id),
                owner=f"Patient/{patient}",
                updated_at=now,
            )
        )
    try:
        with db.begin_nested():
            db.add(enrolment)
            db.flush()
    except IntegrityError:
        # Someone enrolled the same patient in the same track at the same moment.
        found = _active(db, fhir_base, patient, track)
        if found is None:
            raise
        return found
    _apply_progress(db, enrolment, plan, now)
    rows = {t.key: t for t in enrolment.tasks}
    careplan = dict(applied.careplan)
    if follows is not None:
        careplan["replaces"] = [key_reference(follows.key)]
    group = dict(applied.request_group)
    if rg_author is None:
        group.pop("author", None)
    operations: list[dict[str, Any]] = [
        {"op": "create", "key": applied.key, "resource": careplan},
        {"op": "create", "key": applied.request_group_key, "resource": group},
    ]
    for task in applied.tasks:
        row = rows[task.key]
        resource = {**task.resource, "status": row.status}
        if row.status_reason == _CARRIED:
            resource["statusReason"] = {"text": _CARRIED}
            if row.output_key:
                resource["output"] = [_response_output(row.output_key)]
        operations.append({"op": "create", "key": task.key, "resource": resource})
    if follows is not None:
        facts = _task_facts(db, enrolment)
        operations += _unlock_requests(db, enrolment, plan, now, facts)
    queue_writes(db, enrolment, "enrolment", operations, author, now=now)
    return enrolment


#: The status reason of a Task done in the enrolment a new one carries on from.
_CARRIED = "Al gedaan in het vorige traject"  # Dutch: the EHR's readers are Dutch


def _response_output(response_key: str) -> dict[str, Any]:
    """A Task.output naming the QuestionnaireResponse written under ``response_key``."""
    return {
        "type": {"coding": [{"system": SDC_TEMP, "code": "questionnaire-response"}]},
        "valueReference": key_reference(response_key),
    }


#: RequestGroup.author may be a Device, Practitioner or PractitionerRole (R4).
_RG_AUTHORS = frozenset({"Device", "Practitioner", "PractitionerRole"})


def _active(db: Session, fhir_base: str, patient: str, track: str) -> EnrolmentRow | None:
    return db.scalar(
        select(EnrolmentRow).where(
            EnrolmentRow.fhir_base == fhir_base,
            EnrolmentRow.patient == patient,
            EnrolmentRow.track == track,
            EnrolmentRow.status.in_(CURRENT),
        )
    )


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


def _next_position(db: Session, enrolment: EnrolmentRow) -> int:
    """Where a new Task of the enrolment goes: after every other."""
    last = db.scalar(
        select(func.max(TaskRow.position)).where(TaskRow.enrolment_key == enrolment.key)
    )
    return int(last or 0) + 1


def _dependencies(plan: Mapping[str, Any]) -> dict[str, tuple[tuple[str, str], ...]]:
    found: dict[str, tuple[tuple[str, str], ...]] = {}

    def walk(actions: Sequence[Mapping[str, Any]]) -> None:
        for action in actions:
            found[str(action.get("id"))] = tuple(
                (str(r["actionId"]), str(r["relationship"]))
                for r in action.get("relatedAction", [])
            )
            walk(action.get("action", []) or [])

    walk(plan.get("action", []) or [])
    return found


def _held(db: Session) -> dict[str, tuple[TaskRow, str | None]]:
    """The Tasks this transaction holds, by key: each with the status it was read at when
    it is held by compare-and-set (``expect``), None when it is locked."""
    transaction = db.get_transaction()
    if transaction is None:
        raise RuntimeError("a Task is held within a transaction")
    kept: tuple[Any, dict[str, tuple[TaskRow, str | None]]] | None = db.info.get("held_tasks")
    if kept is None or kept[0] is not transaction:  # a later transaction holds its own
        kept = (transaction, {})
        db.info["held_tasks"] = kept
    return kept[1]


def lock_task(db: Session, task_key: str) -> TaskRow | None:
    """The Task with its enrolment, locked for the rest of this transaction (SELECT … FOR
    UPDATE, in one statement), or None. Changes made through this module in the same
    transaction use the lock instead of taking it again."""
    if db.get_transaction() is not None and (found := _held(db).get(task_key)) is not None:
        return found[0]
    task = db.get(
        TaskRow,
        task_key,
        options=[joinedload(TaskRow.enrolment, innerjoin=True)],
        with_for_update={"of": TaskRow},
    )
    if task is not None:
        adopt_lock(db, task)
    return task


def adopt_lock(db: Session, task: TaskRow) -> None:
    """Register a Task the caller locked itself, in the current transaction, together with
    other rows it needed (``SELECT … FOR UPDATE OF task``, its enrolment loaded): changes
    made through this module in the same transaction then use that lock."""
    _held(db)[task.key] = (task, None)


def expect(db: Session, task: TaskRow) -> TaskRow:
    """A Task read earlier (its enrolment loaded, in a session now closed, without a lock),
    to change in this transaction only if its status is still the one read: its change is
    one ``UPDATE … WHERE status = <read>`` instead of a locking read first, and raises
    TaskChangedError when someone changed the Task meanwhile (the caller's transaction
    then keeps nothing). The work between the read and the write (checking a form, say)
    holds no lock: on SQLite the database's one write lock is held for the writes alone.
    Returns the Task as this session's object."""
    merged = db.merge(task, load=False)  # no query: it is as it was read
    _held(db)[merged.key] = (merged, task.status)
    return merged


def _task(db: Session, task_key: str) -> TaskRow:
    task = lock_task(db, task_key)
    if task is None:
        raise NotFoundError(f"there is no Task {task_key}")
    return task


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
    extra: Sequence[dict[str, Any]] = (),
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
    change: dict[str, Any] = {"op": "update-task", "key": task.key, "status": status}
    if reason:
        change["statusReason"] = reason
    if output:
        change["output"] = output
    operations = [*extra, change, *_follow_up(db, definitions, enrolment, task, now)]
    queue_writes(db, enrolment, "task-status", operations, who, now=now)
    return task


_TASK_TABLE = TaskRow.metadata.tables[TaskRow.__tablename__]
#: The columns to set come with the parameters (SQLAlchemy Core: those not bound elsewhere).
_UPDATE_TASK = update(_TASK_TABLE).where(_TASK_TABLE.c.key == bindparam("task"))
_UPDATE_TASK_IF = _UPDATE_TASK.where(_TASK_TABLE.c.status == bindparam("seen"))


def queue_writes(
    db: Session,
    enrolment: EnrolmentRow,
    kind: str,
    operations: Sequence[dict[str, Any]],
    who: str | None,
    *,
    now: datetime,
) -> None:
    """Queue writes about an enrolment's patient for the EHR, in the caller's transaction:
    in the patient's partition (in order with their other writes), made by ``who`` (None:
    the app) on behalf of the enrolment's practice."""
    enqueue(
        db,
        fhir_base=enrolment.fhir_base,
        partition=partition(enrolment.fhir_base, enrolment.patient),
        kind=kind,
        operations=operations,
        agent=_agent(who, enrolment.practice),
        now=now,
    )


def _follow_up(
    db: Session, definitions: Definitions, enrolment: EnrolmentRow, task: TaskRow, now: datetime
) -> list[dict[str, Any]]:
    """What the rules do after a change: ready Tasks, opened phases, next week's check-in."""
    operations: list[dict[str, Any]] = []
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
        operations.append({"op": "update-task", "key": key, "status": changed.status})
    # The rules never move the care professional's Tasks, so the facts still hold for them.
    operations += _unlock_requests(db, enrolment, plan, now, facts)
    return operations


#: The action id of the care professional's Task to close or extend a track whose
#: measures have run their time (workflow/_endings.py).
MEASURES_END = "measures-end"
MEASURES_ENDED = (
    "De looptijd van dit traject is voorbij: rond het af of verleng het",
    "This track has run its time: finish it or extend it",
)


def _measures_ended(db: Session, enrolment: EnrolmentRow, now: datetime) -> dict[str, Any] | None:
    """The care professional's Task to close or extend the track, unless one is open."""
    asked = db.scalar(
        select(TaskRow.key).where(
            TaskRow.enrolment_key == enrolment.key,
            TaskRow.action_id == MEASURES_END,
            TaskRow.status.in_(("requested", "ready", "in-progress")),
        )
    )
    if asked is not None:
        return None
    return _practitioner_task(
        db, enrolment, action_id=MEASURES_END, texts=MEASURES_ENDED, priority="routine", now=now
    )


#: The care professional's to-dos (Task.code.text; Dutch first, English translation).
UNLOCK_REQUEST = ("Volgende fase openzetten: {phase}", "Open the next phase: {phase}")
SAFETY_REVIEW = (
    "Veiligheidssignaal in {title}: neem vandaag contact op met de cliënt",
    "Safety signal in {title}: contact the client today",
)


def _translated(text: str, english: str) -> dict[str, Any]:
    return {
        "text": text,
        "_text": {
            "extension": [
                {
                    "url": "http://hl7.org/fhir/StructureDefinition/translation",
                    "extension": [
                        {"url": "lang", "valueCode": "en"},
                        {"url": "content", "valueString": english},
                    ],
                }
            ]
        },
    }


def _practitioner_task(
    db: Session,
    enrolment: EnrolmentRow,
    *,
    action_id: str,
    texts: tuple[str, str],
    priority: str,
    now: datetime,
    reason: str | None = None,
    owner: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A Task for the care professional: who enrolled the client, else ``owner`` (the
    practice's configured safety owner), else the practice. ``details`` are more Task
    elements (description, input, focus) set on the resource."""
    key = str(uuid.uuid4())
    own = enrolment.author if (enrolment.author or "").startswith("Practitioner") else None
    owner = own or owner or enrolment.practice
    row = TaskRow(
        key=key,
        position=_next_position(db, enrolment),
        action_id=action_id,
        kind="practitioner",
        phase=None,
        definition=enrolment.plan_definition,
        title=texts[0],
        status="requested",
        owner=owner or "",
        priority=priority,
        updated_at=now,
    )
    row.enrolment = enrolment  # in its collection if that is loaded; never loads it
    db.add(row)
    db.flush()
    resource: dict[str, Any] = {
        "resourceType": "Task",
        "identifier": [key_identifier(key)],
        "basedOn": [key_reference(enrolment.key)],
        "groupIdentifier": key_identifier(enrolment.key),
        "status": "requested",
        "intent": "order",
        "priority": priority,
        "code": _translated(*texts),
        "focus": key_reference(enrolment.key),
        "for": {"reference": f"Patient/{enrolment.patient}"},
        "authoredOn": now.isoformat(timespec="seconds"),
    }
    if owner:
        resource["owner"] = {"reference": owner}
    if reason:
        resource["reasonReference"] = key_reference(reason)
    resource.update(details or {})
    return {"op": "create", "key": key, "resource": resource}


def _phase_titles(plan: Mapping[str, Any], code: str) -> tuple[str, str]:
    """A phase's title in Dutch and English, from the PlanDefinition."""
    action: Mapping[str, Any] = next(
        (a for a in plan.get("action", []) if a.get("id") == code), {}
    )
    return localized(action, "title", "nl", "nl") or code, localized(
        action, "title", "en", "nl"
    ) or code


def _unlock_requests(
    db: Session,
    enrolment: EnrolmentRow,
    plan: Mapping[str, Any],
    now: datetime,
    facts: Sequence[Any],
) -> list[dict[str, Any]]:
    """Ask the care professional to open a phase once the one before it is done."""
    operations = []
    phases = sorted(enrolment.phases, key=lambda p: p.position)
    asked = {t.action_id for t in facts if t.kind == "practitioner"}
    for previous, phase in itertools.pairwise(phases):
        wanted = f"unlock:{phase.code}"
        if (
            previous.status == "done"
            and phase.status == "locked"
            and phase.unlock == "practitioner"
            and wanted not in asked
        ):
            titles = _phase_titles(plan, phase.code)
            nl, en = (
                t.format(phase=title) for t, title in zip(UNLOCK_REQUEST, titles, strict=True)
            )
            request = _practitioner_task(
                db, enrolment, action_id=wanted, texts=(nl, en), priority="routine", now=now
            )
            operations.append(request)
    return operations


def _repeat(plan: Mapping[str, Any], action_id: str) -> Mapping[str, Any]:
    """The action's ``timingTiming.repeat`` (empty when it is done once)."""
    for group in plan.get("action", []) or []:
        for action in group.get("action", []) or []:
            if action.get("id") == action_id:
                return dict(action.get("timingTiming", {}).get("repeat") or {})
    return {}


def _next_time(
    db: Session, enrolment: EnrolmentRow, done: TaskRow, repeat: Mapping[str, Any], now: datetime
) -> dict[str, Any] | None:
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
    return {"op": "create", "key": key, "resource": resource}


def _keep_response(
    db: Session,
    task: TaskRow,
    response: Mapping[str, Any],
    key: str,
    *,
    who: str,
    scores: Sequence[Mapping[str, Any]],
    now: datetime,
) -> dict[str, Any]:
    """Store a response about ``task`` (one INSERT, no object to track) and return the
    resource the EHR gets: with its write key, ``basedOn`` the CarePlan, subject, author and
    time filled in."""
    enrolment = task.enrolment
    resource = dict(response)  # a copy at the top, where the keys below are set
    resource["identifier"] = key_identifier(key)  # QuestionnaireResponse.identifier is 0..1
    resource["basedOn"] = [key_reference(enrolment.key)]
    resource.setdefault("subject", {"reference": f"Patient/{enrolment.patient}"})
    resource.setdefault("author", {"reference": who})
    resource.setdefault("authored", now.isoformat(timespec="seconds"))
    row = {
        "key": key,
        "task_key": task.key,
        "enrolment_key": enrolment.key,
        "questionnaire": str(resource.get("questionnaire", task.definition)),
        "status": str(resource.get("status", "completed")),
        "resource": json.dumps(resource, ensure_ascii=False),
        "scores": json.dumps(list(scores), ensure_ascii=False),
        "authored": now,
    }
    db.execute(_KEEP_RESPONSE, row)
    return resource


_DRAFT_TABLE = DraftRow.metadata.tables[DraftRow.__tablename__]
_DELETE_DRAFT = delete(_DRAFT_TABLE).where(_DRAFT_TABLE.c.task_key == bindparam("task"))
#: Built once (a Core INSERT: a response is written once and read back only as rows).
_KEEP_RESPONSE = insert(ResponseRow.metadata.tables[ResponseRow.__tablename__])


def submit_response(
    db: Session,
    definitions: Definitions,
    task_key: str,
    response: Mapping[str, Any],
    *,
    who: str,
    scores: Sequence[Mapping[str, Any]] = (),
    safety_signal: bool = False,
    signals: Sequence[Signal] = (),
    safety_owner: str | None = None,
    now: datetime | None = None,
) -> str:
    """Keep a completed QuestionnaireResponse and complete its Task: the response, the Task
    and their Provenance reach the EHR together, in one transaction. Each safety signal of
    the response (``signals``, from the safety rules) gives one Task for the client's care
    professional, else ``safety_owner``, with its priority; ``safety_signal`` without
    ``signals`` gives one urgent Task. A response is kept once (its Task completes), so a
    retry or a second submit makes no second Task. Returns the response's key."""
    now = _now(now)
    task = _task(db, task_key)
    key = str(uuid.uuid4())
    resource = _keep_response(db, task, response, key, who=who, scores=scores, now=now)
    # Sent: the draft goes (one statement, whether or not there was one).
    db.execute(_DELETE_DRAFT, {"task": task.key})
    output = [_response_output(key)]
    extra = [{"op": "create", "key": key, "resource": resource}]
    for signal in signals:
        extra.append(
            _signal_task(db, task, signal, about=key, response=key, owner=safety_owner, now=now)
        )
    if safety_signal and not signals:
        extra.append(
            _safety_review(db, task, action_id=f"safety:{key}", reason=key, now=now,
                           owner=safety_owner)
        )  # fmt: skip
    _change(
        db,
        definitions,
        task.key,
        "completed",
        actor="client" if who.startswith("Patient/") else "practitioner",
        who=who,
        output=output,
        output_key=key,
        extra=extra,
        now=now,
    )
    return key


def _safety_review(
    db: Session,
    task: TaskRow,
    *,
    action_id: str,
    reason: str | None,
    now: datetime,
    owner: str | None = None,
) -> dict[str, Any]:
    nl, en = (t.format(title=task.title) for t in SAFETY_REVIEW)
    return _practitioner_task(
        db, task.enrolment, action_id=action_id, texts=(nl, en), priority="urgent", now=now,
        reason=reason, owner=owner,
    )  # fmt: skip


#: A routine signal's to-do (Task.code.text); an urgent one's is SAFETY_REVIEW.
ROUTINE_REVIEW = (
    "Signaal in {title}: bekijk het vóór of bij het volgende contact",
    "Signal in {title}: review it before or at the next contact",
)
#: Where the care professional looks (Task.description).
SIGNAL_DESCRIPTION = (
    "{rule}. {what}: {evidence} ({item}). Uit {title}, ingevuld op {when}. Te zien in "
    "fhir-burnout vanuit het dossier van de cliënt: bovenaan bij Signalen, en bij Antwoorden.",
    "{rule}. {what}: {evidence} ({item}). From {title}, filled in on {when}. See fhir-burnout "
    "from the client's record: Signals at the top, and Answers.",
)


def _signal_task(
    db: Session,
    task: TaskRow,
    signal: Signal,
    *,
    about: str,
    response: str | None,
    owner: str | None,
    now: datetime,
) -> dict[str, Any]:
    """One Task for one signal: its rule's priority, the answer or score that raised it
    (Task.input), when (authoredOn), the response (focus and reason) and where to look."""
    rule = signal.rule
    when = f"{now.astimezone(UTC):%d-%m-%Y %H:%M} UTC"
    words = {"nl": ("Antwoord", "Score"), "en": ("Answer", "Score")}
    nl, en = (
        text.format(
            rule=rule.title[lang], what=words[lang][rule.kind != "answer"],
            evidence=signal.evidence, item=signal.item_text or signal.link_id,
            title=task.title, when=when,
        )
        for lang, text in zip(("nl", "en"), SIGNAL_DESCRIPTION, strict=True)
    )  # fmt: skip
    details: dict[str, Any] = {
        "description": nl,
        "_description": _translated(nl, en)["_text"],
        "input": [
            {
                "type": {"text": f"{rule.id}: {signal.link_id}"},
                "valueString": signal.evidence,
            }
        ],
    }
    if response is not None:
        details["focus"] = key_reference(response)
    review = SAFETY_REVIEW if rule.priority == "urgent" else ROUTINE_REVIEW
    texts = (review[0].format(title=task.title), review[1].format(title=task.title))
    return _practitioner_task(
        db, task.enrolment, action_id=f"safety:{about}:{rule.id}", texts=texts,
        priority=rule.priority, now=now, reason=response, owner=owner, details=details,
    )  # fmt: skip


def alert_care_professional(
    db: Session,
    task_key: str,
    *,
    who: str,
    now: datetime | None = None,
    signals: Sequence[Signal] = (),
    safety_owner: str | None = None,
) -> None:
    """A safety signal in answers that could not be sent (the programme is paused, say):
    the care professional (else ``safety_owner``) still gets a Task per signal, queued for
    the EHR like every other write. The answers themselves stay with us as the draft. A
    signal already waiting for the same Task is not raised twice (the client sending the
    same answers again)."""
    now = _now(now)
    task = _task(db, task_key)
    waiting = set(
        db.scalars(
            select(TaskRow.action_id).where(
                TaskRow.enrolment_key == task.enrolment_key,
                TaskRow.kind == "practitioner",
                TaskRow.status == "requested",
                TaskRow.action_id.like(f"safety:{task.key}:%"),
            )
        )
    )
    reviews = []
    for signal in signals:
        if f"safety:{task.key}:{signal.rule.id}" not in waiting:
            reviews.append(
                _signal_task(db, task, signal, about=task.key, response=None,
                             owner=safety_owner, now=now)
            )  # fmt: skip
    if not signals and f"safety:{task.key}:answers" not in waiting:
        reviews.append(
            _safety_review(db, task, action_id=f"safety:{task.key}:answers", reason=None,
                           now=now, owner=safety_owner)
        )  # fmt: skip
    if reviews:
        queue_writes(db, task.enrolment, "safety-alert", reviews, who, now=now)


def add_response(
    db: Session,
    task_key: str,
    response: Mapping[str, Any],
    *,
    who: str,
    key: str | None = None,
    now: datetime | None = None,
) -> str:
    """Keep a QuestionnaireResponse about a Task without changing the Task (the reflection
    after an exercise of a module) and queue it for the EHR with its Provenance; returns
    its key. ``key`` makes it idempotent: a second call with the same key keeps nothing
    new."""
    now = _now(now)
    task = _task(db, task_key)
    key = key or str(uuid.uuid4())
    owner = db.scalar(select(ResponseRow.task_key).where(ResponseRow.key == key))
    if owner is not None:
        if owner != task.key:
            raise NotFoundError(f"response {key} belongs to another Task")
        return key
    resource = _keep_response(db, task, response, key, who=who, scores=(), now=now)
    create = {"op": "create", "key": key, "resource": resource}
    queue_writes(db, task.enrolment, "response", [create], who, now=now)
    return key


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
    operations = [{"op": "update-task", "key": k, "status": statuses[k]} for k in changed]
    for request in enrolment.tasks:
        if request.action_id == f"unlock:{phase_code}" and request.status == "requested":
            request.status, request.updated_at = "completed", now
            operations.append({"op": "update-task", "key": request.key, "status": "completed"})
    if operations:
        queue_writes(db, enrolment, "phase-unlocked", operations, by, now=now)
    return phase


def save_draft(
    db: Session, task_key: str, answers: Mapping[str, Any], *, now: datetime | None = None
) -> None:
    """Keep what the client typed so far; nothing goes to the EHR until they submit."""
    task = _task(db, task_key)
    draft = db.get(DraftRow, task.key)
    if draft is None:
        draft = DraftRow(task_key=task.key)
        db.add(draft)
    draft.answers = json.dumps(dict(answers), ensure_ascii=False)
    draft.updated_at = _now(now)


def load_draft(db: Session, task_key: str) -> dict[str, Any] | None:
    """The answers saved for a Task, if any."""
    draft = db.get(DraftRow, task_key)
    return None if draft is None else dict(json.loads(draft.answers))
