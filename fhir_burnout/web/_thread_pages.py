"""Feedback both ways on homework: the care professional's response under an answer on
``/practitioner``, and the client's own answers with the responses and their replies
(``/answers``, ``/answers/<key>``).

A thread is reached only through its answer, and the answer only when it is the launch's
client's homework on this EHR (``workflow.own_answer``) and, for a care professional, of
the practice configured for this EHR: anyone else gets "not found" (never "forbidden",
which would say it exists). What is sent goes through ``workflow.post_message`` in one
transaction with its outbox entry: the page never waits on the EHR, and a reply typed while
the EHR is down is kept. A text that cannot be sent (empty, too long, a control character)
comes back in its form as typed, with a kind word on why.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, flash, redirect, request, url_for
from sqlalchemy.orm import Session

from fhir_burnout.web._confirmations import confirm
from fhir_burnout.web._context import app_context
from fhir_burnout.web._gate import (
    CareProfessional,
    ClientRecords,
    care_professional,
    client_of_launch,
)
from fhir_burnout.web._i18n import N_, format_date, translate
from fhir_burnout.web._launch import acts_on_client, check_acting_for
from fhir_burnout.web._memo import current_memo
from fhir_burnout.web._practitioner_pages import _page
from fhir_burnout.web._render import language, message_page, render
from fhir_burnout.web._thread_views import count, keep_typed, message_limit, thread_view
from fhir_burnout.web._typed_text import refused_fields
from fhir_burnout.workflow import (
    EnrolmentRow,
    EnrolmentStateError,
    MessageError,
    ResponseRow,
    homework_answers,
    mark_seen,
    own_answer,
    post_message,
    readable_answer,
    thread_of,
    threads_of,
)

bp = Blueprint("thread", __name__)
log = logging.getLogger(__name__)


#: Why a message was not sent, by whose it is: (empty, too long). The care professional's
#: words speak to the care professional, the client's to the client.
_WHY_NOT = {
    "practitioner": (N_("thread_pract_empty"), N_("thread_pract_too_long")),
    "client": (N_("thread_client_empty"), N_("thread_client_too_long")),
}


def _why_not(error: MessageError, whose: str, lang: str) -> str:
    """Why a message was not sent, in a kind word, with the text's length and the limit."""
    empty, too_long = _WHY_NOT[whose]
    if error.reason == "empty":
        return translate(empty, lang)
    return translate(too_long, lang, length=count(error.length, lang), max=message_limit(lang))


# --- the care professional ---------------------------------------------------------------


def _of_this_practice(db: Session, answer: ResponseRow, found: CareProfessional) -> bool:
    """Whether the answer's enrolment is for the practice configured for this EHR (an
    enrolment another practice made on a shared EHR is not this care professional's)."""
    enrolment = db.get(EnrolmentRow, answer.enrolment_key)
    if enrolment is None:
        return False
    return not (enrolment.practice and found.practice and enrolment.practice != found.practice)


@bp.post("/practitioner/responses/<key>/thread")
@acts_on_client
@care_professional
def respond(found: CareProfessional, key: str) -> Any:
    """The care professional's response to one homework answer of the chart's client (or,
    with ``clinician_only``, a note only care professionals read): kept, and queued for the
    EHR as a Communication; then back to the page, at that answer."""
    row, lang, form = found.session, language(), request.form
    text, clinician_only = form.get("text", ""), form.get("clinician_only") == "yes"
    if not row.patient:
        return message_page("error_no_patient", 400)
    refused: tuple[str, int] | None = None
    with Session(app_context().engine) as db, db.begin():
        answer = own_answer(db, key, fhir_base=row.fhir_base, patient=row.patient)
        if answer is None or not _of_this_practice(db, answer, found):
            return message_page("error_not_found", 404)
        if refused_fields():
            refused = translate("error_control_characters", lang), 400
        else:
            try:
                post_message(db, answer, text, by=found.by, clinician_only=clinician_only)
            except MessageError as error:
                refused = _why_not(error, "practitioner", lang), 400
            except EnrolmentStateError:
                refused = translate("thread_pract_closed", lang), 409
    if refused is not None:  # the page again, the text as typed in its form
        log.info("a care professional's message was not sent (%s)", refused[1])
        keep_typed(key, text, clinician_only, refused[0])
        return _page(found, status=refused[1])
    said = N_("thread_pract_noted") if clinician_only else N_("thread_pract_sent")
    flash(translate(said, lang))
    return redirect(url_for("practitioner.practitioner_page", _anchor=f"thread-{key}"), code=303)


# --- the client --------------------------------------------------------------------------


@bp.get("/answers")
@client_of_launch
def answers_page(records: ClientRecords) -> Any:
    """The client's own homework answers and diary entries, newest first, each marked when
    their care professional responded (and when that is new to them)."""
    row = records.client()
    if row is None:
        return message_page("error_signed_out", 401)
    state, lang = app_context(), language()
    forms = current_memo().form
    with Session(state.reader) as db:
        answers = homework_answers(db, fhir_base=row.fhir_base, patient=str(row.patient))
        threads = threads_of(db, answers, for_client=True)
        items = []
        for answer in answers:
            thread = threads[answer.key]
            carers = [m for m in thread.messages if not m.by_client]
            items.append(
                {
                    "href": url_for(".answer_page", key=answer.key),
                    "title": readable_answer(
                        state.definitions, answer, lang=lang, forms=forms
                    ).title,
                    "date": format_date(answer.authored.date().isoformat(), lang),
                    "responded": bool(carers),
                    "new": any(not m.seen for m in carers),
                }
            )
    return render("answers.html", items=items)


def _answer_page(
    records: ClientRecords, key: str, *, status: int = 200, mark: bool = False
) -> Any:
    """The client's answer ``key`` beside the thread about it; ``mark``: the client read
    their care professional's messages (the notice on their home goes)."""
    row = records.client()
    if row is None:
        return message_page("error_signed_out", 401)
    state, lang = app_context(), language()
    with Session(state.reader) as db:
        answer = own_answer(db, key, fhir_base=row.fhir_base, patient=str(row.patient))
        if answer is None:
            return message_page("error_not_found", 404)
        thread = thread_of(db, answer, for_client=True)
        readable = readable_answer(state.definitions, answer, lang=lang, forms=current_memo().form)
    the_client = row.role == "patient"
    if mark and the_client and any(not m.seen and not m.by_client for m in thread.messages):
        with Session(state.engine) as db, db.begin():
            mark_seen(db, answer)
    return render(
        "answer.html",
        status=status,
        key=key,
        answer=readable,
        date=format_date(answer.authored.date().isoformat(), lang),
        thread=thread_view(thread, lang=lang, viewer="", for_client=True),
        can_reply=the_client and thread.open and thread.answered,
    )


@bp.get("/answers/<key>")
@client_of_launch
def answer_page(records: ClientRecords, key: str) -> Any:
    """ "Je antwoord en de reactie van je behandelaar": the client's answer, what their care
    professional said about it, and a form to reply."""
    return _answer_page(records, key, mark=True)


@bp.post("/answers/<key>/reply")
@acts_on_client
@client_of_launch
def reply(records: ClientRecords, key: str) -> Any:
    """The client's reply to their care professional's response: kept at once and queued
    for the EHR (it reaches the EHR when the EHR is there)."""
    row = records.client()
    if row is None:
        return message_page("error_signed_out", 401)
    check_acting_for(row)
    lang, text = language(), request.form.get("text", "")
    refused: tuple[str, int] | None = None
    with Session(app_context().engine) as db, db.begin():
        answer = own_answer(db, key, fhir_base=row.fhir_base, patient=str(row.patient))
        if answer is None:
            return message_page("error_not_found", 404)
        if row.role != "patient":
            # Only the client replies, in their own words; a care professional responds
            # from their own page.
            return message_page("thread_client_only", 403)
        if refused_fields():
            refused = translate("error_control_characters", lang), 400
        else:
            try:
                post_message(db, answer, text, by=f"Patient/{row.patient}")
            except MessageError as error:
                refused = _why_not(error, "client", lang), 400
            except EnrolmentStateError:
                refused = translate("thread_client_closed", lang), 409
    if refused is not None:  # the page again, the reply as typed in its form
        keep_typed(key, text, False, refused[0])
        return _answer_page(records, key, status=refused[1])
    confirm(N_("thread_client_sent"))
    return redirect(url_for(".answer_page", key=key, _anchor="thread"), code=303)
