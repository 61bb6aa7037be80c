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

A worrying safety answer (``_safety_signal``, also on answers that are not complete) shows
crisis help at once: on the form with a saved draft, on a send that is not complete yet
(it is not sent, and the page says so), and after a send that raised the signal, on a page
of its own that the send redirects to (post/redirect/get: a reload sends nothing again).

When the database (or anything else) fails during a POST, nothing could be stored: the form
comes back (503) with the answers just posted, a plain "try again", and crisis help when an
answer is worrying. The form names its Questionnaire, so the page can be built from the
in-memory definitions without the database. The browser keeps an unsent copy as well
(``static/unsent.js``), so a reload loses nothing either; the server tells it when the
answers were stored, and the copy goes.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, redirect, request, session, url_for
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException

from fhir_burnout.questionnaire import (
    FormModel,
    Signal,
    initial_answers,
    localized,
    safety_signals,
    score,
)
from fhir_burnout.web._client_pages import subject_of
from fhir_burnout.web._confirmations import confirm
from fhir_burnout.web._context import app_context
from fhir_burnout.web._form_fields import (
    change_entries,
    checked_response,
    compact,
    error_links,
    page_fields,
    parse_answers,
)
from fhir_burnout.web._gate import ClientRecords, client_of_launch
from fhir_burnout.web._i18n import N_, translate
from fhir_burnout.web._launch import SessionExpired, WrongClient, acts_on_client
from fhir_burnout.web._memo import current_memo
from fhir_burnout.web._render import language, message_page, render
from fhir_burnout.web._typed_text import refused_fields
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
#: The Tasks a questionnaire page is for: homework and measures (modules are read).
FORM_KINDS = ("homework", "measure")
log = logging.getLogger(__name__)
#: The session's list of forms whose answers were stored: the page after it tells the
#: browser to drop its unsent copy of them (see static/unsent.js).
STORED_FORMS = "stored_forms"


def _form_for(definition: str, lang: str) -> FormModel:
    return current_memo().form(definition, lang)


def _page(
    form: FormModel,
    key: str,
    answers: dict[str, Any],
    issues: dict[str, str],
    focus: str | None = None,
    *,
    version: str,
    posted: bool = True,
    not_saved: bool = False,
) -> Any:
    """The form with ``answers``. ``version`` names the answers the server holds (the
    browser's unsent copy is put back only on top of the same ones); ``posted``: the page
    shows what was just posted, which is newer than any copy; ``not_saved``: nothing could
    be stored (503)."""
    fields, unplaced = page_fields(form, answers, issues, focus)
    worrying = _worrying(form, answers)
    if not worrying:
        note = None
    elif not_saved:
        note = "safety_not_sent_outage"
    else:
        note = "safety_not_sent_invalid" if issues else "safety_not_sent_saved"
    return render(
        "questionnaire.html",
        form=form,
        key=key,
        fields=fields,
        unplaced=unplaced,
        error_links=error_links(fields),
        description=_description(form),
        has_issues=bool(issues),
        safety_note=note,
        not_saved=not_saved,
        canonical=request.form.get("questionnaire", "") if not_saved else form.canonical,
        answers_version=version,
        posted=posted,
        status=503 if not_saved else 400 if issues else 200,
        # Whose page it is, when the database could not say: the client the form named
        # (checked against the launch again when it is sent again).
        **({"acting_for": request.form.get("patient", "")} if not_saved else {}),
    )


def _description(form: FormModel) -> list[str]:
    """The questionnaire's description in the page's language, as paragraphs: what it is
    about and how long it takes, under its title (issue 20)."""
    primary = str(form.questionnaire.get("language") or "nl")
    text = localized(form.questionnaire, "description", form.lang, primary)
    return [paragraph.strip() for paragraph in text.split("\n\n") if paragraph.strip()]


def _version(draft: dict[str, Any] | None) -> str:
    """A name for the answers the server holds for a Task (its draft), that changes when
    they change: the browser's copy says which answers it was typed on top of."""
    if draft is None:
        return ""
    canonical = json.dumps(draft, sort_keys=True, ensure_ascii=False).encode()
    return hashlib.sha256(canonical).hexdigest()[:16]


def _worrying(form: FormModel, answers: dict[str, Any]) -> bool:
    """Whether these answers, complete or not, give the questionnaire's safety signal."""
    if not answers:
        return False
    response, _issues = checked_response(
        form, answers, who="Patient/-", now=datetime.now(UTC), lang=language()
    )
    return _safety_signal(form, response)


def _stored(key: str) -> None:
    """The answers of Task ``key`` are stored: the next page tells the browser so."""
    path = url_for(".questionnaire_page", key=key)
    stored = [p for p in session.get(STORED_FORMS, []) if p != path][-4:]
    session[STORED_FORMS] = [*stored, path]


@bp.app_context_processor
def _stored_forms() -> dict[str, Any]:
    def stored_forms() -> str:
        """The forms stored since the last page, once (base.html hands them to unsent.js)."""
        return " ".join(str(p) for p in session.pop(STORED_FORMS, []) or [])

    return {"stored_forms": stored_forms}


@bp.route("/task/<key>/form", methods=["GET", "POST"])
@acts_on_client
@client_of_launch
def questionnaire_page(records: ClientRecords, key: str) -> Any:
    """Show, save or submit the questionnaire of a homework or measure Task.

    Both read first, outside any transaction: whose Task it is, whether it is open, the
    draft. A POST then checks the answers and only writes what it keeps, in a short
    transaction of its own (on SQLite the one write lock is not held while forty answers
    are checked; on PostgreSQL the Task's row lock neither). A POST that fails on the way
    (the database is down, say) gives the answers back, see ``_not_stored``."""
    try:
        return _show_or_post(records, key)
    except (HTTPException, WrongClient):
        raise
    except Exception as exc:
        if request.method != "POST":
            raise
        return _not_stored(key, exc)


def _show_or_post(records: ClientRecords, key: str) -> Any:
    state = app_context()
    try:
        with Session(state.reader) as db:
            found = records.task(db, key, kinds=FORM_KINDS)
            if found is None:
                return message_page("error_not_found", 404)
            task, who = found
            form = _form_for(task.definition, language())
            if not _open(task):
                return _not_open(state.engine, form, task)
            if request.method == "GET":
                draft = load_draft(db, key)
                answers = initial_answers(form) if draft is None else draft
                return _page(form, key, answers, {}, version=_version(draft), posted=False)
        return _refused_text(state.engine, form, task) or _post(state.engine, form, task, who)
    except SessionExpired:
        kept = request.method == "POST" and _keep_draft_after_session_ended(records, key)
        # Not both literals in the call: pybabel would extract them as one joined string.
        said = "error_expired_saved" if kept else "error_expired"
        return message_page(said, 401)


def _not_stored(key: str, error: Exception) -> Any:
    """Nothing of this POST could be stored: the form again (503), filled in with what was
    just posted, to the person who posted it (the CSRF token says it is their own page),
    with crisis help when an answer is worrying. The Questionnaire comes from the form's
    hidden field and the in-memory definitions: the database may be what failed."""
    # The type only: a database error's message can hold the statement's parameters.
    log.error("a questionnaire post was not stored: %s", type(error).__name__)
    canonical = request.form.get("questionnaire", "")
    definition = current_memo().definitions.by_canonical.get(canonical)
    if definition is None or definition.get("resourceType") != "Questionnaire":
        raise error  # a form from before this field existed: the error page, with help
    form = _form_for(canonical, language())
    shown = parse_answers(form, request.form.to_dict(flat=False))
    version = request.form.get("answers_version", "")
    return _page(form, key, shown, {}, version=version, not_saved=True)


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
    return _to_safety_page(task.key, signals)


def _keep_draft_after_session_ended(records: ClientRecords, key: str) -> bool:
    """The session ended while the client was filling in the form: keep what they sent as
    the draft of their own Task (the session still says whose), so signing in again finds
    it. Nothing is sent to the EHR and nothing is completed."""
    with Session(app_context().engine) as db, db.begin():
        found = records.task(db, key, kinds=FORM_KINDS, allow_ended=True)
        if found is None:
            return False
        if found[0].status not in ("ready", "in-progress"):
            return False
        form = _form_for(found[0].definition, language())
        save_draft(db, key, compact(parse_answers(form, request.form.to_dict(flat=False))))
    return True


def _refused_text(engine: Engine, form: FormModel, task: TaskRow) -> Any:
    """Answers that held control characters (``web._typed_text``): kept as the draft
    without them, and the form again saying where they were; None when there were none."""
    refused = refused_fields()
    if not refused:
        return None
    shown = parse_answers(form, request.form.to_dict(flat=False))
    answers = compact(shown)
    closed = _not_kept(_save(engine, task, answers))
    said = dict.fromkeys(refused, translate("error_control_characters", language()))
    return closed or _page(form, task.key, shown, said, version=_version(answers))


def _post(engine: Engine, form: FormModel, task: TaskRow, who: str) -> Any:
    key = task.key
    shown = parse_answers(form, request.form.to_dict(flat=False))
    answers = compact(shown)
    action = request.form.get("action", "")
    if action == "submit":
        now = datetime.now(UTC)
        response, issues = checked_response(
            form, answers, who=who, subject=subject_of(task), now=now, lang=language()
        )
        if not issues:
            return _submit(engine, form, task, who, response, answers=answers, now=now)
        closed = _not_kept(_save(engine, task, answers))
        if closed is None:
            closed = _page(form, key, answers, issues, version=_version(answers))
        return closed
    if (closed := _not_kept(_save(engine, task, answers))) is not None:
        return closed
    if action.startswith(("add:", "remove:")):
        focus = change_entries(form, shown, action)
        return _page(form, key, shown, {}, focus, version=_version(answers))
    # "stay" (Enter in a text field) stays on the page; so does a worrying answer, whose
    # form shows crisis help at once and says the answers are not sent yet.
    if not _worrying(form, answers):
        confirm(N_("confirm_saved"))
        if action != "stay":
            return redirect(url_for("launch.home"), code=303)
    return redirect(url_for(".questionnaire_page", key=key), code=303)


def _save(engine: Engine, task: TaskRow, answers: dict[str, Any]) -> str:
    """Keep the answers as the Task's draft, so nothing typed is lost, and say how the Task
    is now: "open"; "closed" (paused, say: the draft waits for it to open again); or "sent"
    (from another tab meanwhile: nothing is kept, there is nothing left to send)."""
    with Session(engine) as db, db.begin():
        locked = lock_task(db, task.key)
        if locked is None or locked.status == "completed":
            state = "sent"
        else:
            save_draft(db, task.key, answers)
            state = "open" if _open(locked) else "closed"
    _stored(task.key)  # kept, or nothing left to send: the browser's copy may go
    return state


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
    with Session(app_context().reader) as db:
        before = previous_scores(db, task, str(form.url or task.definition))
    signals = _signals(form, response, {s["linkId"]: s["value"] for s in scores}, before)
    safety = any(s.priority == "urgent" for s in signals)
    definitions = app_context().definitions
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
            return _to_safety_page(task.key, urgent)
        return _not_kept(state)
    _stored(task.key)
    if signals:
        return _to_safety_page(task.key, signals)
    confirm(N_("confirm_sent_practitioner") if _own_practitioner(task) else N_("confirm_sent"))
    return redirect(url_for("launch.home"), code=303)


def _to_safety_page(key: str, signals: list[Signal]) -> Any:
    """Post/redirect/get: the crisis help after a send is a page of its own, so a reload
    (or the back button) shows it again and sends nothing. ``level`` only chooses the
    page's words (routine signals get a calmer page); crisis help is on both."""
    urgent = any(s.priority == "urgent" for s in signals) or not signals
    level = "urgent" if urgent else "routine"
    return redirect(url_for(".safety_page", key=key, level=level), code=303)


@bp.get("/task/<key>/safety")
@client_of_launch
def safety_page(records: ClientRecords, key: str) -> Any:
    """Crisis help after answers that raised a safety signal, for the client's own Task."""
    with Session(app_context().reader) as db:
        found = records.task(db, key, kinds=FORM_KINDS)
        if found is None:
            return message_page("error_not_found", 404)
        return _safety_page(found[0], urgent=request.args.get("level") != "routine")


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
    rules = app_context().safety_rules
    return safety_signals(rules, form.questionnaire, response, scores, previous)


def _safety_signal(form: FormModel, response: dict[str, Any]) -> bool:
    """Whether the answers give an urgent safety signal (the safety item: crisis help now),
    by the safety rules' engine: the one question every page that shows crisis help for
    answers (drafts, failed submits, outages) asks."""
    return any(s.priority == "urgent" for s in _signals(form, response))


def _safety_owner(task: TaskRow) -> str | None:
    """The practice's owner of safety signals at the client's EHR (config safety_owner)."""
    settings = app_context().settings
    owner: str | None = settings.safety_owner(task.enrolment.fhir_base)
    return owner


def _safety_page(task: TaskRow, *, urgent: bool) -> Any:
    """What the client reads after answers that gave a signal: crisis help first, then who
    reads it and when, as the practice promised; gentle for routine signals only."""
    return render("safety.html", urgent=urgent, own_practitioner=_own_practitioner(task))


def _own_practitioner(task: TaskRow) -> bool:
    """Whether the client has a care professional of their own who reads their answers (on
    the waiting list there is none yet: the practice reads them)."""
    enrolment = task.enrolment
    own = (enrolment.author or "").startswith("Practitioner")
    return own and enrolment.track != "waiting-list"


@bp.app_context_processor
def _safety_texts() -> dict[str, Any]:
    """``safety_promise(urgent, own_practitioner)`` for the templates: who reads a signal
    and when, from the practice's configured promise, in the person's language."""

    def safety_promise(urgent: bool = True, own_practitioner: bool = False) -> str:
        settings = app_context().settings
        lang = language()
        practice = settings.practice_name or translate("safety_the_practice", lang)
        who = translate("safety_who_practitioner", lang) if own_practitioner else practice
        key = "safety_practitioner" if urgent else "safety_promise_routine"
        promise = settings.safety_promise.text(lang) if settings.safety_promise else ""
        return translate(key, lang, who=who, promise=promise)

    return {"safety_promise": safety_promise}
