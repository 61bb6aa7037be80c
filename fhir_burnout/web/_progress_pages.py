"""The client's progress: everything they filled in over time (``_own_measures``: scores
with their bands, the weekly check-in, the tension log, the look-backs after exercises;
and the energy diary's trend), first as a short summary in words (per measure the latest
reading, what it means and how it changed), then each as an SVG chart on a time axis
(``_charts``) with the same figures as a table behind "show as a table"; modules done.
Own data only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from flask import Blueprint
from sqlalchemy import select
from sqlalchemy.orm import Session

from fhir_burnout.web._charts import Reading, Scale, draw, number
from fhir_burnout.web._client_pages import exercises_of
from fhir_burnout.web._context import app_context
from fhir_burnout.web._energy import EnergyTrend, energy_trend, is_diary
from fhir_burnout.web._gate import ClientRecords, client_of_launch
from fhir_burnout.web._i18n import format_date, translate
from fhir_burnout.web._memo import _markdown_of, _sections, current_memo
from fhir_burnout.web._own_measures import (
    ExerciseNames,
    Measure,
    Section,
    checkin_section,
    look_back_section,
    measure,
    score_sections,
    tension_log_section,
)
from fhir_burnout.web._render import language, message_page, render
from fhir_burnout.workflow import EnrolmentRow, ResponseRow, TaskRow, programme_views

bp = Blueprint("progress", __name__)


def _responses(db: Session, fhir_base: str, patient: str) -> list[ResponseRow]:
    """The patient's own responses on this EHR, oldest first."""
    return list(
        db.scalars(
            select(ResponseRow)
            .join(EnrolmentRow, ResponseRow.enrolment_key == EnrolmentRow.key)
            .where(
                EnrolmentRow.fhir_base == fhir_base.rstrip("/"), EnrolmentRow.patient == patient
            )
            .order_by(ResponseRow.authored)
        ).all()
    )


@dataclass(frozen=True)
class EnergyView:
    """The energy diary's trend with its chart (the day's energy, 0 to 10), if a day was
    rated."""

    trend: EnergyTrend
    dates: dict[str, str]  # ISO date -> as people write it
    measure: Measure | None


def _energy(rows: list[ResponseRow], lang: str) -> EnergyView | None:
    trend = energy_trend(json.loads(r.resource) for r in rows if is_diary(r.questionnaire))
    if trend is None:
        return None
    rated = [
        Reading(date.fromisoformat(d.date), float(d.overall))
        for d in trend.days
        if d.overall is not None
    ]
    found = None
    if rated:
        scale = Scale(0.0, 10.0)
        chart = draw(rated, scale, lang=lang)
        found = measure(
            "energy", translate("energy_title", lang), chart, rated, scale=scale, lang=lang
        )
    dates = {d.date: format_date(d.date, lang) for d in trend.days}
    return EnergyView(trend, dates, found)


class _LookedBack(Protocol):
    """A look-back after an exercise: a response row, or the session summary's."""

    @property
    def task_key(self) -> str | None: ...


def _exercise_names(db: Session, rows: Sequence[_LookedBack], lang: str) -> ExerciseNames:
    """An exercise's name (its heading in the module) from its look-back's Task and id
    (also for the care professional's session summary: web/_session_summary.py)."""
    keys = {r.task_key for r in rows if r.task_key}
    query = select(TaskRow.key, TaskRow.definition).where(TaskRow.key.in_(keys))
    modules = {key: definition for key, definition in db.execute(query)}
    definitions = app_context().definitions

    def name(task_key: str, exercise: str) -> str:
        activity = definitions.by_canonical.get(modules.get(task_key, ""))
        if activity is None:
            return exercise
        ids = [e["id"] for e in exercises_of(activity)]
        headings = [s.splitlines()[0] for s in _sections(_markdown_of(activity, lang)[1])]
        if exercise in ids and ids.index(exercise) < len(headings):
            # "## Oefening: Rustig ademen" -> "Rustig ademen"
            return headings[ids.index(exercise)][3:].split(":", 1)[-1].strip()
        return current_memo().module(str(activity["url"]), lang).title

    return name


def _sections_of(db: Session, rows: list[ResponseRow], lang: str) -> list[Section]:
    """Every measure the client filled in: scores first, then what they kept themselves."""
    forms = current_memo().form
    found = score_sections(rows, forms, lang)
    for section in (
        checkin_section(rows, forms, lang),
        tension_log_section(rows, forms, lang),
        look_back_section(rows, forms, _exercise_names(db, rows, lang), lang),
    ):
        if section is not None:
            found.append(section)
    return found


@bp.get("/progress")
@client_of_launch
def progress_page(records: ClientRecords) -> Any:
    """Everything the signed-in client filled in over time, and the modules done."""
    row = records.client()  # an ended session: the gate's page (web/_gate.py)
    if row is None:
        return message_page("error_signed_out", 401)
    state = app_context()
    lang = language()
    with Session(state.reader) as db:
        rows = _responses(db, row.fhir_base, str(row.patient))
        sections, energy = _sections_of(db, rows, lang), _energy(rows, lang)
        programmes = programme_views(
            db, state.definitions, fhir_base=row.fhir_base, patient=str(row.patient),
            lang=lang,
        )  # fmt: skip
    return render(
        "progress.html",
        sections=sections,
        energy=energy,
        programmes=programmes,
        number=lambda value: number(value, lang),
    )
