"""Endings on purpose, and measures that follow the programme.

A care professional stops or finishes a programme with a reason from the programme's own
``ending-reason`` CodeSystem (read from the published package, so the codes the page offers
are the codes the EHR can look up). The reason travels as a CodeableConcept: on each Task
that closes as ``Task.statusReason`` (R4), and on the CarePlan as our ``ending-reason``
extension, since R4 CarePlan has no element for why it ended.

Repeating measures (the weekly check-in with its safety item) run only while the programme
does: no new one for an enrolment that is not active, and on a track with a duration
(``boundsDuration`` on the weekly action, the after-care track's 26 weeks) none after it;
then the care professional gets a Task to close or extend the track instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fhir_burnout.errors import FhirBurnoutError
from fhir_burnout.questionnaire import localized
from fhir_burnout.sync import Operation, UpdateTask
from fhir_burnout.workflow._apply import measures_until
from fhir_burnout.workflow._changes import _next_time
from fhir_burnout.workflow._definitions import Definitions, _repeat
from fhir_burnout.workflow._errors import EnrolmentStateError, NotFoundError
from fhir_burnout.workflow._outbox import _now, queue_writes
from fhir_burnout.workflow._practitioner_tasks import MEASURES_END, _measures_ended
from fhir_burnout.workflow._states import check_transition
from fhir_burnout.workflow._tables import EnrolmentRow, TaskRow

#: The id of our CodeSystem of ending reasons (resources/_endings.py builds it).
ENDING_REASON = "ending-reason"
#: The action ids of repeating measures end with this (resources/_build.py names them).
_WEEKLY = ".weekly"


class UnknownEndingReasonError(FhirBurnoutError, ValueError):
    """An ending reason that is not a code of the programme's ending-reason CodeSystem."""

    code = "code-invalid"


@dataclass(frozen=True)
class EndingReason:
    """Why a programme ended: our code, as a CodeableConcept for the EHR."""

    code: str
    concept: Mapping[str, Any] = field(repr=False)
    extension_url: str

    @property
    def text(self) -> str:
        """What the care professional chose, in their words if they added any."""
        return str(self.concept.get("text") or self.concept["coding"][0].get("display", ""))


def _code_system(definitions: Definitions) -> Mapping[str, Any]:
    for resource in definitions.by_canonical.values():
        if resource.get("resourceType") == "CodeSystem" and resource.get("id") == ENDING_REASON:
            return resource
    raise UnknownEndingReasonError("the package has no ending-reason CodeSystem")


def ending_reasons(definitions: Definitions, ending: str, lang: str) -> list[tuple[str, str]]:
    """The reasons that fit ``ending`` (``stop`` or ``finish``), as (code, label in ``lang``)."""
    found = []
    for concept in _code_system(definitions).get("concept", []):
        fits = {p.get("valueCode") for p in concept.get("property", []) if p["code"] == "ending"}
        if ending in fits:
            found.append((str(concept["code"]), _display(concept, lang)))
    return found


def _display(concept: Mapping[str, Any], lang: str) -> str:
    for designation in concept.get("designation", []):
        if designation.get("language") == lang:
            return str(designation["value"])
    return str(concept.get("display", concept["code"]))


def ending_label(definitions: Definitions, code: str | None, lang: str) -> str | None:
    """The label of an ending reason in ``lang`` (None for none; the code if unknown)."""
    if code is None:
        return None
    try:
        concepts = _code_system(definitions).get("concept", [])
    except UnknownEndingReasonError:
        return code
    concept = next((c for c in concepts if c.get("code") == code), None)
    return code if concept is None else _display(concept, lang)


def ending_reason(definitions: Definitions, code: str, note: str = "") -> EndingReason:
    """The ending reason ``code`` with the care professional's own words (``note``)."""
    system = _code_system(definitions)
    concept = next((c for c in system.get("concept", []) if c.get("code") == code), None)
    if concept is None:
        raise UnknownEndingReasonError(f"{code!r} is not an ending reason")
    coding = {
        "system": str(system["url"]),
        "version": str(system["version"]),
        "code": code,
        "display": str(concept.get("display", code)),
    }
    codeable: dict[str, Any] = {"coding": [coding]}
    if note.strip():
        codeable["text"] = note.strip()
    url = str(system["url"]).replace(f"/CodeSystem/{ENDING_REASON}", "/StructureDefinition/")
    return EndingReason(code, codeable, url + ENDING_REASON)


#: What the referrer reads when the programme ends (Dutch: the EHR's readers are Dutch).
_TOLD = {"stop": "Programma gestopt", "finish": "Programma afgerond"}


def ending_told(ending: str, reason: EndingReason) -> dict[str, Any]:
    """The reason as the referrer's Task carries it (``statusReason``): our code, and in
    words that the programme was stopped or finished, and why."""
    coding = reason.concept["coding"]
    return {"coding": list(coding), "text": f"{_TOLD[ending]}: {reason.text}"}


# --- measures ------------------------------------------------------------------------------


@dataclass(frozen=True)
class MeasureView:
    """A questionnaire the track asks, for the care professional: when, and until when."""

    title: str
    moment: str  # start | weekly | phase-end | end
    phase: str | None  # the phase it closes (phase-end)
    until: date | None  # weekly: the last day it runs (None: while the programme runs)


def measure_views(
    plan: Mapping[str, Any], enrolment: EnrolmentRow, lang: str
) -> tuple[MeasureView, ...]:
    """What the enrolment's track measures and how often, from its PlanDefinition."""
    phases = {
        str(a.get("id")): localized(a, "title", lang, "nl") for a in plan.get("action", []) or []
    }
    views = []
    for group in plan.get("action", []) or []:
        if group.get("code"):  # a phase; the measures group has no code
            continue
        for action in group.get("action", []) or []:
            title = localized(action, "title", lang, "nl")
            action_id = str(action.get("id"))
            if action_id.endswith(_WEEKLY):
                views.append(MeasureView(title, "weekly", None, enrolment.measures_until))
            elif action_id.endswith(".start"):
                views.append(MeasureView(title, "start", None, None))
            elif action_id.endswith(".end"):
                views.append(MeasureView(title, "end", None, None))
            else:
                after = [r["actionId"] for r in action.get("relatedAction", [])]
                phase = phases.get(after[0]) if after else None
                views.append(MeasureView(title, "phase-end", phase, None))
    return tuple(views)


def end_measures(
    db: Session, definitions: Definitions, *, now: datetime | None = None
) -> list[str]:
    """Close the repeating measures of every active enrolment whose measures have run their
    time: open check-ins are cancelled and the care professional gets a Task to close or
    extend the track (once). Returns the keys of the enrolments it closed them for. Run it
    now and then (the worker does); the client's page hides them from that day anyway."""
    now = _now(now)
    today = now.date()
    due = db.scalars(
        select(EnrolmentRow).where(
            EnrolmentRow.status == "active",
            EnrolmentRow.measures_until.is_not(None),
            EnrolmentRow.measures_until < today,
        )
    ).all()
    closed = []
    for enrolment in due:
        operations = _cancel_repeating(enrolment.tasks, now)
        ask = _measures_ended(db, enrolment, now)
        if ask is not None:
            operations.append(ask)
        if operations:
            queue_writes(db, enrolment, "measures-ended", operations, None, now=now)
            closed.append(enrolment.key)
    return closed


def _cancel_repeating(tasks: Sequence[TaskRow], now: datetime) -> list[Operation]:
    operations: list[Operation] = []
    for task in tasks:
        if task.action_id.endswith(_WEEKLY) and task.status in ("ready", "in-progress"):
            check_transition(task.status, "cancelled", "practitioner")
            task.status, task.updated_at = "cancelled", now
            task.status_reason = _ENDED
            operations.append(UpdateTask(task.key, "cancelled", status_reason=_ENDED))
    return operations


#: Task.statusReason of a check-in closed because its track's time is over (Dutch: the EHR's
#: readers are Dutch).
_ENDED = "Einde van de looptijd van de metingen"


def extend_measures(
    db: Session,
    definitions: Definitions,
    enrolment_key: str,
    *,
    by: str,
    now: datetime | None = None,
) -> EnrolmentRow:
    """Run the track's weekly measures for another of its periods (26 weeks of after-care,
    say), from today or from their current end, whichever is later; the close-or-extend
    Task is done."""
    now = _now(now)
    enrolment = db.get(EnrolmentRow, enrolment_key, with_for_update=True)
    if enrolment is None:
        raise NotFoundError(f"there is no enrolment {enrolment_key}")
    plan = definitions.by_canonical[enrolment.plan_definition]
    if enrolment.status != "active" or enrolment.measures_until is None:
        raise EnrolmentStateError("only an active track with a duration can be extended")
    start = max(now.date(), enrolment.measures_until + timedelta(days=1))
    enrolment.measures_until = measures_until(plan, start)
    operations: list[Operation] = []
    weekly = [t for t in enrolment.tasks if t.action_id.endswith(_WEEKLY)]
    if weekly and not any(t.status in ("ready", "in-progress") for t in weekly):
        last = max(weekly, key=lambda t: t.position)  # the check-ins start again next week
        again = _next_time(db, enrolment, last, _repeat(plan, last.action_id), now)
        if again is not None:
            operations.append(again)
    for task in enrolment.tasks:
        if task.action_id == MEASURES_END and task.status in ("requested", "ready"):
            task.status, task.updated_at = "completed", now
            operations.append(UpdateTask(task.key, "completed"))
    if operations:
        queue_writes(db, enrolment, "measures-extended", operations, by, now=now)
    return enrolment
