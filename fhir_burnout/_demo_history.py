"""The demo's seeded clients, each on their way for some weeks: what they did and when.

A newcomer who opens the demo should see what a client sees after weeks in the programme:
charts with a line, a reliable change, diaries with days in them. So each seeded client
gets a history, played through the workflow functions the app itself uses (``enrol``,
``change_task``, ``submit_response``, ``add_response``, ``unlock_phase``, ``add_note``,
``post_message``) with past times: the same rows, the same outbox entries (the sandbox EHR
receives the QuestionnaireResponses, Task updates, Communications and Provenance as a real
history would give them), only dated in the past.

Everything here is fixed data: no randomness, so every demo shows the same history,
counted back from the day it starts. A day is a number of days after the enrolment;
an hour is local time on that day.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fhir_burnout.questionnaire import (
    FormItem,
    FormModel,
    QuestionnaireError,
    build_response,
    load_form,
    score,
    validate,
)
from fhir_burnout.workflow import (
    Definitions,
    EnrolmentRow,
    NotFoundError,
    ResponseRow,
    TaskRow,
    add_note,
    add_response,
    change_task,
    enrol,
    post_message,
    submit_response,
    unlock_phase,
)

#: Who enrols the demo's clients and opens their phases: the sandbox's psychologist.
CARE_PROFESSIONAL = "Practitioner/prac-1"
PRACTICE = "Organization/practice-1"
REFLECTION = "exercise-reflection"  # the look back after an exercise (web/_client_pages.py)


@dataclass(frozen=True)
class Event:
    """One thing that happened, ``day`` days after the enrolment at ``hour`` (local time).

    ``kind``: ``open`` or ``done`` (a module, ``what`` its code), ``answer`` (the ready Task
    of action ``what``, with ``answers``), ``look-back`` (after an exercise of module
    ``what``), ``unlock`` (phase ``what``, by the care professional), ``note`` (the care
    professional's note ``what``), or ``respond`` and ``reply`` (the care professional's
    response to the latest answer of action ``what``, and the client's reply to it: the
    text is ``answers["text"]``)."""

    day: int
    hour: int
    kind: str
    what: str
    answers: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class History:
    """A seeded client: their track, how many days ago they were enrolled, what they did."""

    patient: str
    track: str
    days_ago: int
    events: tuple[Event, ...]


@dataclass(frozen=True)
class Played:
    """What a history left: the enrolment's key, modules done, answers sent, look-backs."""

    enrolment: str
    modules_done: int
    answers: int
    look_backs: int


# Answers, by linkId: a choice as its option's code or position (the scored questionnaires'
# positions are their points: PHQ-9 and GAD-7 0-3; WHO-5 counts down from 5), a number,
# text or yes/no as itself, a date as a day of the history, a date and time as (day, hour,
# minute), several choices as a list, a repeating group as a list of entries.


def _checkin(energy: int, sleep: str, tension: int, went_well: str = "") -> dict[str, Any]:
    answers: dict[str, Any] = {
        "checkin-energy": energy,
        "checkin-sleep": sleep,
        "checkin-tension": tension,
        "checkin-safety": "no",
    }
    if went_well:
        answers["checkin-went-well"] = went_well
    return answers


def _who5(*points: int) -> dict[str, Any]:
    """WHO-5 from its five items' points (0-5); options run from 5 down to 0."""
    return {f"who5-{n}": 5 - p for n, p in enumerate(points, start=1)}


def _scored(prefix: str, *points: int) -> dict[str, Any]:
    return {f"{prefix}-{n}": p for n, p in enumerate(points, start=1)}


def _cbi(*positions: int) -> dict[str, Any]:
    """CBI parts 1 and 2 (13 items, each an option position); no work with clients."""
    return {**_scored("cbi", *positions), "cbi-clients": False}


def _look_back(exercise: str, before: int, after: int, noticed: str, again: str) -> dict[str, Any]:
    return {
        "reflection-exercise": exercise,
        "reflection-tension-before": before,
        "reflection-tension-after": after,
        "reflection-noticed": noticed,
        "reflection-again": again,
    }


def _moment(
    when: tuple[int, int, int], level: int, body: list[str], situation: str, after: int | None
) -> dict[str, Any]:
    """One moment of the tension log; ``after``: the tension after an exercise, if one."""
    entry: dict[str, Any] = {
        "tension-datetime": when,
        "tension-level": level,
        "tension-body": body,
        "tension-situation": situation,
        "tension-exercise": after is not None,
    }
    if after is not None:
        entry["tension-after"] = after
    return entry


def _diary(day: int, parts: list[tuple[str, str, int]], overall: int) -> dict[str, Any]:
    return {
        "energy-date": day,
        "energy-part": [
            {"energy-daypart": part, "energy-activity": what, "energy-level": mark}
            for part, what, mark in parts
        ],
        "energy-overall": overall,
    }


def _open_and_done(code: str, opened: int, done: int | None) -> tuple[Event, ...]:
    events = (Event(opened, 19, "open", code),)
    return events + ((Event(done, 21, "done", code),) if done is not None else ())


_E = Event

#: Daan (pat-04), seven weeks in: phase 1 done, his care professional opened phase 2.
#: Energy rises and tension falls slowly, with a dip in week 3; PHQ-9 and GAD-7 improve
#: reliably from the start to the end of phase 1, WHO-5 rises but not yet reliably.
DAAN = History(
    "pat-04",
    "standard",
    49,
    (
        _E(0, 20, "answer", "phq-9.start", _scored("phq9", 2, 2, 2, 3, 1, 2, 2, 1, 0)),
        _E(0, 20, "answer", "gad-7.start", _scored("gad7", 2, 2, 2, 2, 1, 2, 1)),
        _E(0, 20, "answer", "who-5.start", _who5(1, 2, 1, 1, 1)),
        _E(0, 20, "answer", "cbi.start", _cbi(1, 0, 1, 2, 1, 2, 1, 0, 2, 1, 1, 2, 3)),
        _E(0, 21, "answer", "weekly-checkin.weekly", _checkin(2, "very-poor", 8)),
        *_open_and_done("understanding-burnout", 1, 3),
        _E(4, 19, "open", "body-signals"),
        _E(5, 21, "look-back", "body-signals",
           _look_back("body-scan", 7, 5, "Mijn schouders zakten een beetje.", "yes")),
        _E(7, 20, "answer", "weekly-checkin.weekly",
           _checkin(3, "poor", 7, "Twee keer een kort stukje gewandeld.")),
        _E(10, 20, "answer", "body-signals.tension-log", {"tension-moment": [
            _moment((5, 9, 15), 7, ["neck-shoulders", "jaw"], "Mail van mijn werk gelezen", None),
            _moment((6, 16, 30), 6, ["head"], "Druk in de supermarkt", None),
            _moment((8, 11, 0), 8, ["chest", "stomach"], "Telefoontje van mijn leidinggevende",
                    None),
            _moment((9, 20, 45), 5, ["neck-shoulders"], "Op de bank, toch onrustig", None),
        ]}),
        _E(11, 9, "respond", "body-signals.tension-log", {"text":
           "Goed dat je dit bijhoudt. De mail van je werk en het telefoontje van je "
           "leidinggevende gaven de meeste spanning. Wat merkte je toen het eerst in je lijf?"}),
        _E(11, 21, "done", "body-signals"),
        _E(11, 21, "reply", "body-signals.tension-log", {"text":
           "Mijn kaak. Ik klem mijn tanden op elkaar voordat ik het zelf doorheb."}),
        _E(12, 9, "respond", "body-signals.tension-log", {"text":
           "Mooi gezien. Probeer deze week bij zo'n moment je kaak even los te laten en drie "
           "keer rustig uit te ademen."}),
        _E(12, 19, "open", "tension-relaxation"),
        _E(12, 21, "look-back", "tension-relaxation",
           _look_back("paced-breathing", 8, 5, "Rustiger na een paar minuten.", "yes")),
        _E(14, 20, "answer", "weekly-checkin.weekly", _checkin(2, "poor", 8)),
        _E(15, 21, "look-back", "tension-relaxation",
           _look_back("progressive-muscle-relaxation", 7, 4, "Warme, zware armen.", "maybe")),
        _E(17, 21, "look-back", "tension-relaxation",
           _look_back("paced-breathing", 6, 4, "Het ging al makkelijker.", "yes")),
        _E(18, 20, "answer", "tension-relaxation.tension-log", {"tension-moment": [
            _moment((13, 8, 30), 7, ["chest"], "Slecht geslapen, veel te doen", 5),
            _moment((15, 14, 0), 6, ["neck-shoulders"], "Gesprek met de bedrijfsarts", 4),
            _moment((16, 19, 30), 5, ["jaw"], "Ruzie over de planning thuis", 5),
            _moment((17, 10, 15), 6, ["stomach"], "Nieuws over een reorganisatie", 3),
        ]}),
        _E(18, 21, "done", "tension-relaxation"),
        _E(19, 19, "open", "effort-recovery"),
        _E(19, 21, "answer", "effort-recovery.energy-diary", _diary(19, [
            ("morning", "Werkmail lezen", -4), ("evening", "Wandelen met de hond", 3)], 3)),
        _E(20, 21, "answer", "effort-recovery.energy-diary", _diary(20, [
            ("morning", "Boodschappen", -2), ("afternoon", "Rusten op de bank", 1)], 4)),
        _E(21, 20, "answer", "weekly-checkin.weekly",
           _checkin(4, "fair", 6, "De ademhalingsoefening hielp bij het inslapen.")),
        _E(22, 21, "answer", "effort-recovery.energy-diary", _diary(22, [
            ("morning", "Wandelen met de hond", 4), ("afternoon", "Telefoontje", -1)], 6)),
        _E(23, 21, "answer", "effort-recovery.energy-diary", _diary(23, [
            ("morning", "Verjaardag voorbereiden", -3), ("evening", "Verjaardag", -2)], 2)),
        _E(25, 21, "done", "effort-recovery"),
        _E(26, 19, "open", "rhythm-self-care"),
        _E(27, 21, "look-back", "rhythm-self-care",
           _look_back("mindful-walk", 5, 3, "Vogels gehoord, even niet gepiekerd.", "yes")),
        _E(28, 20, "answer", "weekly-checkin.weekly",
           _checkin(4, "poor", 6, "Een middag in de tuin gewerkt.")),
        _E(30, 21, "look-back", "tension-relaxation",
           _look_back("paced-breathing", 5, 3, "Ik doe het nu elke avond.", "yes")),
        _E(32, 21, "done", "rhythm-self-care"),
        _E(33, 20, "answer", "phq-9.end-recovery", _scored("phq9", 1, 1, 1, 2, 0, 1, 1, 0, 0)),
        _E(33, 20, "answer", "gad-7.end-recovery", _scored("gad7", 1, 2, 1, 1, 1, 1, 0)),
        _E(33, 20, "answer", "who-5.end-recovery", _who5(2, 3, 2, 2, 2)),
        _E(35, 20, "answer", "weekly-checkin.weekly",
           _checkin(5, "fair", 5, "Ik zei nee tegen een extra klus.")),
        _E(36, 11, "unlock", "insight"),
        _E(36, 11, "note", "Fijn dat je fase 1 hebt afgerond. Blijf de ademhalingsoefening "
           "'s avonds doen. In fase 2 kijken we samen naar je patronen."),
        _E(40, 19, "open", "perfectionism"),
        _E(42, 20, "answer", "weekly-checkin.weekly",
           _checkin(6, "fair", 4, "Met een vriend koffie gedronken, zonder moe te worden.")),
    ),
)  # fmt: skip

#: Anna (pat-01), ten days in: the first module done, the second begun.
ANNA = History(
    "pat-01",
    "standard",
    10,
    (
        _E(0, 20, "answer", "phq-9.start", _scored("phq9", 2, 1, 2, 2, 1, 1, 2, 1, 0)),
        _E(0, 20, "answer", "gad-7.start", _scored("gad7", 2, 2, 1, 2, 1, 1, 1)),
        _E(0, 20, "answer", "who-5.start", _who5(2, 1, 2, 1, 2)),
        _E(0, 21, "answer", "weekly-checkin.weekly",
           _checkin(3, "poor", 7, "Ik heb hulp gevraagd.")),
        *_open_and_done("understanding-burnout", 2, 3),
        _E(5, 19, "open", "body-signals"),
        _E(6, 21, "look-back", "body-signals",
           _look_back("body-scan", 7, 6, "Moeilijk om stil te liggen.", "maybe")),
        _E(7, 20, "answer", "weekly-checkin.weekly",
           _checkin(3, "fair", 7, "Elke dag even naar buiten.")),
    ),
)  # fmt: skip

#: Bram (pat-02), two days on the waiting list: the WHO-5 at the start.
BRAM = History(
    "pat-02", "waiting-list", 2, (_E(0, 20, "answer", "who-5.start", _who5(2, 2, 2, 2, 2)),)
)

#: Cato (pat-03), three and a half weeks of after-care: both modules of its first phase
#: done, the next phase open by itself.
CATO = History(
    "pat-03",
    "after-care",
    24,
    (
        _E(0, 20, "answer", "who-5.start", _who5(3, 3, 3, 2, 3)),
        _E(0, 20, "answer", "cbi.start", _cbi(2, 2, 2, 3, 2, 3, 2, 2, 3, 2, 2, 3, 2)),
        _E(0, 21, "answer", "weekly-checkin.weekly",
           _checkin(6, "fair", 4, "Weer een dag op kantoor geweest.")),
        _E(1, 19, "open", "effort-recovery"),
        _E(2, 21, "answer", "effort-recovery.energy-diary", _diary(2, [
            ("morning", "Werkoverleg", -3), ("evening", "Koken met muziek aan", 2)], 5)),
        _E(3, 21, "answer", "effort-recovery.energy-diary", _diary(3, [
            ("morning", "Fietsen naar het werk", 2), ("afternoon", "Lange vergadering", -4)], 4)),
        _E(5, 21, "answer", "effort-recovery.energy-diary", _diary(5, [
            ("afternoon", "Zwemmen", 3), ("evening", "Lezen", 2)], 7)),
        _E(6, 21, "done", "effort-recovery"),
        _E(7, 20, "answer", "weekly-checkin.weekly",
           _checkin(6, "good", 3, "Pauzes genomen op het werk.")),
        _E(8, 19, "open", "rhythm-self-care"),
        _E(10, 21, "look-back", "rhythm-self-care",
           _look_back("mindful-walk", 5, 3, "Mijn hoofd werd stiller.", "yes")),
        _E(13, 21, "done", "rhythm-self-care"),
        _E(14, 20, "answer", "weekly-checkin.weekly", _checkin(5, "fair", 5)),
        _E(21, 20, "answer", "weekly-checkin.weekly",
           _checkin(7, "good", 3, "Een weekend weg zonder mijn werkmail.")),
    ),
)  # fmt: skip

#: The seeded clients, in the order the demo enrols them.
HISTORIES = (ANNA, BRAM, CATO, DAAN)


def _at(start: date, day: int, hour: int, minute: int = 0) -> datetime:
    """Day ``day`` of a history at ``hour``:``minute`` local time, in UTC (as the app keeps
    its times)."""
    local = datetime.combine(start + timedelta(days=day), time(hour, minute)).astimezone()
    return local.astimezone(UTC)


def _value(item: FormItem, given: Any, start: date) -> dict[str, Any]:
    """One answer of ``item`` (see the note on answers above)."""
    if item.options:
        if isinstance(given, int) and not isinstance(given, bool):
            option = item.options[given]
        else:
            option = next(o for o in item.options if o.value.get("code") == given)
        return {"valueCoding": option.value}
    if item.type == "date":
        return {"valueDate": (start + timedelta(days=int(given))).isoformat()}
    if item.type == "dateTime":
        moment = _at(start, *given).astimezone()  # local, as a datetime-local field sends it
        return {"valueDateTime": moment.isoformat(timespec="seconds")}
    key = {"integer": "valueInteger", "boolean": "valueBoolean"}.get(item.type, "valueString")
    return {key: given}


def _answers(form: FormModel, given: Mapping[str, Any], start: date) -> dict[str, Any]:
    """The answers as ``build_response`` takes them: linkId -> answers, a repeating group
    -> a list of entries."""
    found: dict[str, Any] = {}
    for link_id, value in given.items():
        item = form.index[link_id]
        if item.type == "group":
            found[link_id] = [_answers(form, entry, start) for entry in value]
        elif isinstance(value, list) and item.repeats:
            found[link_id] = [_value(item, one, start) for one in value]
        else:
            found[link_id] = [_value(item, value, start)]
    return found


def _response(
    form: FormModel, given: Mapping[str, Any], *, start: date, who: str, now: datetime
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A completed response, checked as the app checks a client's (a history that no longer
    fits its questionnaire fails here, not on a page), and its scores."""
    response = build_response(
        form, _answers(form, given, start), status="completed", subject=who, author=who,
        authored=now.isoformat(timespec="seconds"),
    )  # fmt: skip
    problems = [i for i in validate(form, response) if i.severity == "error"]
    if problems:
        raise QuestionnaireError([(i.link_id, i.message_en) for i in problems])
    scores = [s.stored() for s in score(form, response, current=True) if s.value is not None]
    return response, scores


def _latest_answer(db: Session, task: TaskRow) -> ResponseRow:
    """The latest response to ``task`` (what a ``respond`` or ``reply`` is about)."""
    query = select(ResponseRow).where(ResponseRow.task_key == task.key)
    found = db.scalar(query.order_by(ResponseRow.authored.desc()).limit(1))
    if found is None:
        raise NotFoundError(f"demo history: no answer to {task.action_id} to respond to")
    return found


def _task(enrolment: EnrolmentRow, what: str, *, ready: bool) -> TaskRow:
    """The (first ready, with ``ready``) Task of action ``what``."""
    wanted = ("ready", "in-progress") if ready else None
    for task in sorted(enrolment.tasks, key=lambda t: t.position):
        if task.action_id == what and (wanted is None or task.status in wanted):
            return task
    raise NotFoundError(f"demo history: no {'ready ' if ready else ''}Task {what}")


def _form(definitions: Definitions, canonical: str) -> FormModel:
    return load_form(dict(definitions.by_canonical[canonical]))


def _reflection(definitions: Definitions, module: TaskRow) -> FormModel:
    """The look-back questionnaire from the module's own package."""
    base = str(definitions.by_canonical[module.definition]["url"]).split("/ActivityDefinition/")
    return _form(definitions, f"{base[0]}/Questionnaire/{REFLECTION}")


def play(
    db: Session, definitions: Definitions, history: History, *, fhir_base: str, today: date
) -> Played:
    """Enrol ``history``'s client as many days before ``today`` as it says and play what they
    did, in the caller's transaction, each step at its own time."""
    start = today - timedelta(days=history.days_ago)
    who = f"Patient/{history.patient}"
    enrolment = enrol(
        db, definitions, fhir_base=fhir_base, patient=history.patient, track=history.track,
        author=CARE_PROFESSIONAL, practice=PRACTICE, today=start, now=_at(start, 0, 10),
    )  # fmt: skip
    answers = look_backs = 0
    for event in sorted(history.events, key=lambda e: (e.day, e.hour)):
        now = _at(start, event.day, event.hour)
        if event.kind in ("open", "done"):
            task = _task(enrolment, event.what, ready=True)
            status = "in-progress" if event.kind == "open" else "completed"
            change_task(db, definitions, task.key, status, actor="client", who=who, now=now)
        elif event.kind == "answer":
            task = _task(enrolment, event.what, ready=True)
            form = _form(definitions, task.definition)
            response, scores = _response(form, event.answers or {}, start=start, who=who, now=now)
            submit_response(db, definitions, task.key, response, who=who, scores=scores, now=now)
            answers += 1
        elif event.kind == "look-back":
            task = _task(enrolment, event.what, ready=False)
            form = _reflection(definitions, task)
            response, _ = _response(form, event.answers or {}, start=start, who=who, now=now)
            # A fixed key per step, as the page's form id makes one: played twice, kept once.
            step = f"{enrolment.key}/{event.day}/{event.hour}/{event.what}"
            key = uuid.uuid5(uuid.NAMESPACE_URL, step)
            add_response(db, task.key, response, who=who, key=str(key), now=now)
            look_backs += 1
        elif event.kind == "unlock":
            unlock_phase(db, definitions, enrolment.key, event.what, by=CARE_PROFESSIONAL, now=now)
        elif event.kind == "note":
            add_note(db, enrolment.key, event.what, by=CARE_PROFESSIONAL, now=now)
        elif event.kind in ("respond", "reply"):
            answer = _latest_answer(db, _task(enrolment, event.what, ready=False))
            by = CARE_PROFESSIONAL if event.kind == "respond" else who
            post_message(db, answer, str((event.answers or {})["text"]), by=by, now=now)
        else:
            raise ValueError(f"demo history: no such event kind {event.kind!r}")
    done = sum(t.kind == "module" and t.status == "completed" for t in enrolment.tasks)
    return Played(enrolment.key, done, answers, look_backs)
