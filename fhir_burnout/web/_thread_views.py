"""What the pages show of the threads about a client's homework answers
(``workflow._threads``): under each answer on the care professional's page
(``templates/_thread.html``), on the client's own answer pages, and the one-line notice on
the client's home when a care professional responded. The routes are
``web/_thread_pages.py``; this module is apart because the pages that show threads
(``/practitioner``, home) import it, and those routes import them.

Texts are plain: a message is shown line by line, escaped by the templates (no HTML ever
reaches a page from what someone typed).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import g, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session

from fhir_burnout.web._context import app_context
from fhir_burnout.web._i18n import N_, format_date, translate, translate_n
from fhir_burnout.web._memo import current_memo
from fhir_burnout.workflow import (
    MAX_MESSAGE,
    EnrolmentRow,
    Message,
    Thread,
    answer_title,
    homework_answers,
    new_responses,
    threads_of,
)

#: Where a view keeps a message it could not send, for the page shown again (``g``).
KEPT = "thread_kept"


@dataclass(frozen=True)
class MessageView:
    """One message as a page shows it."""

    side: str  # client | carer | note (a note for care professionals only)
    who: str
    date: str
    lines: tuple[str, ...]  # the text, line by line (the template puts <br> between)


@dataclass(frozen=True)
class ThreadView:
    """The thread under one answer, and its form as typed when it was not sent."""

    key: str  # the answer's (QuestionnaireResponse's) key
    messages: tuple[MessageView, ...]
    open: bool
    awaiting: bool  # the client's reply is the last word
    answered: bool  # a care professional responded where the client can read it
    limit: str  # the longest message, as people write the number
    kept: str = ""
    kept_clinician_only: bool = False
    error: str | None = None


def count(n: int, lang: str) -> str:
    """A count as people write it: 2.000 in Dutch, 2,000 in English."""
    return f"{n:,}".replace(",", "." if lang == "nl" else ",")


def message_limit(lang: str) -> str:
    """The longest message, as people write the number."""
    return count(MAX_MESSAGE, lang)


def keep_typed(key: str, text: str, clinician_only: bool, error: str) -> None:
    """Show the form of answer ``key`` again with ``text`` as typed and why it was not sent."""
    setattr(g, KEPT, (key, text, clinician_only, error))


def _day(message: Message, lang: str) -> str:
    return format_date(message.created_at.date().isoformat(), lang)


def message_views(
    thread: Thread, *, lang: str, viewer: str, for_client: bool
) -> tuple[MessageView, ...]:
    """The thread's messages as ``viewer`` (a Practitioner reference, or the client) reads
    them: "Jij" and "Je behandelaar" for the client; "De cliënt", "U" and "Een collega" for
    a care professional, with the notes for care professionals only marked."""
    views = []
    for message in thread.messages:
        if message.by_client:
            side = "client"
            who = N_("thread_by_you_client") if for_client else N_("thread_by_client")
        elif for_client:
            side, who = "carer", N_("thread_by_carer")
        else:
            side = "note" if message.clinician_only else "carer"
            who = N_("thread_by_you") if message.author == viewer else N_("thread_by_colleague")
        lines = tuple(message.text.split("\n"))
        views.append(MessageView(side, translate(who, lang), _day(message, lang), lines))
    return tuple(views)


def thread_view(thread: Thread, *, lang: str, viewer: str, for_client: bool) -> ThreadView:
    """One thread for a page, with its form as typed when the view kept it (``keep_typed``)."""
    kept = g.get(KEPT)
    mine = kept is not None and kept[0] == thread.response_key
    return ThreadView(
        thread.response_key,
        message_views(thread, lang=lang, viewer=viewer, for_client=for_client),
        thread.open,
        thread.awaiting,
        thread.answered,
        message_limit(lang),
        kept=kept[1] if mine else "",
        kept_clinician_only=bool(kept[2]) if mine else False,
        error=kept[3] if mine else None,
    )


def practitioner_threads(
    fhir_base: str, patient: str, viewer: str, lang: str, practice: str | None = None
) -> dict[str, ThreadView]:
    """The thread under each of the client's homework answers (by the answer's key), for
    the care professional ``viewer`` of ``practice`` (the one configured for the EHR): every
    message, the notes for care professionals too; none under an answer from an enrolment
    another practice made (its thread is not theirs: ``web/_thread_pages.respond``)."""
    with Session(app_context().reader) as db:
        answers = homework_answers(db, fhir_base=fhir_base, patient=patient)
        if practice is not None:
            keys = {a.enrolment_key for a in answers}
            others = set(
                db.scalars(
                    select(EnrolmentRow.key).where(
                        EnrolmentRow.key.in_(keys),
                        EnrolmentRow.practice.is_not(None),
                        EnrolmentRow.practice != practice,
                    )
                )
            )
            answers = [a for a in answers if a.enrolment_key not in others]
        threads = threads_of(db, answers, for_client=False)
    return {
        key: thread_view(thread, lang=lang, viewer=viewer, for_client=False)
        for key, thread in threads.items()
    }


@dataclass(frozen=True)
class ResponseNotice:
    """The one line on the client's home: a care professional responded, and where to read it."""

    text: str
    link: str
    href: str


def response_notice(db: Session, fhir_base: str, patient: str, lang: str) -> ResponseNotice | None:
    """The notice for the client's home when a care professional responded to answers they
    have not looked at since; None when there is nothing new."""
    found = new_responses(db, fhir_base=fhir_base, patient=patient)
    if not found:
        return None
    if len(found) == 1:
        definitions = app_context().definitions
        title = answer_title(definitions, found[0], lang=lang, forms=current_memo().form)
        return ResponseNotice(
            translate("thread_notice_one", lang, title=title),
            translate("thread_notice_read", lang),
            url_for("thread.answer_page", key=found[0].key),
        )
    return ResponseNotice(
        translate_n("thread_notice_many", len(found), lang),
        translate("thread_notice_read_all", lang),
        url_for("thread.answers_page"),
    )
