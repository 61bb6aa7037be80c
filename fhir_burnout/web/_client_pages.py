"""The client's pages: a module to read, its exercises (with a short look back afterwards),
and marking it done.

Every page checks that the Task belongs to the signed-in patient's programme on this EHR;
anyone else gets "not found" (never "forbidden", which would say it exists). Changes go
through ``workflow`` and so through the outbox: the page never waits on the EHR.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, redirect, request, session, url_for
from sqlalchemy import Connection, select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from fhir_burnout.questionnaire import FormModel
from fhir_burnout.web._confirmations import confirm
from fhir_burnout.web._context import app_context
from fhir_burnout.web._csrf import csrf_token
from fhir_burnout.web._form_fields import (
    checked_response,
    compact,
    error_links,
    page_fields,
    parse_answers,
)
from fhir_burnout.web._gate import ClientRecords, OwnTask, SeenTask, TaskSeen, client_of_launch
from fhir_burnout.web._guided import guide, recording
from fhir_burnout.web._i18n import LANGUAGES, N_, translate, translate_n
from fhir_burnout.web._launch import acts_on_client
from fhir_burnout.web._memo import ModuleText, current_memo
from fhir_burnout.web._module_screens import has_links, resolve_links
from fhir_burnout.web._render import language, message_page, render
from fhir_burnout.web._waiting_help import waiting_help
from fhir_burnout.workflow import (
    TaskRow,
    TaskTransitionError,
    add_response,
    change_task,
    remember_place,
)

bp = Blueprint("client", __name__)
#: A path on this site: a slash not followed by another slash or a backslash, and no
#: whitespace, control character or backslash anywhere.
_OWN_PATH = re.compile(r"/(?![/\\])[^\s\x00-\x1f\x7f\\]*")
REFLECTION = "exercise-reflection"  # the Questionnaire after each exercise


def subject_of(task: TaskRow | TaskSeen) -> str:
    """The client a Task is about (the response's subject and source)."""
    return f"Patient/{task.enrolment.patient}"


def _own_module(records: ClientRecords, db: Session, key: str) -> OwnTask | None:
    return records.task(db, key, kinds=("module",))


def _module_seen(records: ClientRecords, db: Connection, key: str) -> SeenTask | None:
    return records.read(db, key, kinds=("module",))


def _move(db: Session, task: TaskRow, status: str, who: str) -> None:
    definitions = app_context().definitions
    change_task(db, definitions, task.key, status, actor="client", who=who)


def minutes_of(activity: Mapping[str, Any]) -> int | None:
    """The module's estimated duration in minutes (its ActivityDefinition's extension)."""
    for ext in activity.get("extension", []):
        if str(ext.get("url", "")).endswith("/estimated-duration"):
            return int(ext["valueDuration"]["value"])
    return None


#: Module statuses whose page a client may be sent to: open, busy or done. While the
#: programme is paused (on-hold) the status it held before says the same.
_OPEN = ("ready", "in-progress", "completed")


def _module_pages(db: Connection, task: TaskSeen) -> dict[str, str]:
    """The pages of the open modules of ``task``'s enrolment (the client's track), by the
    canonical URL of their ActivityDefinition: where a link to another module may go."""
    by_canonical = app_context().definitions.by_canonical
    rows = db.execute(
        select(TaskRow.key, TaskRow.definition, TaskRow.status, TaskRow.held_from).where(
            TaskRow.enrolment_key == task.enrolment_key, TaskRow.kind == "module"
        )
    )
    return {
        str(by_canonical[definition]["url"]): url_for(".task_page", key=key)
        for key, definition, status, held_from in rows
        if definition in by_canonical
        and (status in _OPEN or (status == "on-hold" and held_from in _OPEN))
    }


def _step(asked: str | None, place: int | None, steps: int) -> int:
    """The screen to show: the one asked for (Verder, Terug), else where the client was."""
    try:
        wanted = int(asked) if asked is not None else (place or 1)
    except ValueError:
        wanted = place or 1
    return min(max(wanted, 1), steps)


@dataclass(frozen=True)
class _Reading:
    """What a module page shows and records, read in one statement (with the session)."""

    task: TaskSeen
    who: str
    text: ModuleText
    step: int
    body: str  # the screen's HTML, its links to other modules resolved for this client


def _reading(records: ClientRecords, key: str) -> _Reading | None:
    """Module ``key`` of the launch's client at the screen to show, or None."""
    with app_context().reader.connect() as db:
        found = _module_seen(records, db, key)
        if found is None:
            return None
        task, who = found
        text = current_memo().module(task.definition, language())
        step = _step(request.args.get("step"), task.place, len(text.screens))
        screen = text.screens[step - 1]
        # Only a screen that links another module asks which modules the client has open.
        body = resolve_links(screen.html, _module_pages(db, task)) if screen.links else screen.html
    return _Reading(task, who, text, step, body)


def _record_reading(records: ClientRecords, found: _Reading) -> str:
    """Record that the client started the module (the first time) and the screen they are
    on (when they moved: Verder, Terug); the Task's status as it is now."""
    task, status = found.task, found.task.status
    # Only the client starts (and finishes) reading a module: a care professional who
    # opens it from the chart only looks.
    if not found.who.startswith("Patient/"):
        return status
    start = status == "ready"
    moved = "step" in request.args and found.step != (task.place or 1)
    if start or moved:
        with Session(app_context().engine) as db, db.begin():
            if start:
                again = _own_module(records, db, task.key)
                if again is not None and again.task.status == "ready":
                    _move(db, again.task, "in-progress", found.who)
                    status = "in-progress"
            if moved:
                remember_place(db, task.key, found.step)
    return status


@bp.get("/task/<key>")
@client_of_launch
def task_page(records: ClientRecords, key: str) -> str | tuple[str, int] | Response:
    """A module in short screens, at the one asked for (``?step=``, from Verder and Terug)
    or where the client was; opening it records that the client started it."""
    found = _reading(records, key)
    if found is None:
        return message_page("error_not_found", 404)
    status = _record_reading(records, found)
    task, text, step = found.task, found.text, found.step
    # On the waiting list there is no care professional yet: the practice is whom to call.
    waiting = task.enrolment.fhir_base if task.enrolment.track == "waiting-list" else None
    activity = app_context().definitions.by_canonical[task.definition]
    screen, steps, lang = text.screens[step - 1], len(text.screens), language()
    return render(
        "module.html",
        title=text.title,
        minutes=minutes_of(activity),
        exercises=len(exercises_of(activity)),
        here=request.script_root + request.path,  # Verder and Terug add ?step=
        step=step,
        steps=steps,
        step_label=translate("module_step_of", lang, n=str(step), total=str(steps)),
        exercise=screen.exercise,
        # Back where they were: say so, with the way to the start (the client's own place).
        resumed="step" not in request.args and step > 1 and found.who.startswith("Patient/"),
        body=found.body,
        key=key,
        done=status == "completed",
        read_only=_read_only(task),
        reflection_saved=request.args.get("reflection") == "saved",
        csrf_token=csrf_token(),
        waiting_help=waiting_help(waiting, lang) if waiting else None,
    )


def _read_only(task: TaskRow | TaskSeen) -> str | None:
    """Why a module can only be read now: its programme is ``paused`` or ``ended``."""
    status = task.enrolment.status
    if status == "on-hold":
        return "paused"
    return None if status == "active" else "ended"


def exercises_of(activity: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The module's exercises in order: id, title (a CodeableConcept with translations),
    minutes, timed (from the ActivityDefinition)."""
    found = []
    for ext in activity.get("extension", []):
        if str(ext.get("url", "")).endswith("/exercise"):
            parts = {p["url"]: p for p in ext.get("extension", [])}
            found.append(
                {
                    "id": parts["id"]["valueCode"],
                    "title": parts.get("title", {}).get("valueCodeableConcept", {}),
                    "minutes": parts.get("minutes", {}).get("valueInteger"),
                    "timed": parts.get("timed", {}).get("valueBoolean", False),
                }
            )
    return found


def _reflection_form(activity: Mapping[str, Any], lang: str) -> FormModel:
    """The short questionnaire after an exercise, from the same package as the module."""
    base = str(activity["url"]).rsplit("/ActivityDefinition/", 1)[0]
    return current_memo().form(f"{base}/Questionnaire/{REFLECTION}", lang)


@dataclass(frozen=True)
class _Exercise:
    """One exercise of the signed-in client's own module."""

    task: TaskSeen
    who: str  # Patient/..
    activity: Mapping[str, Any]  # the module's ActivityDefinition
    text: ModuleText  # the module in the client's language
    number: int
    facts: dict[str, Any]  # id, minutes, timed
    body: str  # the exercise's HTML, its links to other modules resolved for this client


def _exercise(records: ClientRecords, db: Connection, key: str, number: int) -> _Exercise | None:
    """Exercise ``number`` of the module Task ``key`` if it is the client's own."""
    found = _module_seen(records, db, key)
    if found is None:
        return None
    activity = app_context().definitions.by_canonical[found[0].definition]
    text = current_memo().module(found[0].definition, language())
    exercises = exercises_of(activity)
    if not 1 <= number <= min(len(text.exercises), len(exercises)):
        return None
    body = text.exercises[number - 1]
    if has_links(body):
        body = resolve_links(body, _module_pages(db, found.task))
    return _Exercise(*found, activity, text, number, exercises[number - 1], body)


def _exercise_page(
    found: _Exercise,
    answers: dict[str, Any] | None = None,
    issues: dict[str, str] | None = None,
) -> Any:
    lang = language()
    activity, exercise, key, number = found.activity, found.facts, found.task.key, found.number
    text = found.text
    texts: dict[str, str | list[str]] = {
        name: translate(f"timer_{name}", lang)
        for name in ("pause", "resume", "again", "paused", "started", "done")
    }
    texts.update(
        (name, translate(f"guide_{name}", lang))
        for name in ("breathe_in", "breathe_out", "stopped")
    )
    # "n minutes left" for every n the timer can say, each with its own plural form: the
    # plural rule stays in the catalogue, guided.js only picks the n-th text.
    minutes = (exercise["minutes"] or 0) if exercise["timed"] else 0
    texts["minutes"] = [translate_n("timer_minutes", n, lang) for n in range(minutes + 1)]
    form = _reflection_form(activity, lang)
    fields, unplaced = page_fields(form, answers or {}, issues or {})
    return render(
        "exercise.html",
        title=text.title,
        key=key,
        number=number,
        body=found.body,
        guide=guide(activity, exercise["id"], lang),
        seconds=minutes * 60,
        timer_texts=json.dumps(texts, ensure_ascii=False),
        reflection=form,
        fields=fields,
        unplaced=unplaced,
        error_links=error_links(fields),
        has_issues=bool(issues),
        # After the end the exercise is still theirs to do; nothing more goes to the EHR.
        ended=_read_only(found.task) == "ended",
        form_id=str(uuid.uuid4()) if not issues else request.form.get("form_id", ""),
        status=400 if issues else 200,
    )


@bp.get("/task/<key>/exercise/<int:number>")
@client_of_launch
def exercise_page(records: ClientRecords, key: str, number: int) -> Any:
    """One exercise of a module, step by step; a guided timer when it is a timed one; and
    a few questions to look back on it afterwards."""
    with app_context().reader.connect() as db:
        found = _exercise(records, db, key, number)
    if found is None:
        return message_page("error_not_found", 404)
    return _exercise_page(found)


@bp.get("/task/<key>/exercise/<int:number>/audio")
@client_of_launch
def exercise_audio(records: ClientRecords, key: str, number: int) -> Any:
    """The recorded guidance of an exercise in the page's language, from the package."""
    with app_context().reader.connect() as db:
        found = _exercise(records, db, key, number)
    found_audio = found and recording(found.activity, found.facts["id"], language())
    if not found_audio:
        return message_page("error_not_found", 404)
    media_type, data = found_audio
    answer = Response(data, mimetype=media_type)
    answer.headers["Cache-Control"] = "private, max-age=86400"
    return answer


@bp.post("/task/<key>/exercise/<int:number>/reflection")
@acts_on_client
@client_of_launch
def reflection(records: ClientRecords, key: str, number: int) -> Any:
    """Keep the client's look back on an exercise: a QuestionnaireResponse about the module's
    Task, queued for the EHR. Sending the same form twice keeps it once (its form id)."""
    state = app_context()
    with Session(state.engine) as db, db.begin():
        found = _exercise(records, db.connection(), key, number)
        if found is None:
            return message_page("error_not_found", 404)
        task, who = found.task, found.who
        if _read_only(task) == "ended":
            return message_page("error_programme_ended", 409)
        form = _reflection_form(found.activity, language())
        answers = compact(parse_answers(form, request.form.to_dict(flat=False)))
        back = redirect(url_for(".task_page", key=key, reflection="saved"), code=303)
        if not answers:
            return redirect(url_for(".task_page", key=key), code=303)  # nothing to keep
        answers["reflection-exercise"] = [{"valueString": found.facts["id"]}]
        now = datetime.now(UTC)
        response, issues = checked_response(
            form, answers, who=who, subject=subject_of(task), now=now, lang=language()
        )
        if issues:
            return _exercise_page(found, answers, issues)
        form_id = request.form.get("form_id", "")
        try:
            once = uuid.uuid5(uuid.UUID(form_id), f"{task.key}/{number}")
        except ValueError:
            once = uuid.uuid4()  # no usable form id: keep it, perhaps twice
        add_response(db, task.key, response, who=who, key=str(once), now=now)
    return back


@bp.post("/language")
def choose_language_route() -> str | tuple[str, int] | Response:
    """Switch the pages to Dutch or English (kept for this browser session)."""
    wanted = request.form.get("language", "")
    if wanted in LANGUAGES:
        session["chosen_language"] = wanted
    back = request.form.get("next", "")
    # Only a path of our own: never an address elsewhere (an open redirect). Browsers drop
    # tabs and newlines from a URL and read a backslash as a slash, so "/\t/evil.example"
    # and "/\\evil.example" are "//evil.example" to them: none of those may pass.
    if not _OWN_PATH.fullmatch(back):
        back = url_for("launch.home")
    return redirect(back, code=303)


@bp.post("/task/<key>/done")
@acts_on_client
@client_of_launch
def task_done(records: ClientRecords, key: str) -> str | tuple[str, int] | Response:
    """Mark a module as done; the next one opens by the plan's rules."""
    state = app_context()
    try:
        with Session(state.engine) as db, db.begin():
            found = _own_module(records, db, key)
            if found is None:
                return message_page("error_not_found", 404)
            task, who = found
            if not who.startswith("Patient/"):
                # Whether a client read a module is theirs to say, never someone else's.
                return message_page("error_module_client_only", 403)
            if task.status != "completed":
                _move(db, task, "completed", who)
                remember_place(db, task.key, None)  # read again, it opens at the start
    except TaskTransitionError:
        return message_page("error_not_now", 409)
    confirm(N_("confirm_module_done"))
    return redirect(url_for("launch.home"), code=303)
