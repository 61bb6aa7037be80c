"""The client's progress: scores over time (a small SVG chart and the same as a table),
the interpretation band in plain words, modules done per phase, and the energy diary's
trend. Own data only."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from flask import Blueprint
from sqlalchemy import select
from sqlalchemy.orm import Session

from fhir_burnout.questionnaire import score
from fhir_burnout.web._context import app_context
from fhir_burnout.web._energy import EnergyTrend, energy_trend, is_diary
from fhir_burnout.web._gate import ClientRecords, client_of_launch
from fhir_burnout.web._i18n import format_date
from fhir_burnout.web._memo import current_memo
from fhir_burnout.web._render import language, message_page, render
from fhir_burnout.workflow import EnrolmentRow, ResponseRow, programme_views

bp = Blueprint("progress", __name__)
WIDTH, HEIGHT, PAD = 320, 120, 16


@dataclass(frozen=True)
class Point:
    """One score on one day."""

    date: str
    value: float
    label: str | None


@dataclass(frozen=True)
class Series:
    """A score over time, with its chart drawn as SVG coordinates."""

    title: str
    points: tuple[Point, ...]
    polyline: str
    dots: tuple[tuple[float, float], ...]


def _chart(
    values: list[float], scale: tuple[float, float] | None = None
) -> tuple[str, tuple[tuple[float, float], ...]]:
    """SVG coordinates of ``values``: on ``scale`` (low, high) when given, else on a scale
    from 0 (or lower) to the highest value (at least 1)."""
    low, high = scale or (min([*values, 0.0]), max([*values, 1.0]))
    span = high - low or 1.0
    step = (WIDTH - 2 * PAD) / max(1, len(values) - 1)
    dots = tuple(
        (round(PAD + i * step, 1), round(HEIGHT - PAD - (v - low) / span * (HEIGHT - 2 * PAD), 1))
        for i, v in enumerate(values)
    )
    return " ".join(f"{x},{y}" for x, y in dots), dots


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
    """The energy diary's trend with its chart (the day's energy, 0 to 10)."""

    trend: EnergyTrend
    dates: dict[str, str]  # ISO date -> as people write it
    polyline: str
    dots: tuple[tuple[float, float], ...]


def _energy(rows: list[ResponseRow], lang: str) -> EnergyView | None:
    trend = energy_trend(json.loads(r.resource) for r in rows if is_diary(r.questionnaire))
    if trend is None:
        return None
    rated = [float(d.overall) for d in trend.days if d.overall is not None]
    polyline, dots = _chart(rated, scale=(0.0, 10.0)) if rated else ("", ())
    dates = {d.date: format_date(d.date, lang) for d in trend.days}
    return EnergyView(trend, dates, polyline, dots)


def _series(rows: list[ResponseRow], lang: str) -> list[Series]:
    definitions = app_context().definitions
    found: dict[tuple[str, str], list[Point]] = defaultdict(list)
    titles: dict[tuple[str, str], str] = {}
    for row in rows:
        if not json.loads(row.scores or "[]"):
            continue
        questionnaire = definitions.by_canonical.get(row.questionnaire)
        if questionnaire is None:
            continue
        form = current_memo().form(row.questionnaire, lang)
        # Kept as built: its calculated answers are current, read rather than computed again.
        for result in score(form, json.loads(row.resource), current=True):
            if result.value is None:
                continue
            key = (row.questionnaire, result.link_id)
            item = form.index[result.link_id]
            titles[key] = f"{form.title}: {item.text}" if item.text else form.title
            day = format_date(row.authored.date().isoformat(), lang)
            found[key].append(Point(day, float(result.value), result.label))
    series = []
    for key, points in found.items():
        polyline, dots = _chart([p.value for p in points])
        series.append(Series(titles[key], tuple(points), polyline, dots))
    return series


@bp.get("/progress")
@client_of_launch
def progress_page(records: ClientRecords) -> Any:
    """Scores over time and modules done, for the signed-in client."""
    row = records.client()  # an ended session: the gate's page (web/_gate.py)
    if row is None:
        return message_page("error_signed_out", 401)
    state = app_context()
    lang = language()
    with Session(state.reader) as db:
        rows = _responses(db, row.fhir_base, str(row.patient))
        series, energy = _series(rows, lang), _energy(rows, lang)
        programmes = programme_views(
            db, state.definitions, fhir_base=row.fhir_base, patient=str(row.patient),
            lang=lang,
        )  # fmt: skip
    return render(
        "progress.html",
        series=series,
        energy=energy,
        programmes=programmes,
        width=WIDTH,
        height=HEIGHT,
    )
