"""Enrolment: a patient in a track (PlanDefinition $apply), with the plan's writes for the EHR."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fhir_burnout.sync import Create, Operation, key_reference
from fhir_burnout.workflow._apply import Application, apply_plan, measures_until
from fhir_burnout.workflow._changes import _apply_progress, _task_facts
from fhir_burnout.workflow._definitions import Definitions
from fhir_burnout.workflow._outbox import _now, _response_output, queue_writes
from fhir_burnout.workflow._practitioner_tasks import _unlock_requests
from fhir_burnout.workflow._tables import CURRENT, EnrolmentRow, PhaseRow, TaskRow


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
    enrolment = _new_enrolment(
        applied, plan, fhir_base=fhir_base, patient=patient, track=track, author=author,
        practice=practice, language=language, start=today or now.date(), now=now,
        follows=follows, done=done or {},
    )  # fmt: skip
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
    operations = _enrolment_writes(db, enrolment, applied, plan, now, follows, rg_author)
    queue_writes(db, enrolment, "enrolment", operations, author, now=now)
    return enrolment


def _new_enrolment(
    applied: Application,
    plan: Mapping[str, Any],
    *,
    fhir_base: str,
    patient: str,
    track: str,
    author: str | None,
    practice: str | None,
    language: str,
    start: date,
    now: datetime,
    follows: EnrolmentRow | None,
    done: Mapping[str, str | None],
) -> EnrolmentRow:
    """The enrolment's rows as ``$apply`` planned them: phases open from the start or
    locked, Tasks in draft except those done in the enrolment it ``follows``."""
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
        period_start=start,
        created_at=now,
        request_group_key=applied.request_group_key,
        follows=follows.key if follows is not None else None,
        measures_until=measures_until(plan, start),
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
    return enrolment


def _enrolment_writes(  # noqa: PLR0917 - what enrol has at hand, passed on
    db: Session,
    enrolment: EnrolmentRow,
    applied: Application,
    plan: Mapping[str, Any],
    now: datetime,
    follows: EnrolmentRow | None,
    rg_author: str | None,
) -> list[Operation]:
    """The creates for the EHR: CarePlan, RequestGroup and each Task as the rules left it,
    and the care professional's unlock requests when the enrolment carries on another."""
    rows = {t.key: t for t in enrolment.tasks}
    careplan = dict(applied.careplan)
    if follows is not None:
        careplan["replaces"] = [key_reference(follows.key)]
    group = dict(applied.request_group)
    if rg_author is None:
        group.pop("author", None)
    operations: list[Operation] = [
        Create(applied.key, careplan),
        Create(applied.request_group_key, group),
    ]
    for task in applied.tasks:
        row = rows[task.key]
        resource = {**task.resource, "status": row.status}
        if row.status_reason == _CARRIED:
            resource["statusReason"] = {"text": _CARRIED}
            if row.output_key:
                resource["output"] = [_response_output(row.output_key)]
        operations.append(Create(task.key, resource))
    if follows is not None:
        facts = _task_facts(db, enrolment)
        operations += _unlock_requests(db, enrolment, plan, now, facts)
    return operations


#: The status reason of a Task done in the enrolment a new one carries on from.
_CARRIED = "Al gedaan in het vorige traject"  # Dutch: the EHR's readers are Dutch


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
