"""The client's pages: a module to read, and marking it done.

Every page checks that the Task belongs to the signed-in patient's programme on this EHR;
anyone else gets "not found" (never "forbidden", which would say it exists). Changes go
through ``workflow`` and so through the outbox: the page never waits on the EHR.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from flask import Blueprint, current_app, redirect, request, session, url_for
from markdown_it import MarkdownIt
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from fhir_burnout.web._csrf import csrf_ok, csrf_token
from fhir_burnout.web._i18n import LANGUAGES, translate
from fhir_burnout.web._launch import SessionExpired, current_launch
from fhir_burnout.web._render import language, message_page, render
from fhir_burnout.workflow import TaskRow, TaskTransitionError, change_task

bp = Blueprint("client", __name__)

#: Module texts are ours, but pages render them without raw HTML all the same.
_MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False})


def _own_task(db: Session, key: str) -> tuple[TaskRow, str] | None:
    """The Task if it belongs to the signed-in patient, and who that patient is."""
    found = current_launch()
    if found is None:
        return None
    row, _token = found
    task = db.get(TaskRow, key)
    if task is None or not row.patient:
        return None
    enrolment = task.enrolment
    if enrolment.fhir_base != row.fhir_base.rstrip("/") or enrolment.patient != row.patient:
        return None
    return task, f"Patient/{row.patient}"


def _own_module(db: Session, key: str) -> tuple[TaskRow, str] | None:
    found = _own_task(db, key)
    return found if found is not None and found[0].kind == "module" else None


def _move(db: Session, task: TaskRow, status: str, who: str) -> None:
    definitions = current_app.extensions["fhir_burnout"]["definitions"]
    change_task(db, definitions, task.key, status, actor="client", who=who)


def _module_text(activity: dict[str, Any], lang: str) -> tuple[str, str]:
    """The module's title and Markdown in ``lang`` (Dutch when there is no translation)."""
    documents = {
        str(a.get("document", {}).get("language")): a["document"]
        for a in activity.get("relatedArtifact", [])
        if a.get("document", {}).get("contentType") == "text/markdown"
    }
    document = documents.get(lang) or documents.get("nl") or {}
    markdown = base64.b64decode(str(document.get("data", ""))).decode("utf-8")
    return str(document.get("title", activity.get("title", ""))), markdown


def _minutes(activity: dict[str, Any]) -> int | None:
    for ext in activity.get("extension", []):
        if str(ext.get("url", "")).endswith("/estimated-duration"):
            return int(ext["valueDuration"]["value"])
    return None


@bp.get("/task/<key>")
def task_page(key: str) -> str | tuple[str, int] | Response:
    """A module to read; opening it records that the client started it."""
    state = current_app.extensions["fhir_burnout"]
    try:
        with Session(state["engine"]) as db, db.begin():
            found = _own_module(db, key)
            if found is None:
                return message_page("error_not_found", 404)
            task, who = found
            if task.status == "ready":
                _move(db, task, "in-progress", who)
            activity = dict(state["definitions"].by_canonical[task.definition])
            title, markdown = _module_text(activity, language())
            status = task.status
    except SessionExpired:
        return message_page("error_expired", 401)
    return render(
        "module.html",
        title=title,
        minutes=_minutes(activity),
        exercises=len(_exercises(activity)),
        body=_MARKDOWN.render(markdown),
        key=key,
        done=status == "completed",
        csrf_token=csrf_token(),
    )


def _sections(markdown: str) -> list[str]:
    """The Markdown of each exercise section ("## Oefening: …" / "## Exercise: …")."""
    found, current = [], None
    for line in markdown.splitlines():
        if line.startswith("## "):
            if current is not None:
                found.append("\n".join(current))
            heading = line[3:].lower()
            current = [line] if heading.startswith(("oefening", "exercise")) else None
        elif current is not None:
            current.append(line)
    if current is not None:
        found.append("\n".join(current))
    return found


def _exercises(activity: dict[str, Any]) -> list[dict[str, Any]]:
    """The module's exercises in order: id, minutes, timed (from the ActivityDefinition)."""
    found = []
    for ext in activity.get("extension", []):
        if str(ext.get("url", "")).endswith("/exercise"):
            parts = {p["url"]: p for p in ext.get("extension", [])}
            found.append(
                {
                    "id": parts["id"]["valueCode"],
                    "minutes": parts.get("minutes", {}).get("valueInteger"),
                    "timed": parts.get("timed", {}).get("valueBoolean", False),
                }
            )
    return found


@bp.get("/task/<key>/exercise/<int:number>")
def exercise_page(key: str, number: int) -> Any:
    """One exercise of a module, step by step; a guided timer when it is a timed one."""
    state = current_app.extensions["fhir_burnout"]
    try:
        with Session(state["engine"]) as db:
            found = _own_module(db, key)
            if found is None:
                return message_page("error_not_found", 404)
            activity = dict(state["definitions"].by_canonical[found[0].definition])
    except SessionExpired:
        return message_page("error_expired", 401)
    lang = language()
    title, markdown = _module_text(activity, lang)
    sections, exercises = _sections(markdown), _exercises(activity)
    if not 1 <= number <= min(len(sections), len(exercises)):
        return message_page("error_not_found", 404)
    exercise = exercises[number - 1]
    texts = {
        name: translate(f"timer_{name}", lang)
        for name in ("pause", "resume", "again", "paused", "started", "done")
    }
    texts["minutes"] = translate("timer_minutes", lang, n="{n}")  # filled in by timer.js
    return render(
        "exercise.html",
        title=title,
        key=key,
        body=_MARKDOWN.render(sections[number - 1]),
        seconds=(exercise["minutes"] or 0) * 60 if exercise["timed"] else 0,
        timer_texts=json.dumps(texts, ensure_ascii=False),
    )


@bp.post("/language")
def choose_language_route() -> str | tuple[str, int] | Response:
    """Switch the pages to Dutch or English (kept for this browser session)."""
    if not csrf_ok():
        return message_page("error_form_expired", 400)
    wanted = request.form.get("language", "")
    if wanted in LANGUAGES:
        session["chosen_language"] = wanted
    back = request.form.get("next", "")
    # Only a path of our own: never an address elsewhere (an open redirect).
    if not back.startswith("/") or back.startswith("//"):
        back = url_for("launch.home")
    return redirect(back, code=303)


@bp.post("/task/<key>/done")
def task_done(key: str) -> str | tuple[str, int] | Response:
    """Mark a module as done; the next one opens by the plan's rules."""
    if not csrf_ok():
        return message_page("error_form_expired", 400)
    state = current_app.extensions["fhir_burnout"]
    try:
        with Session(state["engine"]) as db, db.begin():
            found = _own_module(db, key)
            if found is None:
                return message_page("error_not_found", 404)
            task, who = found
            if task.status != "completed":
                _move(db, task, "completed", who)
    except SessionExpired:
        return message_page("error_expired", 401)
    except TaskTransitionError:
        return message_page("error_not_now", 409)
    return redirect(url_for("launch.home"), code=303)
