"""A portal's KT2_Task taken in: the patient enrolled in the matching track, once per Task.

Two ways bring a Task to us, in either order: the HTI launch (the client or the care
professional opens it from the portal) and the notification or poll of new Tasks. Both call
:func:`take_task`, which is idempotent per Task (``KoppeltaalTaskRow``, keyed by FHIR base
and the Task's server id): the second caller gets the row the first one made.

Which track (KT2_Task.instantiates → one of our KT2_ActivityDefinitions, IG
``KT2_Task.fsh``, ``KT2_Instantiates.fsh``; :func:`target_of`):

- a module's ActivityDefinition (its ``url`` is the module's canonical in our package): the
  standard track, and the KT Task follows that module's local Task (``local_task_key``); a
  module in a phase that is still locked has its phase opened, and a module still waiting
  for the one before it is made ready: assigning it was the care professional's decision;
- a track's ActivityDefinition: that track, and the KT Task follows the whole enrolment.

Publishing (``_profiles``) marks which is which with an ``identifier`` (system
``<canonical>/koppeltaal/module`` or ``…/track``, value the code): :func:`target_of`.

Refused (:class:`KoppeltaalTaskError`, with a short ``reason``): a definition that is not
ours, a Task whose ``instantiates`` names another ActivityDefinition, a ``for`` that is not a
Patient, an ``owner`` that is not that patient (a subtask for someone else), a ``view``
subtask (``koppeltaal-task-code#view``: read-only, never an assignment; its main Task is
what enrols, see :func:`check_view_rule`), a Task that is not (or no longer) open.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fhir_burnout.errors import FhirBurnoutError
from fhir_burnout.koppeltaal._tables import KoppeltaalTaskRow
from fhir_burnout.workflow import (
    Definitions,
    EnrolmentRow,
    TaskRow,
    change_task,
    enrol,
    unlock_phase,
)

#: KT2_Task's link to its ActivityDefinition (IG extensions/KT2_Instantiates.fsh).
INSTANTIATES = "http://vzvz.nl/fhir/StructureDefinition/instantiates"
#: KT2_ActivityDefinition's vendor key (IG extensions/KT2_PublisherId.fsh).
PUBLISHER_ID = "http://koppeltaal.nl/fhir/StructureDefinition/KT2PublisherId"
#: KT2_Task.code for a read-only subtask (IG codesystems/KoppeltaalTaskCode.fsh).
TASK_CODE_SYSTEM = "http://vzvz.nl/fhir/CodeSystem/koppeltaal-task-code"
#: The track a module assigned on its own belongs to.
MODULE_TRACK = "standard"
#: Task statuses (R4 task-status) in which a Task is still an assignment to take in.
OPEN_STATUSES = frozenset({"requested", "received", "accepted", "ready", "in-progress", "on-hold"})

Reason = Literal["not-ours", "definition", "patient", "owner", "view", "status", "invalid"]


class KoppeltaalTaskError(FhirBurnoutError, ValueError):
    """A KT2_Task we do not take in; ``reason`` says why in one word (``not-ours``,
    ``definition``, ``patient``, ``owner``, ``view``, ``status``, ``invalid``)."""

    code = "business-rule"

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Target:
    """What an ActivityDefinition of ours stands for: a track, and the module's canonical
    (``url``) when it is one module rather than the whole track."""

    track: str
    module: str | None = None


def _reference(value: Any) -> str:
    """``Type/id`` of a literal reference, absolute or relative (``_history`` dropped)."""
    if not isinstance(value, Mapping):
        return ""
    reference = str(value.get("reference") or "")
    parts = reference.split("/_history/", maxsplit=1)[0].rstrip("/").split("/")
    return "/".join(parts[-2:]) if len(parts) >= 2 else ""


def instantiates(task: Mapping[str, Any]) -> str | None:
    """``ActivityDefinition/<id>`` from the Task's ``instantiates`` extension, if any
    (``instantiatesCanonical`` is ignored, as the IG says)."""
    for extension in task.get("extension", []) or []:
        if extension.get("url") == INSTANTIATES:
            reference = _reference(extension.get("valueReference"))
            if reference.startswith("ActivityDefinition/"):
                return reference
    return None


def publisher_id(activity_definition: Mapping[str, Any]) -> str | None:
    """The ActivityDefinition's ``KT2PublisherId``, if any."""
    for extension in activity_definition.get("extension", []) or []:
        if extension.get("url") == PUBLISHER_ID:
            value = extension.get("valueId") or extension.get("valueString")
            return str(value) if value else None
    return None


def is_view(task: Mapping[str, Any]) -> bool:
    """Whether the Task is a read-only ``view`` subtask."""
    codings = (task.get("code") or {}).get("coding", []) or []
    return any(c.get("system") == TASK_CODE_SYSTEM and c.get("code") == "view" for c in codings)


def check_view_rule(task: Mapping[str, Any], parent: Mapping[str, Any] | None) -> None:
    """The IG's rule for a ``view`` subtask (``KT2Task-notes``): it is ``partOf`` a main Task
    (``parent``, as read from the server) that has no ``code`` itself and is for the same
    patient. Raises :class:`KoppeltaalTaskError` (``view``) when the rule does not hold;
    a Task without the view code passes."""
    if not is_view(task):
        return
    parts = {_reference(p) for p in task.get("partOf", []) or []}
    if parent is None or f"Task/{parent.get('id')}" not in parts:
        raise KoppeltaalTaskError("view", "a view Task must be part of a main Task")
    if parent.get("code"):
        raise KoppeltaalTaskError("view", "the main Task of a view Task has a code itself")
    if _reference(parent.get("for")) != _reference(task.get("for")):
        raise KoppeltaalTaskError("view", "a view Task is for another patient than its main Task")


def _canonical(url: Any) -> str:
    return str(url or "").split("|")[0]


def _our_canonical(definitions: Definitions) -> str | None:
    """The programme's canonical base (``https://…/fhir``), from its PlanDefinitions."""
    for plan in definitions.plans.values():
        url = _canonical(plan.get("url"))
        if "/PlanDefinition/" in url:
            return url.rsplit("/PlanDefinition/", 1)[0]
    return None


def target_of(definitions: Definitions, activity_definition: Mapping[str, Any]) -> Target:
    """The track (and module) an ActivityDefinition of ours stands for. As publishing marks
    it (``_profiles.definition_kind``): an ``identifier`` with system
    ``<canonical>/koppeltaal/module`` or ``…/track`` (our canonical, exactly) and the
    module's or track's code. Also taken: a ``url`` that is our module ActivityDefinition's
    or our track PlanDefinition's canonical. Raises :class:`KoppeltaalTaskError`
    (``not-ours``) for anything else."""
    canonical = _our_canonical(definitions)
    for identifier in activity_definition.get("identifier", []) or []:
        system, code = str(identifier.get("system", "")), str(identifier.get("value", ""))
        if canonical is None or not code:
            continue
        module = f"{canonical}/ActivityDefinition/{code}"
        if system == f"{canonical}/koppeltaal/module" and module in definitions.by_canonical:
            return Target(MODULE_TRACK, module)
        if system == f"{canonical}/koppeltaal/track" and code in definitions.plans:
            return Target(code)
    url = _canonical(activity_definition.get("url"))
    ours = definitions.by_canonical.get(url)
    if ours is not None and ours.get("resourceType") == "ActivityDefinition":
        return Target(MODULE_TRACK, url)
    plans = {_canonical(plan.get("url")): track for track, plan in definitions.plans.items()}
    if url in plans:
        return Target(plans[url])
    raise KoppeltaalTaskError(
        "not-ours", f"ActivityDefinition/{activity_definition.get('id')} is not one of ours"
    )


def find_task(db: Session, fhir_base: str, task_id: str) -> KoppeltaalTaskRow | None:
    """The row of a KT Task we took in, if we did."""
    return db.get(KoppeltaalTaskRow, (fhir_base.rstrip("/"), task_id))


def _checked(
    task: Mapping[str, Any], activity_definition: Mapping[str, Any], publisher: str | None
) -> tuple[str, str]:
    """The Task's id and patient id, after the checks that refuse it."""
    task_id = str(task.get("id") or "")
    if task.get("resourceType") != "Task" or not task_id:
        raise KoppeltaalTaskError("invalid", "not a Task with an id")
    if is_view(task):
        raise KoppeltaalTaskError(
            "view", f"Task/{task_id} is a view Task: its main Task is the assignment"
        )
    named = instantiates(task)
    if named is None or named != f"ActivityDefinition/{activity_definition.get('id')}":
        raise KoppeltaalTaskError(
            "definition", f"Task/{task_id} does not instantiate that ActivityDefinition"
        )
    if publisher is not None and publisher_id(activity_definition) != publisher:
        raise KoppeltaalTaskError("not-ours", f"{named} is published by someone else")
    patient = _reference(task.get("for"))
    if not patient.startswith("Patient/"):
        raise KoppeltaalTaskError("patient", f"Task/{task_id} is not for a Patient")
    owner = _reference(task.get("owner"))
    if owner and owner != patient:
        raise KoppeltaalTaskError("owner", f"Task/{task_id} is not owned by its patient")
    return task_id, patient.split("/", 1)[1]


def _module_task(db: Session, enrolment: EnrolmentRow, module: str) -> TaskRow:
    found = db.scalar(
        select(TaskRow)
        .where(TaskRow.enrolment_key == enrolment.key, TaskRow.kind == "module")
        .where(TaskRow.definition.in_([module, *_versions(enrolment, module)]))
        .order_by(TaskRow.position)
        .limit(1)
    )
    if found is None:
        raise KoppeltaalTaskError("not-ours", f"the {enrolment.track} track has no {module}")
    return found


def _versions(enrolment: EnrolmentRow, module: str) -> list[str]:
    # Local Tasks name their definition url|version, the version of the plan's package.
    version = enrolment.plan_definition.rpartition("|")[2]
    return [f"{module}|{version}"] if version else []


def take_task(
    db: Session,
    definitions: Definitions,
    fhir_base: str,
    task: Mapping[str, Any],
    activity_definition: Mapping[str, Any],
    *,
    practice: str | None = None,
    publisher: str | None = None,
    now: datetime | None = None,
) -> KoppeltaalTaskRow:
    """Take in a KT2_Task (as read from ``fhir_base``) that instantiates
    ``activity_definition`` (as read from there too): enrol its patient in the matching
    track and record the row that links the Task to the enrolment (and to the module's
    local Task). Idempotent per Task: a Task taken in before gives back its row, with the
    status and version just read, and changes nothing else. In the caller's transaction
    (the caller commits). ``practice``: the practice we write for (``Ehr.practice``);
    ``publisher``: our ``KT2PublisherId``, checked when given. Raises
    :class:`KoppeltaalTaskError` for a Task we do not take in."""
    fhir_base = fhir_base.rstrip("/")
    task_id, patient = _checked(task, activity_definition, publisher)
    status = str(task.get("status") or "")
    version = (task.get("meta") or {}).get("versionId")
    now = now or datetime.now(UTC)
    existing = find_task(db, fhir_base, task_id)
    if existing is not None:
        if existing.patient != f"Patient/{patient}":
            raise KoppeltaalTaskError("patient", f"Task/{task_id} changed patient")
        note_seen(existing, status, version, now)
        return existing
    if status not in OPEN_STATUSES:
        raise KoppeltaalTaskError("status", f"Task/{task_id} is {status or 'without status'}")
    target = target_of(definitions, activity_definition)
    requester = _reference(task.get("requester"))
    author = requester if requester.startswith("Practitioner/") else None
    enrolment = enrol(
        db, definitions, fhir_base=fhir_base, patient=patient, track=target.track,
        author=author, practice=practice, now=now,
    )  # fmt: skip
    local = None
    if target.module is not None:
        module_task = _module_task(db, enrolment, target.module)
        local = module_task.key
        phase = next((p for p in enrolment.phases if p.code == module_task.phase), None)
        by = author or "Device/fhir-burnout"
        if phase is not None and phase.status == "locked" and enrolment.status == "active":
            unlock_phase(db, definitions, enrolment.key, phase.code, by=by, now=now)
        if module_task.status in ("draft", "requested") and enrolment.status == "active":
            # Waiting for the module before it in the plan; the portal's word is now.
            change_task(db, definitions, module_task.key, "ready", actor="system", who=by, now=now)
    row = KoppeltaalTaskRow(
        fhir_base=fhir_base,
        task_id=task_id,
        enrolment_key=enrolment.key,
        definition=f"ActivityDefinition/{activity_definition.get('id')}",
        local_task_key=local,
        patient=f"Patient/{patient}",
        status=status,
        version_id=str(version) if version else None,
        created_at=now,
        updated_at=now,
    )
    try:
        with db.begin_nested():
            db.add(row)
            db.flush()
    except IntegrityError:
        # The launch and the notification took the same Task in at the same moment.
        found = find_task(db, fhir_base, task_id)
        if found is None:
            raise
        return found
    return row


def note_seen(row: KoppeltaalTaskRow, status: str, version: Any, now: datetime) -> None:
    """Note the status and version of a Task as just read, when they are news."""
    if status and (row.status, row.version_id) != (status, str(version) if version else None):
        row.status = status
        row.version_id = str(version) if version else row.version_id
        row.updated_at = now
