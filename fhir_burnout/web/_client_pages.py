"""The client's pages: a module to read, and marking it done.

Every page checks that the Task belongs to the signed-in patient's programme on this EHR;
anyone else gets "not found" (never "forbidden", which would say it exists). Changes go
through ``workflow`` and so through the outbox: the page never waits on the EHR.
"""

from __future__ import annotations

import base64
from typing import Any

from flask import Blueprint, current_app, redirect, request, session, url_for
from markdown_it import MarkdownIt
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from fhir_burnout.web._csrf import csrf_ok, csrf_token
from fhir_burnout.web._i18n import LANGUAGES
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
        body=_MARKDOWN.render(markdown),
        key=key,
        done=status == "completed",
        csrf_token=csrf_token(),
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
