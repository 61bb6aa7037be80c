"""A KT2_Task we took in, changed in the portal: the portal's word acts on our programme.

The poll of a domain's Tasks (``_notify.reconcile_tasks``) sees every Task changed since the
last poll, whatever its status; for one we took in (a :class:`KoppeltaalTaskRow`) it calls
:func:`follow_portal`, which compares it with what we last saw or set:

- the same ``versionId`` as recorded: nothing new (our own PUT, or a version seen before);
- another version with the same status: only noted (an edit of, say, the description);
- ``cancelled`` or ``entered-in-error``: a track Task's enrolment is stopped
  (``workflow.stop``, reason :data:`CANCELLED_REASON`), a module Task's local Task is
  cancelled; nothing goes back for it (the outbox skips a KT Task in a final status);
- ``on-hold``: a track Task's enrolment is paused (reason :data:`HOLD_REASON`);
- ``ready`` or ``in-progress`` again while the enrolment is paused by the portal: resumed. A
  pause of the care professional's own is never undone from the portal.

Each act is conditional on our state, so a change we caused ourselves that the poll happens
to read before the outbox recorded its version (our pause's ``on-hold``, our stop's
``cancelled``) finds the enrolment already there and does nothing. What was done is
recorded as a ``receive`` AuditEvent about the Task at the version read (queued through the
outbox, as the notification's own); an act our programme's rules refuse is undone, logged
(its kind only) and recorded with outcome 4, and the poll goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.orm import Session

from fhir_burnout.errors import FhirBurnoutError
from fhir_burnout.koppeltaal._audit import (
    DESTINATION_ROLE,
    RECEIVE,
    audit_event,
    task_entity,
)
from fhir_burnout.koppeltaal._audit_outbox import queue_audit_event
from fhir_burnout.koppeltaal._enrol import note_seen
from fhir_burnout.koppeltaal._tables import KoppeltaalTaskRow
from fhir_burnout.workflow import (
    Definitions,
    EnrolmentRow,
    TaskRow,
    change_task,
    pause,
    resume,
    stop,
)

log = logging.getLogger(__name__)

#: Why a programme or module ended: shown to the client and the care professional.
CANCELLED_REASON = "Geannuleerd in het portaal"
#: Why a programme is paused; also how a pause from the portal is told from our own.
HOLD_REASON = "Gepauzeerd in het portaal"
#: KT2_Task statuses that end an assignment in the portal.
ENDED = frozenset({"cancelled", "entered-in-error"})
#: KT2_Task statuses after which a portal's pause is over.
RUNNING = frozenset({"ready", "in-progress"})
#: Statuses of an enrolment that can still be paused or stopped.
_CURRENT = ("active", "on-hold")
#: Local Task statuses already at an end.
_LOCAL_ENDED = frozenset({"completed", "cancelled", "failed"})
_RESOURCE_ORIGIN = "http://koppeltaal.nl/fhir/StructureDefinition/resource-origin"

Action = Literal["stopped", "cancelled", "paused", "resumed", "noted", "refused"]


@dataclass(frozen=True)
class PortalChange:
    """A change of a known KT2_Task made on the domain, and what we did about it."""

    task_id: str
    old: str
    new: str
    action: Action


def _who(task: Mapping[str, Any]) -> str:
    """Who made the change, as well as we can tell: the Device the Task comes from (the
    portal), else its requester, else us."""
    for extension in task.get("extension", []) or []:
        if extension.get("url") == _RESOURCE_ORIGIN:
            reference = str((extension.get("valueReference") or {}).get("reference") or "")
            if reference.startswith("Device/"):
                return reference
    requester = str((task.get("requester") or {}).get("reference") or "")
    return requester if requester.startswith("Practitioner/") else "Device/fhir-burnout"


def paused_by_portal(enrolment: EnrolmentRow) -> bool:
    """Whether a paused enrolment was paused from the portal (its held Tasks say why)."""
    return enrolment.status == "on-hold" and any(
        t.status == "on-hold" and t.status_reason == HOLD_REASON for t in enrolment.tasks
    )


def _act_on_track(
    db: Session, row: KoppeltaalTaskRow, status: str, *, by: str, now: datetime
) -> Action:
    enrolment = db.get(EnrolmentRow, row.enrolment_key)
    if enrolment is None:
        return "noted"
    if status in ENDED and enrolment.status in _CURRENT:
        stop(db, enrolment.key, by=by, reason=CANCELLED_REASON, now=now)
        return "stopped"
    if status == "on-hold" and enrolment.status == "active":
        pause(db, enrolment.key, by=by, reason=HOLD_REASON, now=now)
        return "paused"
    if status in RUNNING and paused_by_portal(enrolment):
        resume(db, enrolment.key, by=by, now=now)
        return "resumed"
    return "noted"


def _act_on_module(
    db: Session, definitions: Definitions, row: KoppeltaalTaskRow, status: str, *, by: str,
    now: datetime,
) -> Action:  # fmt: skip
    local = db.get(TaskRow, row.local_task_key) if row.local_task_key else None
    if local is None or status not in ENDED or local.status in _LOCAL_ENDED:
        return "noted"
    change_task(db, definitions, local.key, "cancelled", actor="system", who=by,
                reason=CANCELLED_REASON, now=now)  # fmt: skip
    return "cancelled"


def follow_portal(
    db: Session,
    definitions: Definitions,
    row: KoppeltaalTaskRow,
    task: Mapping[str, Any],
    *,
    now: datetime,
    client_id: str | None = None,
    base_url: str | None = None,
) -> PortalChange | None:
    """Follow a change of a Task we took in (``row``), as just read (``task``), in the
    caller's transaction; None when it is no change (the version we recorded). Given
    ``client_id`` and ``base_url``, a ``receive`` AuditEvent records what was done."""
    status = str(task.get("status") or "")
    version = (task.get("meta") or {}).get("versionId")
    if not status or (version and row.version_id == str(version)):
        return None
    old = row.status
    note_seen(row, status, version, now)
    if status == old:
        return None
    by = _who(task)
    try:
        with db.begin_nested():  # a refused act leaves our state as it was
            if row.local_task_key is None:
                action = _act_on_track(db, row, status, by=by, now=now)
            else:
                action = _act_on_module(db, definitions, row, status, by=by, now=now)
    except FhirBurnoutError as refused:
        # Our programme does not allow it (a state the rules refuse): noted, and the poll
        # goes on; the kind of refusal only (no health data in logs).
        log.warning("Koppeltaal Task/%s %s in the portal not followed (%s)", row.task_id,
                    status, type(refused).__name__)  # fmt: skip
        action = "refused"
    if client_id and base_url:
        event = audit_event(
            client_id=client_id, base_url=base_url, type_=RECEIVE, subtype=None, action="E",
            outcome="4" if action == "refused" else "0",
            outcome_desc=f"Task.status {old} -> {status} in the portal: {action}",
            entities=[task_entity(row.task_id, str(version) if version else None)],
            agent_type=DESTINATION_ROLE, requestor=False,
        )  # fmt: skip
        queue_audit_event(db, row.fhir_base, event, kind="koppeltaal-receive")
    return PortalChange(row.task_id, old, status, action)
