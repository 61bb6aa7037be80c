"""The care professional's "Sinds de vorige sessie" (issue 21, point 1): where it starts,
what the page draws of it, and the document the EHR gets of it.

**Where it starts**, in this order:

1. the date the care professional picks (``?since=2026-04-14``, a plain GET form: the
   start of that day, local time);
2. the client's last contact as the EHR records it: the newest Encounter before today
   (its end, else its start; not one cancelled, planned or entered in error, nor the one
   the chart was launched from). Only where the launch may read Encounters
   (``user/Encounter.rs`` granted: a practice adds it to ``scopes_practitioner``; the
   app's default scopes do not ask it, so every EHR keeps working as registered). The
   token is the care professional's own, the read is one search, and an EHR that does
   not answer costs nothing but this step;
3. the care professional's own last look at this client's page on an earlier day
   (``workflow.last_visit``: the first look of that day, when they prepared the last
   session; the app keeps only that, per day, for the two latest days);
4. the start of the client's programme, for a first look.

The page says which one it used, so nobody reads "nothing new" without knowing since when.

**What the page draws**: the weekly check-in's trend as three small charts (energy, sleep,
tension: ``_charts``, as on the client's progress page) with the change in words; each
measure's bands named as clinicians name them (``band_<questionnaire>_<code>`` in the
catalogue: the questionnaires' own band labels speak to the client); the exercises by the
names the client knows them by (``_progress_pages``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from itertools import islice
from typing import Any

import requests
from flask import request
from sqlalchemy.orm import Session

from fhir_burnout.errors import FhirBurnoutError
from fhir_burnout.fhir import FhirClient
from fhir_burnout.smart_launch import covers
from fhir_burnout.web._charts import Chart, Reading, Scale, draw, number
from fhir_burnout.web._clinician_labels import answer_label, band_name
from fhir_burnout.web._context import app_context
from fhir_burnout.web._i18n import N_, format_date, translate
from fhir_burnout.web._memo import current_memo
from fhir_burnout.web._own_measures import Forms, _bands, _scale
from fhir_burnout.web._progress_pages import _exercise_names
from fhir_burnout.web._render import language
from fhir_burnout.web._sessions import LaunchSessionRow
from fhir_burnout.workflow import (
    CheckIn,
    LookBack,
    MeasureChange,
    PatientOverview,
    SessionSummary,
    last_visit,
    session_summary,
)

log = logging.getLogger(__name__)

#: Where a summary may start, and why there.
SOURCES = ("chosen", "encounter", "visit", "start")
#: The scope that lets the launch read the client's Encounters (v1 and v2 alike: covers).
ENCOUNTER_SCOPES = ("user/Encounter.rs", "patient/Encounter.rs")
#: Encounters that were no contact.
NO_CONTACT = frozenset({"planned", "cancelled", "entered-in-error"})
#: How many Encounters to look through for the last contact (newest first).
ENCOUNTERS_READ = 10
#: Check-ins in the trend: about three months of weeks.
TREND = 13

#: Keys the page picks at run time: why the summary starts where it does, the verdicts.
RUN_TIME_KEYS = (
    N_("summary_since_chosen"), N_("summary_since_encounter"), N_("summary_since_visit"),
    N_("summary_since_start"),
    N_("rc_improved"), N_("rc_no-change"), N_("rc_worse"),
    N_("summary_trend_energy"), N_("summary_trend_sleep"), N_("summary_trend_tension"),
    N_("summary_value_energy"), N_("summary_value_sleep"), N_("summary_value_tension"),
    N_("summary_trend"), N_("summary_trend_within"),
)  # fmt: skip


@dataclass(frozen=True)
class Since:
    """Where the summary starts, and why there (``chosen``, ``encounter``, ``visit`` or
    ``start``)."""

    at: datetime
    source: str

    @property
    def field(self) -> str:
        """The date form's value: the day, local time (an ``<input type=date>`` wants ISO;
        the browser shows it the person's way)."""
        return self.at.astimezone().date().isoformat()


def start_of(day: date) -> datetime:
    """The start of a day, local time, as the app keeps times (UTC)."""
    return datetime.combine(day, time()).astimezone().astimezone(UTC)


def chosen_day(value: str | None, today: date) -> date | None:
    """The day of ``?since=`` when it is a real day, not in the future; else None."""
    try:
        day = date.fromisoformat(value or "")
    except ValueError:
        return None
    return day if day <= today else None


def choose_since(
    db: Session,
    row: LaunchSessionRow,
    by: str,
    *,
    overview: PatientOverview,
    token: str | None,
    now: datetime,
) -> Since:
    """Where the client's summary starts (see the module docstring)."""
    day = chosen_day(request.args.get("since"), now.astimezone().date())
    if day is not None:
        return Since(start_of(day), "chosen")
    contact = last_contact(row, token, now) if token else None
    if contact is not None:
        return Since(contact, "encounter")
    patient = str(row.patient)
    visit = last_visit(db, fhir_base=row.fhir_base, patient=patient, practitioner=by, now=now)
    if visit is not None:
        return Since(visit, "visit")
    starts = [e.created_at for e in overview.enrolments] or [now]
    return Since(min(starts), "start")


def reads_encounters(scope: str) -> bool:
    """Whether a launch's granted ``scope`` lets it search the client's Encounters."""
    granted = scope.split()
    return any(covers(g, wanted) for g in granted for wanted in ENCOUNTER_SCOPES)


def last_contact(row: LaunchSessionRow, token: str, now: datetime) -> datetime | None:
    """The end (else start) of the client's newest Encounter before today, read with the
    care professional's own token; None when the launch may not read Encounters, there is
    none, or the EHR does not answer."""
    if not row.patient or not reads_encounters(row.scope or ""):
        return None
    today = start_of(now.astimezone().date())
    params = {"patient": row.patient, "_sort": "-date", "_count": str(ENCOUNTERS_READ)}
    try:
        with FhirClient(row.fhir_base, token=token, session=requests.Session()) as client:
            for encounter in islice(client.search("Encounter", params), ENCOUNTERS_READ):
                when = _contact_time(encounter, row.encounter)
                if when is not None and when < today:
                    return when
    except FhirBurnoutError:
        log.info("the last contact could not be read from the EHR: the summary starts elsewhere")
    return None


def _contact_time(encounter: dict[str, Any], launched_from: str | None) -> datetime | None:
    if encounter.get("status") in NO_CONTACT or encounter.get("id") == launched_from:
        return None
    period = encounter.get("period") or {}
    value = period.get("end") or period.get("start")
    if not isinstance(value, str):
        return None
    try:
        if "T" not in value:  # a day only: its start
            return start_of(date.fromisoformat(value))
        found = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return found if found.tzinfo else found.replace(tzinfo=UTC)


# --- what the page draws --------------------------------------------------------------


@dataclass(frozen=True)
class TrendChart:
    """One of the check-in's three charts, with its latest reading in words."""

    key: str
    title: str
    chart: Chart
    words: str


@dataclass(frozen=True)
class SummaryView:
    """The summary with what the page draws of it."""

    summary: SessionSummary
    since: Since
    trend: tuple[TrendChart, ...]
    trend_words: str  # the check-in since the period began, in one sentence
    exercises: tuple[tuple[LookBack, str], ...]  # each look-back with its exercise's name
    #: each measure's chart (its own range and bands), in the order of ``summary.measures``
    charts: tuple[Chart, ...]


def summary_view(
    db: Session, summary: SessionSummary, since: Since, lang: str, forms: Forms
) -> SummaryView:
    """What the page shows of ``summary``."""
    names = _exercise_names(db, list(summary.look_backs), lang)
    return SummaryView(
        summary,
        since,
        _trend(summary, lang),
        _trend_words(summary, lang),
        tuple((b, names(b.task_key or "", b.exercise)) for b in summary.look_backs),
        tuple(_measure_chart(m, forms, lang) for m in summary.measures),
    )


def _measure_chart(measure: MeasureChange, forms: Forms, lang: str) -> Chart:
    """A score over time on its own range, its bands behind (as the client's progress page
    draws it; the page's table names the bands as clinicians do)."""
    form = forms(measure.questionnaire, lang)
    item = form.index[measure.link_id]
    values = [p.value for p in measure.points]
    readings = [Reading(p.authored.astimezone().date(), p.value) for p in measure.points]
    return draw(readings, _scale(item, values), lang=lang, bands=_bands(form, item))


def _trend(summary: SessionSummary, lang: str) -> tuple[TrendChart, ...]:
    checkins = summary.checkins[-TREND:]
    if not checkins:
        return ()
    names = summary.sleep_names
    charts = []
    series: tuple[tuple[str, str, Scale, list[Reading]], ...] = (
        ("energy", translate("progress_energy", lang), Scale(0, 10), []),
        ("sleep", translate("progress_sleep", lang), Scale(0, len(names) - 1, names), []),
        ("tension", translate("progress_tension", lang), Scale(0, 10), []),
    )
    for c in checkins:
        day = c.authored.astimezone().date()
        for key, _, _, readings in series:
            value = {"energy": c.energy, "sleep": c.sleep, "tension": c.tension}[key]
            if value is not None:
                readings.append(Reading(day, float(value)))
    for key, title, scale, readings in series:
        if not readings:
            continue
        last = readings[-1]
        shown = names[int(last.value)] if key == "sleep" else number(last.value, lang)
        words = translate(
            "summary_latest", lang, date=format_date(last.day.isoformat(), lang), value=shown
        )
        charts.append(TrendChart(key, title, draw(readings, scale, lang=lang), words))
    return tuple(charts)


def _trend_words(summary: SessionSummary, lang: str) -> str:
    """The check-in over the period in one sentence ("... energie 4 → 6, slaap slecht →
    goed, spanning 6 → 4."): from the check-in before the period, else from the period's
    first; one check-in alone as its values; "" without one in the period."""
    now = summary.checkins_since
    if not now:
        return ""
    before, after = summary.checkin_before, now[-1]
    key = "summary_trend" if before else "summary_trend_within"
    if before is None and len(now) == 1:
        values = ", ".join(
            translate(f"summary_value_{name}", lang, value=value)
            for name, value in _readings(after, lang) if value is not None
        )  # fmt: skip
        return translate("summary_trend_one", lang, values=values)
    start = dict(_readings(before or now[0], lang))
    parts = [
        translate(f"summary_trend_{name}", lang, first=first, last=value)
        for name, value in _readings(after, lang)
        if value is not None and (first := start[name]) is not None
    ]
    return translate(key, lang, changes=", ".join(parts))


def _readings(checkin: CheckIn, lang: str) -> tuple[tuple[str, str | None], ...]:
    """A check-in's energy, sleep and tension as words (the sleep answer in lower case: it
    stands in the middle of a sentence)."""
    return (
        ("energy", number(checkin.energy, lang) if checkin.energy is not None else None),
        ("sleep", checkin.sleep_label.lower() if checkin.sleep_label else None),
        ("tension", number(checkin.tension, lang) if checkin.tension is not None else None),
    )


def band_label(measure: MeasureChange, code: str | None, fallback: str | None, lang: str) -> str:
    """A band as clinicians name it; the questionnaire's own label where we have none."""
    questionnaire = measure.questionnaire.split("|", 1)[0].rsplit("/", 1)[-1]
    return band_name(questionnaire, code, lang) or fallback or ""


# --- for the care professional's page and the document ---------------------------------


def written_day(value: datetime | date, lang: str) -> str:
    """A day as people write it; a moment on its local day."""
    day = value.astimezone().date() if isinstance(value, datetime) else value
    return format_date(day.isoformat(), lang)


def template_helpers(lang: str) -> dict[str, Any]:
    """What the page's and the document's templates use to write the summary."""
    return {
        "day": lambda value: written_day(value, lang),
        "band": lambda measure, point: band_label(measure, point.band, point.label, lang),
        "figure": lambda value: number(value, lang),
        "signed": lambda value: ("+" if value > 0 else "") + number(value, lang),
        "label": lambda answer: answer_label(answer, lang),
        "today": datetime.now().astimezone().date().isoformat(),
    }


def sends_summary(fhir_base: str) -> bool:
    """Whether the practice lets the care professional send the summary to this EHR: a
    SMART EHR with ``summary_to_ehr`` on (a Koppeltaal domain takes no such write: its
    results go as ``koppeltaal_results``)."""
    try:
        ehr = app_context().settings.ehr(fhir_base)
    except FhirBurnoutError:
        return False
    return ehr.summary_to_ehr and ehr.mode == "smart"


def page_summary(
    db: Session,
    row: LaunchSessionRow,
    by: str,
    *,
    overview: PatientOverview,
    token: str | None,
    now: datetime,
) -> SummaryView:
    """The client's "Sinds de vorige sessie" for the page, from where ``choose_since``
    says, in the page's language."""
    lang, forms = language(), current_memo().form
    since = choose_since(db, row, by, overview=overview, token=token, now=now)
    summary = session_summary(db, app_context().definitions, overview, since=since.at,
                              lang=lang, forms=forms, now=now)  # fmt: skip
    return summary_view(db, summary, since, lang, forms)
