"""Homework and questionnaires in the browser, from the questionnaire engine's form model.

GET shows the form with what the client saved before (a draft) or the questionnaire's
initial answers. POST with "save" keeps the answers as a draft; with "submit" the answers
are validated on the server (enableWhen again, types, ranges, required) and, when they are
complete, the QuestionnaireResponse, its scores and the completed Task are stored and queued
for the EHR in one transaction. Whatever the client typed is saved as a draft first, so an
error, an expired session or a lost connection loses nothing. A second submit of the same
form finds the Task completed and stores nothing new. "Add another" and "remove" on the
entries of a repeating group post the whole form too (see ``_form_fields``), so they save
the draft as well.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, current_app, redirect, request, url_for
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from fhir_burnout.questionnaire import (
    FormModel,
    Signal,
    initial_answers,
    safety_signals,
    score,
)
from fhir_burnout.web._csrf import csrf_ok
from fhir_burnout.web._form_fields import (
    change_entries,
    checked_response,
    compact,
    page_fields,
    parse_answers,
)
from fhir_burnout.web._i18n import translate
from fhir_burnout.web._launch import SessionExpired
from fhir_burnout.web._memo import current_memo
from fhir_burnout.web._render import language, message_page, render
from fhir_burnout.workflow import (
    TaskChangedError,
    TaskRow,
    alert_care_professional,
    expect,
    load_draft,
    lock_task,
    previous_scores,
    save_draft,
    submit_response,
)

bp = Blueprint("questionnaire_pages", __name__)


def _form_for(definition: str, lang: str) -> FormModel:
    return current_memo().form(definition, lang)


def _page(
    form: FormModel,
    key: str,
    answers: dict[str, Any],
    issues: dict[str, str],
    focus: str | None = None,
) -> Any:
    fields, unplaced = page_fields(form, answers, issues, focus)
    return render(
        "questionnaire.html",
        form=form,
        key=key,
        fields=fields,
        unplaced=unplaced,
        has_issues=bool(issues),
        status=400 if issues else 200,
    )


@bp.route("/task/<key>/form", methods=["GET", "POST"])
def questionnaire_page(key: str) -> Any:
    """Show, save or submit the questionnaire of a homework or measure Task.

    Both read first, outside any transaction: whose Task it is, whether it is open, the
    draft. A POST then checks the answers and only writes what it keeps, in a short
    transaction of its own (on SQLite the one write lock is not held while forty answers
    are checked; on PostgreSQL the Task's row lock neither)."""
    from fhir_burnout.web._client_pages import _own_task  # noqa: PLC0415 -- one lookup

    state = current_app.extensions["fhir_burnout"]
    if request.method == "POST" and not csrf_ok():
        return message_page("error_form_expired", 400)
    try:
        with Session(state["reader"]) as db:
            found = _own_task(db, key)
            if found is None or found[0].kind not in ("homework", "measure"):
                return message_page("error_not_found", 404)
            task, who = found
            form = _form_for(task.definition, language())
            if not _open(task):
                return _not_open(state["engine"], form, task)
            if request.method == "GET":
                draft = load_draft(db, key)
                return _page(form, key, initial_answers(form) if draft is None else draft, {})
        return _post(state["engine"], form, task, who)
    except SessionExpired:
        kept = request.method == "POST" and _keep_draft_after_session_ended(key)
        return message_page("error_expired_saved" if kept else "error_expired", 401)


def _open(task: TaskRow) -> bool:
    """Whether the client may fill in the Task now (open, and its day has come)."""
    not_yet = task.ready_from is not None and task.ready_from > datetime.now(UTC).date()
    return task.status in ("ready", "in-progress") and not not_yet


def _closed(task: TaskRow) -> Any:
    # Sent already (a second submit stores nothing), or not open (yet).
    if task.status == "completed":
        return redirect(url_for("launch.home"), code=303)
    return message_page("error_not_now", 409)


def _not_open(engine: Engine, form: FormModel, task: TaskRow) -> Any:
    """The Task is not open now. When the client sent answers to one not sent yet (the care
    professional paused the programme, say), they are kept as its draft, for when it opens
    again, and the page says so."""
    if request.method != "POST" or task.status == "completed":
        return _closed(task)
    answers = compact(parse_answers(form, request.form.to_dict(flat=False)))
    state = _save(engine, task, answers)
    if state == "sent":
        return _not_kept(state)
    return _still_safe(engine, form, task, answers) or message_page("error_not_now_saved", 409)


def _still_safe(engine: Engine, form: FormModel, task: TaskRow, answers: dict[str, Any]) -> Any:
    """Answers that could not be sent but give a safety signal are not left lying: the care
    professional is alerted and the client sees crisis help; None when there is no signal."""
    who = f"Patient/{task.enrolment.patient}"
    response, _issues = checked_response(
        form, answers, who=who, now=datetime.now(UTC), lang=language()
    )
    signals = [s for s in _signals(form, response) if s.priority == "urgent"]
    if not signals:  # what _safety_signal says, with the signals themselves
        return None
    with Session(engine) as db, db.begin():
        alert_care_professional(
            db, task.key, who=who, signals=signals, safety_owner=_safety_owner(task)
        )
    return _safety_page(task, signals)


def _keep_draft_after_session_ended(key: str) -> bool:
    """The session ended while the client was filling in the form: keep what they sent as
    the draft of their own Task (the session still says whose), so signing in again finds
    it. Nothing is sent to the EHR and nothing is completed."""
    from fhir_burnout.web._client_pages import _own_task  # noqa: PLC0415 -- one lookup

    with Session(current_app.extensions["fhir_burnout"]["engine"]) as db, db.begin():
        found = _own_task(db, key, allow_ended=True)
        if found is None or found[0].kind not in ("homework", "measure"):
            return False
        if found[0].status not in ("ready", "in-progress"):
            return False
        form = _form_for(found[0].definition, language())
        save_draft(db, key, compact(parse_answers(form, request.form.to_dict(flat=False))))
    return True


def _post(engine: Engine, form: FormModel, task: TaskRow, who: str) -> Any:
    key = task.key
    shown = parse_answers(form, request.form.to_dict(flat=False))
    answers = compact(shown)
    action = request.form.get("action", "")
    if action == "submit":
        now = datetime.now(UTC)
        response, issues = checked_response(form, answers, who=who, now=now, lang=language())
        if not issues:
            return _submit(engine, form, task, who, response, answers=answers, now=now)
        closed = _not_kept(_save(engine, task, answers))
        return _page(form, key, answers, issues) if closed is None else closed
    if (closed := _not_kept(_save(engine, task, answers))) is not None:
        return closed
    if action.startswith(("add:", "remove:")):
        focus = change_entries(form, shown, action)
        return _page(form, key, shown, {}, focus)
    if action == "stay":  # Enter in a text field: keep the answers, stay on the page
        return redirect(url_for(".questionnaire_page", key=key), code=303)
    return redirect(url_for("launch.home"), code=303)


def _save(engine: Engine, task: TaskRow, answers: dict[str, Any]) -> str:
    """Keep the answers as the Task's draft, so nothing typed is lost, and say how the Task
    is now: "open"; "closed" (paused, say: the draft waits for it to open again); or "sent"
    (from another tab meanwhile: nothing is kept, there is nothing left to send)."""
    with Session(engine) as db, db.begin():
        locked = lock_task(db, task.key)
        if locked is None or locked.status == "completed":
            return "sent"
        save_draft(db, task.key, answers)
        return "open" if _open(locked) else "closed"


def _not_kept(state: str) -> Any:
    """The page for a Task ``_save`` found closed or sent; None when it is open."""
    if state == "sent":
        return redirect(url_for("launch.home"), code=303)
    return message_page("error_not_now_saved", 409) if state == "closed" else None


def _submit(
    engine: Engine,
    form: FormModel,
    task: TaskRow,
    who: str,
    response: dict[str, Any],
    *,
    answers: dict[str, Any],
    now: datetime,
) -> Any:
    """Keep the response with its scores and complete the Task (the draft goes: it is sent),
    in one transaction: if anything fails, nothing of it is kept. Scored and checked for a
    safety signal before it starts. The Task completes only if it is as the page read it;
    when another tab sent it meanwhile, this one stores nothing."""
    scores = [s.stored() for s in score(form, response, current=True) if s.value is not None]
    with Session(current_app.extensions["fhir_burnout"]["reader"]) as db:
        before = previous_scores(db, task, str(form.url or task.definition))
    signals = _signals(form, response, {s["linkId"]: s["value"] for s in scores}, before)
    safety = any(s.priority == "urgent" for s in signals)
    definitions = current_app.extensions["fhir_burnout"]["definitions"]
    try:
        with Session(engine) as db, db.begin():
            expect(db, task)
            submit_response(
                db, definitions, task.key, response, who=who, scores=scores,
                signals=signals, safety_owner=_safety_owner(task), now=now,
            )  # fmt: skip
    except TaskChangedError:
        # Sent from another tab (nothing more to keep), or closed meanwhile: then the
        # answers stay as the draft.
        state = _save(engine, task, answers)
        if state == "open":  # changed, yet open: the form again, with the answers
            return redirect(url_for(".questionnaire_page", key=task.key), code=303)
        if state == "closed" and safety:  # kept, not sent: the alert goes anyway
            urgent = [s for s in signals if s.priority == "urgent"]
            with Session(engine) as db, db.begin():
                alert_care_professional(
                    db, task.key, who=who, signals=urgent, safety_owner=_safety_owner(task)
                )
            return _safety_page(task, urgent)
        return _not_kept(state)
    if signals:
        return _safety_page(task, signals)
    return redirect(url_for("launch.home"), code=303)


def _signals(
    form: FormModel,
    response: dict[str, Any],
    scores: dict[str, float] | None = None,
    previous: dict[str, float] | None = None,
) -> list[Signal]:
    """The programme's safety rules (content/safety-rules.yaml) on this response: the one
    engine every page asks. Without ``scores`` they are calculated from the response."""
    if scores is None:
        found = score(form, response, current=True)
        scores = {s.link_id: float(s.value) for s in found if s.value is not None}
    rules = current_app.extensions["fhir_burnout"]["safety_rules"]
    return safety_signals(rules, form.questionnaire, response, scores, previous)


def _safety_signal(form: FormModel, response: dict[str, Any]) -> bool:
    """Whether the answers give an urgent safety signal (the safety item: crisis help now),
    by the safety rules' engine: the one question every page that shows crisis help for
    answers (drafts, failed submits, outages) asks."""
    return any(s.priority == "urgent" for s in _signals(form, response))


def _safety_owner(task: TaskRow) -> str | None:
    """The practice's owner of safety signals at the client's EHR (config safety_owner)."""
    settings = current_app.extensions["fhir_burnout"]["settings"]
    owner: str | None = settings.safety_owner(task.enrolment.fhir_base)
    return owner


def _safety_page(task: TaskRow, signals: list[Signal]) -> Any:
    """What the client reads after answers that gave a signal: crisis help first, then who
    reads it and when, as the practice promised; gentle for routine signals only."""
    urgent = any(s.priority == "urgent" for s in signals) or not signals
    # A waiting-list client has no care professional of their own yet: the practice reads it.
    enrolment = task.enrolment
    own = (enrolment.author or "").startswith("Practitioner") and enrolment.track != "waiting-list"
    return render("safety.html", urgent=urgent, own_practitioner=own)


@bp.app_context_processor
def _safety_texts() -> dict[str, Any]:
    """``safety_promise(urgent, own_practitioner)`` for the templates: who reads a signal
    and when, from the practice's configured promise, in the person's language."""

    def safety_promise(urgent: bool = True, own_practitioner: bool = False) -> str:
        settings = current_app.extensions["fhir_burnout"]["settings"]
        lang = language()
        practice = settings.practice_name or translate("safety_the_practice", lang)
        who = translate("safety_who_practitioner", lang) if own_practitioner else practice
        key = "safety_practitioner" if urgent else "safety_promise_routine"
        promise = settings.safety_promise.text(lang) if settings.safety_promise else ""
        return translate(key, lang, who=who, promise=promise)

    return {"safety_promise": safety_promise}
