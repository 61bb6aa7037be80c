"""The care professional's pages: the chart's patient at a glance (/practitioner) with the
decisions about their programme; and who of the practice a care professional may see
(``visible_clients``, for the practice's pages in ``_practice_pages``).

Only for a session launched by a care professional (``role == "practitioner"``); anyone
else gets a readable 403. Every decision goes through ``workflow`` in one transaction with
its outbox entry, so the page never waits on the EHR; a decision the programme's state
does not allow changes nothing and says so. The practice's list is for the practice's own
care professionals: the EHR says so by an active PractitionerRole at the configured
practice, read once per session with the care professional's own access token.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import requests
from flask import (
    Blueprint,
    flash,
    get_flashed_messages,
    redirect,
    request,
    url_for,
)
from sqlalchemy.orm import Session

from fhir_burnout.errors import FhirBurnoutError
from fhir_burnout.fhir import FhirClient
from fhir_burnout.koppeltaal import clients_of
from fhir_burnout.referral import WAITING_LIST, report_to_referrer
from fhir_burnout.web._context import app_context
from fhir_burnout.web._gate import CareProfessional, care_professional, koppeltaal_domain
from fhir_burnout.web._i18n import translate
from fhir_burnout.web._launch import (
    EhrUnavailable,
    SessionExpired,
    _names_from_ehr,
    acts_on_client,
    current_launch,
    person_name,
)
from fhir_burnout.web._memo import current_memo
from fhir_burnout.web._render import language, message_page, render
from fhir_burnout.web._session_summary import (
    SOURCES,
    Since,
    page_summary,
    sends_summary,
    summary_view,
    template_helpers,
    written_day,
)
from fhir_burnout.web._thread_views import practitioner_threads
from fhir_burnout.web._typed_text import refused_fields
from fhir_burnout.workflow import (
    MAX_NOTE,
    EnrolmentRow,
    EnrolmentStateError,
    NotFoundError,
    PlanError,
    TaskChangedError,
    TaskRow,
    TaskTransitionError,
    add_note,
    change_task,
    ending_reason,
    ending_reasons,
    ending_told,
    enrol,
    extend_measures,
    finish,
    patient_overview,
    pause,
    queue_summary_document,
    record_visit,
    resume,
    session_summary,
    stop,
    switch_track,
    unlock_phase,
)

bp = Blueprint("practitioner", __name__)
log = logging.getLogger(__name__)

#: Why a decision changed nothing, as the care professional reads it.
_ERRORS: tuple[tuple[type[Exception], str], ...] = (
    (NotFoundError, "error_action_not_found"),
    (TaskTransitionError, "error_action_state"),
    (TaskChangedError, "error_action_changed"),
    (EnrolmentStateError, "error_action_state"),
    (PlanError, "error_action_not_found"),
)


@bp.app_context_processor
def _crisis_protocol() -> dict[str, Any]:
    """The practice's own crisis protocol, which base.html links for a care professional in
    place of the clients' crisis help (``crisis_protocol_url``; None: no link)."""
    try:
        return {"crisis_protocol": app_context().settings.crisis_protocol_url}
    except (KeyError, RuntimeError):  # an app without our context (a test's bare Flask)
        return {"crisis_protocol": None}


@bp.get("/practitioner")
@care_professional
def practitioner_page(found: CareProfessional) -> Any:
    """The chart's patient at a glance: safety alerts on top, the programme(s), scores over
    time with the reliable change, homework answers and notes; and the decisions."""
    return _page(found)


def _page(
    found: CareProfessional,
    *,
    error: str | None = None,
    status: int = 200,
    note_kept: tuple[str, str, str] | None = None,
) -> Any:
    """The care professional's page (with ``note_kept``: an enrolment's note form filled in
    again, with why it was not sent)."""
    row = found.session
    if not row.patient:
        return message_page("error_no_patient", 400)
    state, lang, now = app_context(), language(), datetime.now(UTC)
    try:
        fresh = current_launch()
    except (SessionExpired, EhrUnavailable):
        fresh = None  # the banner waits; the programme is ours and shows regardless
    token = fresh[1] if fresh else None
    with Session(state.reader) as db:
        overview = patient_overview(
            db, state.definitions, fhir_base=row.fhir_base, patient=row.patient, lang=lang,
            forms=current_memo().form,
        )  # fmt: skip
        view = (
            page_summary(db, found.session, found.by, overview=overview, token=token, now=now)
            if overview.enrolments
            else None
        )
    with Session(state.engine) as db, db.begin():  # the day's first look: the next default
        record_visit(db, fhir_base=row.fhir_base, patient=row.patient, practitioner=found.by,
                     now=now)  # fmt: skip
    _, banner = _names_from_ehr(row, token)
    return render(
        "practitioner.html",
        status=status,
        overview=overview,
        view=view,
        sends_summary=bool(view) and sends_summary(row.fhir_base),
        notices=[str(m) for m in get_flashed_messages(category_filter=["message"])],
        error=error,
        note_kept=note_kept,
        max_note=MAX_NOTE,
        banner=banner,
        threads=practitioner_threads(row.fhir_base, row.patient, found.by, lang, found.practice),
        **template_helpers(lang),
    )


def _decide(found: CareProfessional, action: Callable[[Session], str | None]) -> Any:
    """Run one decision in one transaction (with its outbox entry); back to the page with a
    notice, or the page again with why nothing changed."""
    try:
        with Session(app_context().engine) as db, db.begin():
            notice = action(db)
    except FhirBurnoutError as exc:
        key = next((k for kind, k in _ERRORS if isinstance(exc, kind)), "error_action_state")
        log.info("a care professional's decision was refused: %s", type(exc).__name__)
        return _page(found, error=translate(key, language()), status=409)
    if notice:
        flash(notice)
    return redirect(url_for(".practitioner_page"), code=303)


def _own_enrolment(db: Session, found: CareProfessional, key: str) -> EnrolmentRow:
    """The enrolment, if it is the chart's patient's on this EHR (else: not found)."""
    enrolment = db.get(EnrolmentRow, key)
    row = found.session
    if (
        enrolment is None
        or enrolment.fhir_base != row.fhir_base.rstrip("/")
        or enrolment.patient != row.patient
    ):
        raise NotFoundError(f"there is no enrolment {key} for this patient")
    return enrolment


@bp.post("/practitioner/enrol")
@acts_on_client
@care_professional
def enrol_route(found: CareProfessional) -> Any:
    """Enrol the chart's patient in a track they are not in yet."""
    track = request.form.get("track", "")
    row, lang = found.session, language()

    def action(db: Session) -> str:
        definitions = app_context().definitions
        definitions.plan(track)  # an unknown track: PlanError, nothing changes
        overview = patient_overview(
            db, definitions, fhir_base=row.fhir_base, patient=str(row.patient), lang=lang,
            forms=current_memo().form,
        )  # fmt: skip
        if track not in overview.tracks_to_enrol:
            raise EnrolmentStateError(f"the client is in the track {track!r} already")
        enrol(
            db, definitions, fhir_base=row.fhir_base, patient=str(row.patient), track=track,
            author=found.by, practice=found.practice,
        )  # fmt: skip
        return translate("notice_enrolled", lang, track=overview.tracks[track])

    if not row.patient:
        return message_page("error_no_patient", 400)
    return _decide(found, action)


#: The decisions about a whole enrolment (workflow/_pausing.py), by their name in the URL.
_ENROLMENT_ACTIONS: dict[str, Callable[..., EnrolmentRow]] = {
    "pause": pause,
    "resume": resume,
    "stop": stop,
    "finish": finish,
}


@bp.post("/practitioner/enrolments/<key>/<name>")
@acts_on_client
@care_professional
def enrolment_action(found: CareProfessional, key: str, name: str) -> Any:
    """One decision about one of the patient's enrolments: pause, resume, stop, finish,
    unlock (the phase in the form), switch (to the track in the form) or note (its text)."""
    lang, form = language(), request.form
    if name not in (*_ENROLMENT_ACTIONS, "unlock", "switch", "note", "extend"):
        return message_page("error_not_found", 404)
    if name in _ENDINGS:
        return _end_programme(found, key, name)
    if name == "note" and refused_fields():  # the note again, as typed less those characters
        said = translate("error_control_characters", lang)
        return _page(found, status=400, note_kept=(key, form.get("text", ""), said))

    def action(db: Session) -> str:
        enrolment = _own_enrolment(db, found, key)
        definitions = app_context().definitions
        if name == "unlock":
            unlock_phase(db, definitions, enrolment.key, form.get("phase", ""), by=found.by)
        elif name == "switch":
            track = form.get("track", "")
            switch_track(db, definitions, enrolment.key, track, by=found.by)
            if enrolment.track == WAITING_LIST and track == "standard":
                report_to_referrer(db, enrolment, "in-progress", by=found.by)  # treatment starts
        elif name == "note":
            add_note(db, enrolment.key, form.get("text", ""), by=found.by)
        elif name == "extend":
            extended = extend_measures(db, definitions, enrolment.key, by=found.by)
            until = extended.measures_until
            return translate("notice_extend", lang, date=written_day(until, lang) if until else "")
        else:
            _ENROLMENT_ACTIONS[name](db, enrolment.key, by=found.by)
        return translate(f"notice_{name}", lang)

    return _decide(found, action)


# --- endings on purpose: stop and finish ask first, with a reason ---------------------

#: The endings that ask for a confirmation and a reason first.
_ENDINGS = ("stop", "finish")


@bp.get("/practitioner/enrolments/<key>/<name>")
@care_professional
def confirm_ending(found: CareProfessional, key: str, name: str) -> Any:
    """Before a stop or a finish: what will happen, and why (a reason from our CodeSystem,
    and the care professional's own words). A plain GET page: it works without JavaScript,
    and nothing changes until its form is sent."""
    if name not in _ENDINGS:
        return message_page("error_not_found", 404)
    return _ending_page(found, key, name)


def _ending_page(
    found: CareProfessional,
    key: str,
    name: str,
    *,
    error: str | None = None,
    chosen: str = "",
    note: str = "",
    status: int = 200,
) -> Any:
    state, lang, row = app_context(), language(), found.session
    definitions = state.definitions
    if not row.patient:
        return message_page("error_no_patient", 400)
    with Session(state.reader) as db:
        overview = patient_overview(
            db, definitions, fhir_base=row.fhir_base, patient=row.patient, lang=lang,
            forms=current_memo().form,
        )  # fmt: skip
    enrolment = next((e for e in overview.enrolments if e.key == key), None)
    if enrolment is None:
        return _page(found, error=translate("error_action_not_found", lang), status=404)
    if not enrolment.current:
        return _page(found, error=translate("error_action_state", lang), status=409)
    try:  # whose programme ends: the same patient banner as on /practitioner
        fresh = current_launch()
    except (SessionExpired, EhrUnavailable):
        fresh = None
    _, banner = _names_from_ehr(row, fresh[1] if fresh else None)
    return render(
        "practitioner_end.html",
        status=status,
        banner=banner,
        ending=name,
        key=key,
        enrolment=enrolment,
        after_care=name == "finish" and enrolment.track == "standard",
        reasons=ending_reasons(definitions, name, lang),
        chosen=chosen,
        note=note,
        max_note=MAX_REASON_NOTE,
        error=error,
    )


#: The longest note a care professional may add to an ending reason (characters).
MAX_REASON_NOTE = 500


def _end_programme(found: CareProfessional, key: str, name: str) -> Any:
    """Stop or finish, only when the confirmation page's form says so and gives a reason;
    otherwise that page again, saying what is missing, and nothing changes."""
    form, lang = request.form, language()
    code, note = form.get("reason", ""), form.get("note", "").strip()[:MAX_REASON_NOTE]
    definitions = app_context().definitions
    if refused_fields():
        return _ending_page(
            found, key, name, error=translate("error_control_characters", lang), note=note,
            status=400,
        )  # fmt: skip
    if form.get("confirm") != "yes":
        return _ending_page(
            found, key, name, error=translate("error_end_unconfirmed", lang), status=400
        )
    if code not in {c for c, _ in ending_reasons(definitions, name, lang)}:
        return _ending_page(
            found, key, name, error=translate("error_end_reason", lang), note=note, status=400
        )
    reason = ending_reason(definitions, code, note)

    def action(db: Session) -> str:
        enrolment = _own_enrolment(db, found, key)
        _ENROLMENT_ACTIONS[name](db, enrolment.key, by=found.by, reason=reason)
        told = ending_told(name, reason)
        report_to_referrer(db, enrolment, "completed", by=found.by, reason=told)
        if name == "finish" and enrolment.track == "standard":
            return translate("notice_finish_after_care", lang)
        return translate(f"notice_{name}", lang)

    return _decide(found, action)


@bp.post("/practitioner/summary")
@acts_on_client
@care_professional
def summary_to_ehr(found: CareProfessional) -> Any:
    """ "Samenvatting naar het dossier": the summary the page showed (its period, from the
    form) as a DocumentReference for the EHR, through the outbox
    (``workflow.queue_summary_document``); only where the practice switched it on."""
    row, lang, now = found.session, language(), datetime.now(UTC)
    if not row.patient or not sends_summary(row.fhir_base):
        return message_page("error_not_found", 404)
    try:
        since = Since(datetime.fromisoformat(request.form.get("since", "")), "chosen")
    except ValueError:
        return _page(found, error=translate("error_action_state", lang), status=400)
    source = request.form.get("source", "")
    since = Since(min(since.at.astimezone(UTC), now), source if source in SOURCES else "chosen")
    state = app_context()

    def action(db: Session) -> str:
        overview = patient_overview(
            db, state.definitions, fhir_base=row.fhir_base, patient=str(row.patient),
            lang=lang, forms=current_memo().form,
        )  # fmt: skip
        enrolment = next(iter(overview.current or overview.enrolments), None)
        if enrolment is None:
            raise EnrolmentStateError("the client is in no programme: there is no summary")
        summary = session_summary(db, state.definitions, overview, since=since.at, lang=lang,
                                  forms=current_memo().form, now=now)  # fmt: skip
        view = summary_view(db, summary, since, lang, current_memo().form)
        title = translate("summary_document_title", lang, date=written_day(now, lang))
        html, _ = render(
            "practitioner_summary_document.html", view=view, overview=overview, title=title,
            **template_helpers(lang),
        )  # fmt: skip
        queue_summary_document(
            db, enrolment.key, html=html, title=title, lang=lang, since=since.at, until=now,
            by=found.by, now=now,
        )  # fmt: skip
        return translate("notice_summary_sent", lang)

    return _decide(found, action)


@bp.post("/practitioner/alerts/<key>/close")
@acts_on_client
@care_professional
def close_alert(found: CareProfessional, key: str) -> Any:
    """Contact taken: the safety review Task is completed, as the care professional."""
    lang = language()

    def action(db: Session) -> str:
        task = db.get(TaskRow, key)
        if task is None or task.kind != "practitioner" or not task.action_id.startswith("safety:"):
            raise NotFoundError(f"there is no safety alert {key}")
        _own_enrolment(db, found, task.enrolment_key)
        definitions = app_context().definitions
        # requested -> ready -> completed: the Task lifecycle has no shorter way (R4 Task).
        for status in ("ready", "completed") if task.status == "requested" else ("completed",):
            change_task(db, definitions, key, status, actor="practitioner", who=found.by)
        return translate("notice_alert_closed", lang)

    return _decide(found, action)


# --- the practice -----------------------------------------------------------------------


def visible_clients(found: CareProfessional) -> frozenset[str] | None:
    """The clients (Patient ids) this care professional may see on the practice's pages:
    on a Koppeltaal domain those of their CareTeams and whose Task they launched, read with
    the module's backend token (``koppeltaal.clients_of``; CareTeamUnreadableError when it
    cannot be read); None elsewhere (the practice's PractitionerRole let them in: all)."""
    fhir_base = found.session.fhir_base
    if not koppeltaal_domain(fhir_base):
        return None
    with Session(app_context().reader) as db:
        return clients_of(db, _domain_client(fhir_base), fhir_base, found.by)


#: Patients named per search (a Patient search by ``_id`` lists them, comma-separated).
NAMES_PER_SEARCH = 50


def _names(row: Any, patients: set[str]) -> dict[str, str]:
    """The clients' names, read from the EHR with the care professional's own token
    (``user/Patient.rs``), or in a Koppeltaal domain with the module's backend token (there
    is no user token there); whatever cannot be read stays an id: the list works without."""
    names: dict[str, str] = {}
    if not patients:
        return names
    try:
        if koppeltaal_domain(row.fhir_base):
            _read_names(_domain_client(row.fhir_base), sorted(patients), names)
            return names
        fresh = current_launch()
        if fresh is None:
            return names
        with FhirClient(row.fhir_base, token=fresh[1], session=requests.Session()) as client:
            _read_names(client, sorted(patients), names)
    except (FhirBurnoutError, SessionExpired, EhrUnavailable):
        log.info("the practice list shows ids: the clients' names could not be read")
    return names


def _read_names(client: FhirClient, wanted: list[str], names: dict[str, str]) -> None:
    for start in range(0, len(wanted), NAMES_PER_SEARCH):
        chunk = ",".join(wanted[start : start + NAMES_PER_SEARCH])
        for patient in client.search("Patient", {"_id": chunk}):
            names[str(patient.get("id"))] = person_name(patient)


def _domain_client(fhir_base: str) -> FhirClient:
    """The module's backend client for a Koppeltaal domain (one set per app)."""
    client: FhirClient = app_context().ehr_clients.get(fhir_base)
    return client
