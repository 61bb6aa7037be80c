"""What the client filled in, over time, for the progress page: each questionnaire score on
its own range with its bands, the weekly check-in (energy, sleep, tension), the tension log
(each moment, and the tension after an exercise) and the look-back after an exercise
(tension before and after).

All of it is read from the client's own QuestionnaireResponses in our database (the
``response`` table): a score from the questionnaire engine (its calculated item's
minValue/maxValue give the range, its ``score-band`` extensions the bands in the client's
words), the rest from the answers themselves. Free of Flask: rows and forms in, sections
of charts and tables out.
"""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from fhir_burnout.questionnaire import (
    FormItem,
    FormModel,
    answer_values,
    localized,
    plain_number,
    score,
)
from fhir_burnout.web._charts import Band, Chart, Reading, Scale, draw, number
from fhir_burnout.web._i18n import format_date, translate, translate_n
from fhir_burnout.workflow import ResponseRow

#: The form model of a Questionnaire (canonical, language): the app's memo.
Forms = Callable[[str, str], FormModel]
#: An exercise's name from the module it belongs to (Task key, exercise id, language).
ExerciseNames = Callable[[str, str], str]

CHECKIN, TENSION_LOG, LOOK_BACK = "weekly-checkin", "tension-log", "exercise-reflection"
SCORE_BAND = "/StructureDefinition/score-band"
NONE = "\N{EN DASH}"  # a table cell with no answer


@dataclass(frozen=True)
class Measure:
    """One chart: its title, its drawing, and in words (the page's summary, and the
    chart's description) the latest reading with what it means and how it changed."""

    key: str  # unique on the page: ids for the heading and the words
    title: str
    chart: Chart
    latest: str  # "7 van de 27", "Redelijk", "De laatste keer: van 5 naar 3"
    band: str  # the latest reading's band in the questionnaire's words, or ""
    change: str  # since the first time, or around an exercise on average; "" when none


@dataclass(frozen=True)
class Section:
    """A heading, its charts, and one table with the same figures."""

    key: str
    title: str
    measures: tuple[Measure, ...]
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]

    @property
    def shared_bands(self) -> bool:
        """Whether its several charts have the same bands (the CBI's two scores): one key
        to them says it for all."""
        return len(self.measures) > 1 and len({m.chart.stripes for m in self.measures}) == 1


def questionnaire_id(canonical: str) -> str:
    """``.../Questionnaire/<id>|<version>`` to ``<id>``."""
    return canonical.split("|", 1)[0].rstrip("/").rsplit("/", 1)[-1]


def _day(row: ResponseRow) -> date:
    return row.authored.date()


def _scale(item: FormItem, values: Sequence[float]) -> Scale:
    """The item's own range (minValue/maxValue); without one, 0 up to the highest value."""
    low, high = plain_number(item.min_value), plain_number(item.max_value)
    if low is None:
        low = min([0.0, *values])
    if high is None:
        high = max([1.0, *values])
    return Scale(low, high)


def _bands(form: FormModel, item: FormItem) -> tuple[Band, ...]:
    """The score's bands, named as the questionnaire names them for the client."""
    primary = str(form.questionnaire.get("language") or "nl")
    found = []
    for ext in item.raw.get("extension", []) or []:
        if not str(ext.get("url", "")).endswith(SCORE_BAND):
            continue
        parts = {p.get("url"): p for p in ext.get("extension", []) or []}
        label = localized(
            parts.get("label", {}).get("valueCodeableConcept", {}), "text", form.lang, primary
        )
        low = plain_number(parts.get("min", {}).get("valueDecimal"))
        high = plain_number(parts.get("max", {}).get("valueDecimal"))
        if low is not None:
            found.append(Band(low, high, label))
    return tuple(found)


def _short(text: str) -> str:
    """An item's name without the range and notes after it: "Totaalscore (0-27)" ->
    "Totaalscore"; the care professional's explanation stays on their page."""
    return text.split(" (", 1)[0].split(". ", 1)[0].strip()


def _of(value: float, high: float, lang: str) -> str:
    """A reading on its range: "7 van de 27"."""
    return translate("progress_of", lang, value=number(value, lang), high=number(high, lang))


def _change(readings: Sequence[Reading], lang: str, names: Sequence[str] = ()) -> str:
    """How the latest reading stands to the first, in plain words: "8 lager dan de eerste
    keer" (no verdict: whether lower is better, the bands say), the first answer for a
    choice (``names``), or that there was only one, and when."""
    first, last = readings[0], readings[-1]
    if len(readings) == 1:
        return translate("progress_once", lang, date=format_date(first.day.isoformat(), lang))
    if names:
        was = names[int(first.value)]
        return translate("progress_first_was", lang, value=was[:1].lower() + was[1:])
    difference = last.value - first.value
    if difference > 0:
        return translate("progress_higher", lang, n=number(difference, lang))
    if difference < 0:
        return translate("progress_lower", lang, n=number(-difference, lang))
    return translate("progress_same", lang)


def measure(
    key: str, title: str, chart: Chart, readings: Sequence[Reading], *, scale: Scale, lang: str
) -> Measure:
    """A chart of single readings with its words: the latest on its range (or its answer,
    for a choice) and how it changed since the first."""
    last = readings[-1]
    latest = scale.names[int(last.value)] if scale.names else _of(last.value, scale.high, lang)
    return Measure(key, title, chart, latest, "", _change(readings, lang, scale.names))


def score_sections(rows: Sequence[ResponseRow], forms: Forms, lang: str) -> list[Section]:
    """Each questionnaire's scores over time, a section per questionnaire (the CBI's two
    scores under one heading, with one table). Where a questionnaire has banded scores only
    those show (the WHO-5's 0-100, not also its raw 0-25)."""
    found: dict[tuple[str, str], list[tuple[date, float, str | None]]] = defaultdict(list)
    latest_form: dict[tuple[str, str], FormModel] = {}
    for row in rows:
        if not json.loads(row.scores or "[]"):
            continue
        form = forms(row.questionnaire, lang)
        # Kept as built: its calculated answers are current, read rather than computed again.
        for result in score(form, json.loads(row.resource), current=True):
            if result.value is None or result.instance:
                continue
            key = (questionnaire_id(row.questionnaire), result.link_id)
            found[key].append((_day(row), float(result.value), result.label))
            latest_form[key] = form
    shown: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for key in found:
        shown[key[0]].append(key)
    sections = []
    for keys in shown.values():
        banded = [k for k in keys if _bands(latest_form[k], latest_form[k].index[k[1]])]
        chosen = banded or keys
        sections.append(_score_section(chosen, found, latest_form[chosen[-1]]))
    return sections


def _score_section(
    keys: Sequence[tuple[str, str]],
    found: Mapping[tuple[str, str], list[tuple[date, float, str | None]]],
    form: FormModel,
) -> Section:
    lang = form.lang
    measures, table = [], []
    for key in keys:
        item, points = form.index[key[1]], found[key]
        title = _short(item.text) if len(keys) > 1 and item.text else form.title
        scale = _scale(item, [v for _, v, _ in points])
        readings = [Reading(d, v) for d, v, _ in points]
        chart = draw(readings, scale, lang=lang, bands=_bands(form, item))
        words = measure(f"{key[0]}-{key[1]}", title, chart, readings, scale=scale, lang=lang)
        measures.append(dataclasses.replace(words, band=points[-1][2] or ""))
        which = (title,) if len(keys) > 1 else ()
        table += [
            (d, (format_date(d.isoformat(), lang), *which, number(v, lang), band or ""))
            for d, v, band in points
        ]
    which_column = (translate("progress_which", lang),) if len(keys) > 1 else ()
    columns = (
        translate("date", lang),
        *which_column,
        translate("score", lang),
        translate("meaning", lang),
    )
    table.sort(key=lambda row: row[0])  # by date; a day's scores in the form's order
    return Section(
        measures[0].key if len(keys) == 1 else keys[0][0],
        form.title,
        tuple(measures),
        columns,
        tuple(cells for _, cells in table),
    )


def checkin_section(rows: Sequence[ResponseRow], forms: Forms, lang: str) -> Section | None:
    """The weekly check-in: energy and tension (0 to 10) and sleep (its four answers)."""
    rows = [r for r in rows if questionnaire_id(r.questionnaire) == CHECKIN]
    if not rows:
        return None
    form = forms(rows[-1].questionnaire, lang)
    sleep = form.index["checkin-sleep"]
    # The answers run from good to very poor; the chart's axis from low (worst) to high.
    names = tuple(o.label for o in reversed(sleep.options))
    rank = {o.value.get("code"): len(names) - 1 - i for i, o in enumerate(sleep.options)}
    energy: list[Reading] = []
    tension: list[Reading] = []
    slept: list[Reading] = []
    table: list[tuple[str, ...]] = []
    for row in rows:
        answers, day = answer_values(json.loads(row.resource).get("item", []) or []), _day(row)
        cells = [format_date(day.isoformat(), lang)]
        for link, readings in (("checkin-energy", energy), ("checkin-tension", tension)):
            value = plain_number(answers.get(link))
            if value is not None:
                readings.append(Reading(day, value))
            cells.append(number(value, lang) if value is not None else NONE)
        code = (answers.get("checkin-sleep") or {}).get("code")
        if code in rank:
            slept.append(Reading(day, float(rank[code])))
        cells.insert(2, names[rank[code]] if code in rank else NONE)
        table.append(tuple(cells))
    measures = []
    titles = {
        "checkin-energy": translate("progress_energy", lang),
        "checkin-sleep": translate("progress_sleep", lang),
        "checkin-tension": translate("progress_tension", lang),
    }
    for link, readings in (
        ("checkin-energy", energy),
        ("checkin-sleep", slept),
        ("checkin-tension", tension),
    ):
        if not readings:
            continue
        item = form.index[link]
        scale = Scale(0, len(names) - 1, names) if item.options else _scale(item, [])
        chart = draw(readings, scale, lang=lang)
        measures.append(measure(link, titles[link], chart, readings, scale=scale, lang=lang))
    return Section(
        CHECKIN,
        translate("progress_checkin_title", lang),
        tuple(measures),
        (translate("date", lang), *titles.values()),
        tuple(table),
    )


def _pairs_summary(readings: Sequence[Reading], lang: str) -> str:
    """The average before and after, over the readings that have both."""
    pairs = [(r.value, r.after) for r in readings if r.after is not None]
    if not pairs:
        return ""
    before = sum(b for b, _ in pairs) / len(pairs)
    after = sum(a for _, a in pairs) / len(pairs)
    return translate_n(
        "progress_pairs", len(pairs), lang, before=number(before, lang), after=number(after, lang)
    )


def tension_log_section(rows: Sequence[ResponseRow], forms: Forms, lang: str) -> Section | None:
    """Each moment of the tension log: how tense, and after an exercise how tense still."""
    rows = [r for r in rows if questionnaire_id(r.questionnaire) == TENSION_LOG]
    if not rows:
        return None
    form = forms(rows[-1].questionnaire, lang)
    readings, table = [], []
    for row in rows:
        for moment in json.loads(row.resource).get("item", []) or []:
            if moment.get("linkId") != "tension-moment":
                continue
            answers = answer_values(moment.get("item", []) or [])
            level = plain_number(answers.get("tension-level"))
            if level is None:
                continue
            when = answers.get("tension-datetime")
            day = datetime.fromisoformat(when).date() if isinstance(when, str) else _day(row)
            after = (
                plain_number(answers.get("tension-after"))
                if answers.get("tension-exercise")
                else None
            )
            readings.append(Reading(day, level, after))
            table.append(
                (
                    format_date(day.isoformat(), lang),
                    number(level, lang),
                    number(after, lang) if after is not None else NONE,
                    str(answers.get("tension-situation") or ""),
                )
            )
    if not readings:
        return None
    scale = _scale(form.index["tension-level"], [])
    chart = draw(readings, scale, lang=lang, joined=False)
    # A moment of tension is not a week's: how the latest stands to the first says little,
    # what an exercise did says more.
    latest = _of(readings[-1].value, scale.high, lang)
    columns = (
        translate("date", lang),
        translate("progress_tension", lang),
        translate("progress_after_exercise", lang),
        translate("progress_situation", lang),
    )
    return Section(
        TENSION_LOG,
        form.title,
        (Measure(TENSION_LOG, form.title, chart, latest, "", _pairs_summary(readings, lang)),),
        columns,
        tuple(table),
    )


def look_back_section(
    rows: Sequence[ResponseRow], forms: Forms, names: ExerciseNames, lang: str
) -> Section | None:
    """The look-back after each exercise: tension before -> after, with the exercise's name."""
    rows = [r for r in rows if questionnaire_id(r.questionnaire) == LOOK_BACK]
    readings, table = [], []
    for row in rows:
        answers = answer_values(json.loads(row.resource).get("item", []) or [])
        before = plain_number(answers.get("reflection-tension-before"))
        after = plain_number(answers.get("reflection-tension-after"))
        if before is None or after is None:
            continue
        readings.append(Reading(_day(row), before, after))
        exercise = names(row.task_key or "", str(answers.get("reflection-exercise", "")))
        table.append(
            (
                format_date(_day(row).isoformat(), lang),
                exercise,
                number(before, lang),
                number(after, lang),
            )
        )
    if not readings:
        return None
    form = forms(rows[-1].questionnaire, lang)
    scale = _scale(form.index["reflection-tension-before"], [])
    chart = draw(readings, scale, lang=lang, joined=False)
    title = translate("progress_look_back_title", lang)
    columns = (
        translate("date", lang),
        translate("progress_exercise", lang),
        translate("progress_before", lang),
        translate("progress_after", lang),
    )
    last = readings[-1]
    latest = translate(
        "progress_last_pair",
        lang,
        before=number(last.value, lang),
        after=number(last.after if last.after is not None else last.value, lang),
    )
    return Section(
        LOOK_BACK,
        title,
        (Measure(LOOK_BACK, title, chart, latest, "", _pairs_summary(readings, lang)),),
        columns,
        tuple(table),
    )
