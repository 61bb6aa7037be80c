""" "Sinds de vorige sessie": what a client did and answered since a moment the care
professional picks, on one screen before a session (issue 21, point 1).

What the care professional needs in ten minutes, and in this order: open safety signals
(whatever their date: open is open), then the measures with their meaning (each score's
first and latest value with their bands, the reliable change, and recovery as NHS Talking
Therapies defines it: ``questionnaire.clinical_change``), the weekly check-in's trend
(energy, sleep, tension), the look-backs after exercises (tension before -> after), the
modules finished, and the homework with the client's own words. Everything but the signals
and the trend is limited to the period; the measures' change runs from the client's first
score (the start of their programme, where recovery is measured from) to the latest, and
says whether a new score came in during the period.

Read-only and free of Flask: built from a :class:`PatientOverview` (which has read the
enrolments, signals, modules and scores) and one query for the period's responses; the web
layer draws the charts and writes the dates.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fhir_burnout.questionnaire import (
    ClinicalChange,
    FormModel,
    answer_values,
    clinical_change,
    plain_number,
)
from fhir_burnout.workflow._definitions import Definitions
from fhir_burnout.workflow._overview import (
    CareTask,
    ModuleDone,
    PatientOverview,
    ScorePoint,
    ScoreSeries,
)
from fhir_burnout.workflow._readable import ResponseOverview, questionnaire_id, readable
from fhir_burnout.workflow._tables import ResponseRow

#: The form model of a Questionnaire (canonical, language); the web layer passes its memo.
Forms = Callable[[str, str], FormModel]

#: Questionnaires shown as measures (their scores), not as homework.
SCORED = frozenset({"phq-9", "gad-7", "who-5", "cbi"})
CHECKIN, LOOK_BACK = "weekly-checkin", "exercise-reflection"
#: The order of the measures on the page: mood, anxiety, well-being, burn-out, the rest.
MEASURE_ORDER = ("phq-9", "gad-7", "who-5", "cbi")


def _aware(value: datetime) -> datetime:
    # SQLite hands timezone-aware columns back naive; they were written in UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class MeasureChange:
    """One score: every value so far, and the change from the first to the latest."""

    questionnaire: str  # the Questionnaire's canonical
    link_id: str
    title: str  # "Stemming (PHQ-9)", with the subscale where there are several
    points: tuple[ScorePoint, ...]  # oldest first; at least one
    since: datetime
    #: reliable change and recovery from the first to the latest score; None with one score,
    #: or for a score without published figures (the CBI)
    change: ClinicalChange | None

    @property
    def first(self) -> ScorePoint:
        """The client's first score: where their change and recovery are measured from."""
        return self.points[0]

    @property
    def last(self) -> ScorePoint:
        """The latest score."""
        return self.points[-1]

    @property
    def new(self) -> tuple[ScorePoint, ...]:
        """The scores that came in during the period."""
        return tuple(p for p in self.points if p.authored >= self.since)


@dataclass(frozen=True)
class CheckIn:
    """One weekly check-in: energy and tension (0-10), sleep (0: very poor .. 3: good, with
    the answer's label) and what went well, in the client's words."""

    authored: datetime
    energy: float | None
    tension: float | None
    sleep: int | None
    sleep_label: str | None
    went_well: str | None


@dataclass(frozen=True)
class LookBack:
    """The look-back after an exercise: tension before and after, and what the client
    noticed, in their own words. ``exercise`` is the exercise's id; ``task_key`` the module's
    Task (the web layer names the exercise from the module's text)."""

    authored: datetime
    task_key: str | None
    exercise: str
    before: float
    after: float
    noticed: str | None


@dataclass(frozen=True)
class SessionSummary:
    """What happened between ``since`` and ``until`` (now), for one client."""

    since: datetime
    until: datetime
    safety_alerts: tuple[CareTask, ...]  # every open one, urgent first
    unlock_requests: tuple[CareTask, ...]
    modules_done: tuple[ModuleDone, ...]  # finished in the period, oldest first
    homework: tuple[ResponseOverview, ...]  # sent in the period, oldest first
    measures: tuple[MeasureChange, ...]
    checkins: tuple[CheckIn, ...]  # every one, oldest first: the trend
    sleep_names: tuple[str, ...]  # the sleep answers, very poor first
    look_backs: tuple[LookBack, ...]  # in the period, oldest first

    @property
    def checkins_since(self) -> tuple[CheckIn, ...]:
        """The check-ins sent in the period."""
        return tuple(c for c in self.checkins if c.authored >= self.since)

    @property
    def checkin_before(self) -> CheckIn | None:
        """The latest check-in before the period: what the period's are compared with."""
        before = [c for c in self.checkins if c.authored < self.since]
        return before[-1] if before else None

    @property
    def changes(self) -> tuple[MeasureChange, ...]:
        """The measures with two scores or more: those with a change to tell."""
        return tuple(m for m in self.measures if len(m.points) > 1)

    @property
    def single(self) -> tuple[MeasureChange, ...]:
        """The measures with one score so far."""
        return tuple(m for m in self.measures if len(m.points) == 1)

    @property
    def new_measures(self) -> tuple[MeasureChange, ...]:
        """The measures with a score in the period."""
        return tuple(m for m in self.measures if m.new)

    @property
    def quiet(self) -> bool:
        """Nothing done or answered in the period."""
        return not (
            self.modules_done or self.homework or self.look_backs or self.checkins_since
            or self.new_measures
        )  # fmt: skip


def session_summary(
    db: Session,
    definitions: Definitions,
    overview: PatientOverview,
    *,
    since: datetime,
    lang: str,
    forms: Forms,
    now: datetime | None = None,
) -> SessionSummary:
    """The client's "since the last session" from ``since`` until ``now``."""
    until = now or datetime.now(UTC)
    keys = [e.key for e in overview.enrolments]
    rows = list(
        db.scalars(
            select(ResponseRow)
            .where(ResponseRow.enrolment_key.in_(keys))
            .order_by(ResponseRow.authored, ResponseRow.key)
        )
    )
    known = definitions.by_canonical
    in_period = [r for r in rows if since <= _aware(r.authored) <= until]
    homework = tuple(
        readable(forms(r.questionnaire, lang) if r.questionnaire in known else None, r,
                 _aware(r.authored), lang)
        for r in in_period
        if questionnaire_id(r.questionnaire) not in SCORED | {CHECKIN, LOOK_BACK}
    )  # fmt: skip
    checkins, sleep_names = _checkins(
        [r for r in rows if questionnaire_id(r.questionnaire) == CHECKIN and r.questionnaire
         in known], forms, lang,
    )  # fmt: skip
    done = sorted(
        (m for e in overview.enrolments for m in e.modules_done if since <= m.completed_at),
        key=lambda m: m.completed_at,
    )
    return SessionSummary(
        since=since,
        until=until,
        safety_alerts=overview.safety_alerts,
        unlock_requests=overview.unlock_requests,
        modules_done=tuple(done),
        homework=homework,
        measures=tuple(_measures(overview.scores, forms, lang, since)),
        checkins=checkins,
        sleep_names=sleep_names,
        look_backs=tuple(_look_backs(r for r in in_period if _is(r, LOOK_BACK))),
    )


def _is(row: ResponseRow, wanted: str) -> bool:
    return questionnaire_id(row.questionnaire) == wanted


def _short(text: str) -> str:
    """An item's name without the range and notes after it: "Totaalscore (0-27)" ->
    "Totaalscore"."""
    return text.split(" (", 1)[0].split(". ", 1)[0].strip()


def _measures(
    series: tuple[ScoreSeries, ...], forms: Forms, lang: str, since: datetime
) -> Iterator[MeasureChange]:
    """Each score as a measure; where a questionnaire has banded scores only those (the
    WHO-5's 0-100, not also its raw 0-25), as the client's progress page does."""
    by_questionnaire: dict[str, list[ScoreSeries]] = defaultdict(list)
    for s in series:
        by_questionnaire[s.questionnaire].append(s)
    order = {q: i for i, q in enumerate(MEASURE_ORDER)}

    def first_the_known(canonical: str) -> tuple[int, str]:
        qid = questionnaire_id(canonical)
        return order.get(qid, len(order)), qid

    for canonical in sorted(by_questionnaire, key=first_the_known):
        found = by_questionnaire[canonical]
        banded = [s for s in found if any(p.band for p in s.points)] or found
        form = forms(canonical, lang)
        for s in banded:
            item = form.index.get(s.link_id)
            title = form.title
            if len(banded) > 1 and item is not None and item.text:
                title = f"{form.title}: {_short(item.text)}"
            first, last = s.points[0].value, s.points[-1].value
            change = (
                clinical_change(canonical, s.link_id, first, last) if len(s.points) > 1 else None
            )
            yield MeasureChange(canonical, s.link_id, title, s.points, since, change)


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _checkins(
    rows: list[ResponseRow], forms: Forms, lang: str
) -> tuple[tuple[CheckIn, ...], tuple[str, ...]]:
    """Every check-in, and the sleep answers' labels from very poor to good."""
    if not rows:
        return (), ()
    sleep = forms(rows[-1].questionnaire, lang).index["checkin-sleep"]
    # The answers run from good to very poor; the trend's axis from low (worst) to high.
    names = tuple(o.label for o in reversed(sleep.options))
    rank = {o.value.get("code"): len(names) - 1 - i for i, o in enumerate(sleep.options)}
    found = []
    for row in rows:
        answers = answer_values(json.loads(row.resource).get("item", []) or [])
        code = (answers.get("checkin-sleep") or {}).get("code")
        found.append(
            CheckIn(
                _aware(row.authored),
                plain_number(answers.get("checkin-energy")),
                plain_number(answers.get("checkin-tension")),
                rank.get(code),
                names[rank[code]] if code in rank else None,
                _text(answers.get("checkin-went-well")),
            )
        )
    return tuple(found), names


def _look_backs(rows: Iterator[ResponseRow]) -> Iterator[LookBack]:
    for row in rows:
        answers = answer_values(json.loads(row.resource).get("item", []) or [])
        before = plain_number(answers.get("reflection-tension-before"))
        after = plain_number(answers.get("reflection-tension-after"))
        if before is None or after is None:
            continue
        yield LookBack(
            _aware(row.authored), row.task_key, str(answers.get("reflection-exercise") or ""),
            before, after, _text(answers.get("reflection-noticed")),
        )  # fmt: skip
