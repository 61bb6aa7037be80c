"""Where a client stands, in words for a page: phase, next module, what is due, what opened.

Read-only, in the client's language (titles from the PlanDefinition's translation
extensions). The web pages render it; nothing here knows about Flask.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fhir_burnout.questionnaire import localized
from fhir_burnout.workflow._definitions import Definitions
from fhir_burnout.workflow._tables import CURRENT, EnrolmentRow


@dataclass(frozen=True)
class TaskView:
    """One thing to do, as the client sees it."""

    key: str
    title: str
    kind: str  # module | homework | measure
    status: str


@dataclass(frozen=True)
class PhaseView:
    """A phase and whether it is open; who opened it, when a care professional did."""

    code: str
    title: str
    status: str  # locked | open | done
    opened_by_practitioner: bool


@dataclass(frozen=True)
class ProgrammeView:
    """One enrolment, summarised for the client's first page."""

    enrolment: str
    track: str
    track_title: str
    phases: tuple[PhaseView, ...]
    current_phase: PhaseView | None
    next_module: TaskView | None
    due: tuple[TaskView, ...]  # homework and questionnaires ready now
    modules_done: int
    modules_total: int
    paused: bool = False  # by the care professional: nothing is due until it resumes


def _translated(element: Mapping[str, Any], key: str, lang: str) -> str:
    # Our content is Dutch first; other languages come from the translation extension.
    return localized(element, key, lang, "nl")


def _titles(plan: Mapping[str, Any], lang: str) -> dict[str, str]:
    titles = {}
    for action in plan.get("action", []) or []:
        titles[str(action.get("id"))] = _translated(action, "title", lang)
        for child in action.get("action", []) or []:
            titles[str(child.get("id"))] = _translated(child, "title", lang)
    return titles


def _measures_over(action_id: str, until: date | None, today: date) -> bool:
    """Whether this is a weekly measure whose track has run its time (until the worker
    closes it, it is left out here: the client is not asked what nobody will read)."""
    return until is not None and today > until and action_id.endswith(".weekly")


def programme_views(
    db: Session,
    definitions: Definitions,
    *,
    fhir_base: str,
    patient: str,
    lang: str = "nl",
    today: date | None = None,
) -> list[ProgrammeView]:
    """The patient's current enrolments (active or paused) on this EHR, newest first;
    ``due`` holds what can be done ``today`` (a weekly check-in not before its week has come
    round)."""
    today = today or datetime.now(UTC).date()
    enrolments = db.scalars(
        select(EnrolmentRow)
        .where(
            EnrolmentRow.fhir_base == fhir_base.rstrip("/"),
            EnrolmentRow.patient == patient,
            EnrolmentRow.status.in_(CURRENT),
        )
        .order_by(EnrolmentRow.created_at.desc())
    ).all()
    views = []
    for enrolment in enrolments:
        plan = definitions.by_canonical[enrolment.plan_definition]
        titles = _titles(plan, lang)
        phases = tuple(
            PhaseView(
                p.code,
                titles.get(p.code, p.code),
                p.status,
                (p.unlocked_by or "").startswith("Practitioner/"),
            )
            for p in sorted(enrolment.phases, key=lambda p: p.position)
        )
        tasks = [
            TaskView(t.key, titles.get(t.action_id, t.title), t.kind, t.status)
            for t in sorted(enrolment.tasks, key=lambda t: t.position)
            if t.kind != "practitioner"
            and (t.ready_from is None or t.ready_from <= today)
            and not _measures_over(t.action_id, enrolment.measures_until, today)
        ]
        modules = [t for t in tasks if t.kind == "module"]
        views.append(
            ProgrammeView(
                enrolment=enrolment.key,
                track=enrolment.track,
                track_title=_translated(plan, "title", lang),
                phases=phases,
                current_phase=next((p for p in phases if p.status == "open"), None),
                next_module=next(
                    (t for t in modules if t.status in ("in-progress", "ready")), None
                ),
                due=tuple(
                    t for t in tasks if t.kind != "module" and t.status in ("ready", "in-progress")
                ),
                modules_done=sum(t.status == "completed" for t in modules),
                modules_total=len(modules),
                paused=enrolment.status == "on-hold",
            )
        )
    return views
