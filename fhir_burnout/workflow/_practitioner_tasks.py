"""The care professional's to-dos as Tasks: open the next phase, finish or extend a track
whose time is over, and review a safety signal (docs/clinical-safety.md).
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fhir_burnout.questionnaire import Signal
from fhir_burnout.sync import Create, key_identifier, key_reference
from fhir_burnout.workflow._definitions import _phase_titles
from fhir_burnout.workflow._locks import _task
from fhir_burnout.workflow._outbox import _now, _translated, queue_writes
from fhir_burnout.workflow._tables import EnrolmentRow, TaskRow


def _next_position(db: Session, enrolment: EnrolmentRow) -> int:
    """Where a new Task of the enrolment goes: after every other."""
    last = db.scalar(
        select(func.max(TaskRow.position)).where(TaskRow.enrolment_key == enrolment.key)
    )
    return int(last or 0) + 1


#: The care professional's to-dos (Task.code.text; Dutch first, English translation).
UNLOCK_REQUEST = ("Volgende fase openzetten: {phase}", "Open the next phase: {phase}")


SAFETY_REVIEW = (
    "Veiligheidssignaal in {title}: neem vandaag contact op met de cliënt",
    "Safety signal in {title}: contact the client today",
)


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
) -> Create:
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
    return Create(key, resource)


def _unlock_requests(
    db: Session,
    enrolment: EnrolmentRow,
    plan: Mapping[str, Any],
    now: datetime,
    facts: Sequence[Any],
) -> list[Create]:
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


#: The action id of the care professional's Task to close or extend a track whose
#: measures have run their time (workflow/_endings.py).
MEASURES_END = "measures-end"


MEASURES_ENDED = (
    "De looptijd van dit traject is voorbij: rond het af of verleng het",
    "This track has run its time: finish it or extend it",
)


def _measures_ended(db: Session, enrolment: EnrolmentRow, now: datetime) -> Create | None:
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


def _safety_review(
    db: Session,
    task: TaskRow,
    *,
    action_id: str,
    reason: str | None,
    now: datetime,
    owner: str | None = None,
) -> Create:
    nl, en = (t.format(title=task.title) for t in SAFETY_REVIEW)
    return _practitioner_task(
        db, task.enrolment, action_id=action_id, texts=(nl, en), priority="urgent", now=now,
        reason=reason, owner=owner,
    )  # fmt: skip


def _signal_task(
    db: Session,
    task: TaskRow,
    signal: Signal,
    *,
    about: str,
    response: str | None,
    owner: str | None,
    now: datetime,
) -> Create:
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
