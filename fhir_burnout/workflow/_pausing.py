"""The care professional's decisions about a whole enrolment: pause, resume, stop, finish.

A pause puts every open Task of the client's on hold and remembers where each was; resuming
puts each back there (the outbox sends it with ``from: on-hold``, so a hold or an end set in
the EHR meanwhile is not undone). Stopping (the programme ends early: CarePlan ``revoked``)
and finishing (``completed``) cancel what is still open of the client's. The care
professional's own to-dos (a safety review, a request to open a phase) are left as they
are: they still need doing. The CarePlan's status travels with the Tasks', in one outbox
entry (R4 CarePlan.status: active, on-hold, revoked, completed).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from fhir_burnout.sync import Operation, UpdateCarePlan, UpdateTask
from fhir_burnout.workflow._endings import EndingReason
from fhir_burnout.workflow._errors import EnrolmentStateError, NotFoundError
from fhir_burnout.workflow._outbox import _now, queue_writes
from fhir_burnout.workflow._practitioner_tasks import MEASURES_END
from fhir_burnout.workflow._states import check_transition
from fhir_burnout.workflow._tables import EnrolmentRow

#: Task statuses a pause holds (draft Tasks wait for their phase and are not the client's yet).
_OPEN = ("requested", "ready", "in-progress")
#: Task statuses that stopping or finishing cancels.
_UNFINISHED = ("draft", "requested", "ready", "in-progress", "on-hold")


def _enrolment(db: Session, key: str, allowed: tuple[str, ...], what: str) -> EnrolmentRow:
    enrolment = db.get(EnrolmentRow, key, with_for_update=True)
    if enrolment is None:
        raise NotFoundError(f"there is no enrolment {key}")
    if enrolment.status not in allowed:
        raise EnrolmentStateError(f"an enrolment that is {enrolment.status} cannot be {what}")
    return enrolment


def _careplan(
    enrolment: EnrolmentRow,
    status: str,
    came_from: str | None = None,
    ending: EndingReason | None = None,
) -> UpdateCarePlan:
    extension: tuple[dict[str, Any], ...] = ()
    if ending is not None:
        # R4 CarePlan has no element for why it ended: our extension (a StructureDefinition
        # in the package) carries the same CodeableConcept as the Tasks' statusReason.
        extension = ({"url": ending.extension_url, "valueCodeableConcept": dict(ending.concept)},)
    return UpdateCarePlan(enrolment.key, status, came_from or None, extension)


def pause(
    db: Session,
    enrolment_key: str,
    *,
    by: str,
    reason: str | None = None,
    now: datetime | None = None,
) -> EnrolmentRow:
    """Pause a client's programme: their open Tasks go on hold until it is resumed."""
    now = _now(now)
    enrolment = _enrolment(db, enrolment_key, ("active",), "paused")
    enrolment.status = "on-hold"
    operations: list[Operation] = [_careplan(enrolment, "on-hold")]
    for task in enrolment.tasks:
        if task.kind != "practitioner" and task.status in _OPEN:
            check_transition(task.status, "on-hold", "practitioner")
            task.held_from, task.status, task.updated_at = task.status, "on-hold", now
            task.status_reason = reason
            operations.append(UpdateTask(task.key, "on-hold", status_reason=reason or None))
    queue_writes(db, enrolment, "paused", operations, by, now=now)
    return enrolment


def resume(
    db: Session, enrolment_key: str, *, by: str, now: datetime | None = None
) -> EnrolmentRow:
    """Resume a paused programme: every Task the pause held goes back to where it was."""
    now = _now(now)
    enrolment = _enrolment(db, enrolment_key, ("on-hold",), "resumed")
    enrolment.status = "active"
    operations: list[Operation] = [_careplan(enrolment, "active", came_from="on-hold")]
    for task in enrolment.tasks:
        if task.status == "on-hold" and task.held_from is not None:
            check_transition("on-hold", task.held_from, "practitioner")
            task.status, task.held_from, task.updated_at = task.held_from, None, now
            task.status_reason = None
            operations.append(UpdateTask(task.key, task.status, came_from="on-hold"))
    queue_writes(db, enrolment, "resumed", operations, by, now=now)
    return enrolment


def stop(
    db: Session,
    enrolment_key: str,
    *,
    by: str,
    reason: str | EndingReason | None = None,
    now: datetime | None = None,
) -> EnrolmentRow:
    """End the programme early (CarePlan revoked): what is still open is cancelled."""
    return _end(db, enrolment_key, "revoked", "stopped", by=by, reason=reason, now=now)


def finish(
    db: Session,
    enrolment_key: str,
    *,
    by: str,
    reason: str | EndingReason | None = None,
    now: datetime | None = None,
) -> EnrolmentRow:
    """Mark the programme as finished (CarePlan completed): what is still open is cancelled."""
    return _end(db, enrolment_key, "completed", "finished", by=by, reason=reason, now=now)


def _end(
    db: Session,
    enrolment_key: str,
    status: str,
    what: str,
    *,
    by: str,
    reason: str | EndingReason | None,
    now: datetime | None,
) -> EnrolmentRow:
    """End the enrolment as ``status``; ``reason``: why (our coded ending reason, or a
    plain text from the app itself, as a switch of track or a Koppeltaal portal gives)."""
    now = _now(now)
    enrolment = _enrolment(db, enrolment_key, ("active", "on-hold"), what)
    enrolment.status = status
    ending, text = (reason, reason.text) if isinstance(reason, EndingReason) else (None, reason)
    why: dict[str, Any] | str | None = dict(ending.concept) if ending is not None else text
    if ending is not None:
        enrolment.ending_reason = ending.code
    operations: list[Operation] = [_careplan(enrolment, status, ending=ending)]
    for task in enrolment.tasks:
        if task.action_id == MEASURES_END and task.status == "requested":
            # "Finish or extend this track": decided now. (Other to-dos still need doing.)
            task.status, task.updated_at = "completed", now
            operations.append(UpdateTask(task.key, "completed"))
        elif task.kind != "practitioner" and task.status in _UNFINISHED:
            check_transition(task.status, "cancelled", "practitioner")
            task.status, task.held_from, task.updated_at = "cancelled", None, now
            task.status_reason = text
            operations.append(UpdateTask(task.key, "cancelled", status_reason=why or None))
    queue_writes(db, enrolment, what, operations, by, now=now)
    return enrolment
