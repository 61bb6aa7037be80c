""" "Mijn programma" (the map of the client's whole programme, with the exercises to do
again), and the first page's one next step and week.

The map and the week come from ``workflow.client_programme``; here they get their words:
durations, Dutch dates ("maandag 14 december") and why each thing is there. A paused or
ended programme stays readable: modules to reread and exercises to do again, nothing sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from babel.dates import format_date
from flask import Blueprint, url_for
from sqlalchemy.orm import Session

from fhir_burnout.questionnaire import FormItem, localized
from fhir_burnout.web._client_pages import exercises_of, minutes_of
from fhir_burnout.web._context import app_context
from fhir_burnout.web._gate import ClientRecords, client_of_launch
from fhir_burnout.web._i18n import translate
from fhir_burnout.web._memo import current_memo
from fhir_burnout.web._render import language, message_page, render
from fhir_burnout.workflow import (
    ClientProgramme,
    ModuleEntry,
    ProgrammeMap,
    ToDo,
    client_programme,
)

bp = Blueprint("programme", __name__)
#: Rough seconds a person takes per kind of question, for "about n minutes" on a form that
#: does not say: calibrated on the forms whose description names a duration (WHO-5 one
#: minute, the weekly check-in two, the CBI five).
_SECONDS = {"text": 60, "string": 30}
_SECONDS_OTHERWISE = 15


def _form_minutes(definition: str, lang: str) -> int:
    """About how long a questionnaire takes: its questions, not its calculated scores."""

    def seconds(items: tuple[FormItem, ...]) -> int:
        total = 0
        for item in items:
            if item.type == "group":
                total += seconds(item.children)
            elif item.type != "display" and not (item.calculated_expression or item.read_only):
                total += _SECONDS.get(item.type, _SECONDS_OTHERWISE)
        return total

    # Half a minute and more counts as a minute (round() would round 2.5 to 2).
    return max(1, int(seconds(current_memo().form(definition, lang).items) / 60 + 0.5))


def _minutes(todo: ToDo, lang: str) -> int | None:
    if todo.kind == "module":
        return minutes_of(app_context().definitions.by_canonical[todo.definition])
    return _form_minutes(todo.definition, lang)


def _day(value: date, lang: str) -> str:
    """ "maandag 14 december" / "Monday 14 December"."""
    return format_date(value, "EEEE d MMMM", locale=lang)


def _phase_name(number: int, phases: Mapping[int, str], lang: str) -> str:
    """The phase's title inside a sentence ("Dit hoort bij fase 2: Inzicht in patronen")."""
    title = phases.get(number) or translate("programme_phase_n", lang, n=str(number))
    return title[:1].lower() + title[1:]


def _why(todo: ToDo, phases: Mapping[int, str], lang: str) -> str:
    moment = todo.moment
    if moment.kind == "week":
        return translate("why_week", lang, n=str(moment.number))
    if moment.kind in ("phase-start", "phase-end"):
        return translate(f"why_{moment.kind}", lang, n=str(moment.number))
    if moment.kind == "module" and moment.title:
        return translate("why_homework", lang, module=moment.title)
    if moment.kind == "module" and moment.number:
        return translate("why_phase", lang, phase=_phase_name(moment.number, phases, lang))
    return ""


@dataclass(frozen=True)
class Step:
    """A thing to do, in words: what, where it opens, how long, when and why."""

    title: str
    href: str | None  # None: not open yet
    minutes: int | None
    when: str
    why: str
    draft: bool
    kind: str


def _step(todo: ToDo, phases: Mapping[int, str], lang: str, today: date) -> Step:
    if not todo.open or todo.since > today:
        href, when = None, translate("when_from", lang, day=_day(todo.since, lang))
    else:
        module = todo.kind == "module"
        endpoint = "client.task_page" if module else "questionnaire_pages.questionnaire_page"
        href = url_for(endpoint, key=todo.key)
        when = translate("when_since", lang, day=_day(todo.since, lang))
    return Step(
        todo.title, href, _minutes(todo, lang), when, _why(todo, phases, lang), todo.draft,
        todo.kind,
    )  # fmt: skip


def _programme(fhir_base: str, patient: str, lang: str) -> ClientProgramme:
    state = app_context()
    with Session(state.reader) as db:
        return client_programme(
            db, state.definitions, fhir_base=fhir_base, patient=patient, lang=lang
        )


#: How many things the first page lists under "Deze week", after the one next step: enough
#: to see what matters most, too few to be a pile of work for someone who is behind. The
#: rest are one tap away, on "Mijn programma" (``programme_page``), in the same order.
WEEK_SHOWN = 3


def _agenda(found: ProgrammeMap, lang: str, today: date) -> tuple[Step | None, list[Step]]:
    """The one next step and the rest of this week in words, most important first."""
    phases = {p.number: p.title for p in found.phases}
    first = _step(found.next_step, phases, lang, today) if found.next_step else None
    return first, [_step(t, phases, lang, today) for t in found.this_week]


def home_programmes(fhir_base: str, patient: str, lang: str) -> list[dict[str, Any]]:
    """What the first page shows per current programme: where the client is, the one next
    step and the first few of the rest of this week (in words), and how many more."""
    today = datetime.now(UTC).date()
    shown = []
    for found in _programme(fhir_base, patient, lang).maps:
        modules = found.modules
        first, week = _agenda(found, lang, today)
        shown.append(
            {
                "map": found,
                "modules_done": sum(m.state == "done" for m in modules),
                "modules_total": len(modules),
                "next_step": first,
                "this_week": week[:WEEK_SHOWN],
                "more": len(week[WEEK_SHOWN:]),
            }
        )
    return shown


def _library(opened: tuple[ModuleEntry, ...], lang: str) -> list[dict[str, Any]]:
    """Every exercise of every module the client opened: title, minutes, where."""
    definitions = app_context().definitions
    found = []
    for module in opened:
        activity = definitions.by_canonical[module.definition]
        for number, exercise in enumerate(exercises_of(activity), 1):
            found.append(
                {
                    "title": localized(exercise["title"], "text", lang, "nl") or module.title,
                    "module": module.title,
                    "minutes": exercise["minutes"],
                    "key": module.key,
                    "number": number,
                }
            )
    return found


@bp.get("/programme")
@client_of_launch
def programme_page(records: ClientRecords) -> Any:
    """The map of the client's programme, everything waiting for them (the first page lists
    only the first few) and their exercise library; while paused and after the end too
    (then only to reread and to practise)."""
    row = records.client()
    if row is None:
        return message_page("error_signed_out", 401)
    lang = language()
    found = _programme(row.fhir_base, row.patient or "", lang)
    today = datetime.now(UTC).date()
    programmes = []
    for shown in found.maps:
        first, week = _agenda(shown, lang, today)
        programmes.append({"map": shown, "waiting": [first, *week] if first else week})
    return render(
        "programme.html",
        title=translate("programme_title", lang),
        programmes=programmes,
        library=_library(found.opened, lang),
    )
