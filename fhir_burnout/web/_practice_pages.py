"""The practice's pages for its own care professionals: /practice, a work list of every
client enrolled (one row each, sortable and filterable with plain links, no script needed),
the writes the EHR refused with its message, and the practice's outcomes; and
/practice/clients/<key>, one client of that list, to read.

A row's name opens that client. The app acts on a client only inside a launch from that
client's chart (``acts_on_client``: every form names the launch's client), so the list never
switches the session to another client: the launch's own client opens /practitioner with its
decisions; any other client opens a page to read only (no forms), which says to open the app
from that client's chart in the EHR to act. Who may see whom is the list's rule
(``care_professional(of_practice=True)``, ``visible_clients``); any other key is a 404.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any

from flask import Blueprint, abort, get_flashed_messages, redirect, request, url_for
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from fhir_burnout.koppeltaal import CareTeamUnreadableError
from fhir_burnout.questionnaire import clinical_change
from fhir_burnout.web import _triage_list
from fhir_burnout.web._context import app_context
from fhir_burnout.web._gate import CareProfessional, care_professional
from fhir_burnout.web._i18n import N_, format_date, translate
from fhir_burnout.web._memo import current_memo
from fhir_burnout.web._practitioner_pages import _names, visible_clients
from fhir_burnout.web._render import language, render
from fhir_burnout.workflow import (
    CURRENT,
    FILTERS,
    SORTS,
    EnrolmentRow,
    patient_overview,
    practice_outcomes,
    practice_overview,
    shown_count,
    work_list,
)

bp = Blueprint("practice", __name__)
log = logging.getLogger(__name__)

#: Keys practice.html and practice_client.html build at run time (see _i18n.RUN_TIME_KEYS).
_RUN_TIME_KEYS = (
    N_("practice_filter_all"), N_("practice_filter_signals"), N_("practice_filter_stuck"),
    N_("practice_filter_waiting"), N_("practice_filter_ended"),
    N_("practice_out_phq-9"), N_("practice_out_gad-7"), N_("practice_out_who-5"),
    N_("enrolment_on-hold"), N_("pract_signal_urgent"), N_("pract_signal_routine"),
)  # fmt: skip


def _day(value: datetime | date, lang: str) -> str:
    day = value.date() if isinstance(value, datetime) else value
    return format_date(day.isoformat(), lang)


def _moment(value: datetime, lang: str) -> str:
    """A date and time as people write them, in the server's time zone (as the forms are)."""
    local = value.astimezone()
    return translate("practice_moment", lang, date=_day(local, lang), time=local.strftime("%H:%M"))


def _visible(found: CareProfessional) -> tuple[frozenset[str] | None, str | None]:
    """The clients this care professional may see, and why nobody is shown (if so)."""
    try:
        return visible_clients(found), None
    except CareTeamUnreadableError:
        log.warning("the practice list shows nobody: the domain's CareTeams could not be read")
        return frozenset(), translate("error_care_teams_unread", language())


@bp.get("/practice")
@care_professional(of_practice=True)
def practice_page(found: CareProfessional) -> Any:
    """The practice's work list: one row per client (name, track, phase, last activity,
    open safety signals, stuck, waiting since), sorted by ``?sort=`` (``&order=desc``) and
    filtered by ``?show=`` (signals, stuck, waiting, ended); the referrals waiting for triage
    above it, the writes the EHR refused and the practice's outcomes below. On a Koppeltaal
    domain only the care professional's own clients, and nobody when that cannot be known."""
    row, practice = found.session, found.practice
    state, lang = app_context(), language()
    show = request.args.get("show", "all")
    show = show if show in FILTERS else "all"
    sort = request.args.get("sort", "priority")
    sort = sort if sort in SORTS else "priority"
    descending = request.args.get("order") == "desc"
    visible, unknown = _visible(found)
    with Session(state.reader) as db:
        overview = practice_overview(
            db, state.definitions, fhir_base=row.fhir_base, practice=practice, lang=lang,
            patients=visible, ended=True,
        )  # fmt: skip
        outcomes = practice_outcomes(
            db, fhir_base=row.fhir_base, practice=practice, patients=visible
        )
        triage = _triage_list.waiting_list(db, row.fhir_base, practice, lang, visible)
    names = _names(row, {r.patient for r in overview.rows} | {
        d.patient for d in overview.dead_letters if d.patient
    } | {w.patient for w in triage})  # fmt: skip
    rows = work_list(overview.rows, show=show, sort=sort, descending=descending, names=names)
    counts = {kind: len(work_list(overview.rows, show=kind)) for kind in FILTERS}

    def who(patient: str | None) -> str:
        if not patient:
            return "?"
        return f"{names[patient]} ({patient})" if names.get(patient) else patient

    def sort_link(column: str) -> str:
        """The column's header link: sorts by it, or turns the order round if it already is."""
        if sort == column:
            order = None if descending else "desc"
        else:  # the newest, the most signals, the stuck first; names and the rest A to Z
            order = "desc" if column in ("last", "signals", "stuck") else None
        args: dict[str, Any] = {"show": show if show != "all" else None, "sort": column}
        args["order"] = order
        return url_for("practice.practice_page", **{k: v for k, v in args.items() if v})

    return render(
        "practice.html", status=503 if unknown else 200, overview=overview, rows=rows,
        counts=counts, show=show, sort=sort, descending=descending, sort_link=sort_link,
        filters=FILTERS, outcomes=outcomes, shown=shown_count, names=names,
        day=lambda value: _day(value, lang), moment=lambda value: _moment(value, lang),
        who=who, triage=triage, error=unknown, launched=row.patient,
        notices=[str(m) for m in get_flashed_messages(category_filter=["message"])],
    )  # fmt: skip


@bp.get("/practice/clients/<key>")
@care_professional(of_practice=True)
def client_page(found: CareProfessional, key: str) -> Any:
    """One client of the practice's list: the launch's own client goes to /practitioner,
    where the decisions are; any other client is a page to read (their programme and their
    measures' change), with no form on it. A key that is not one of the list's is a 404."""
    row, practice = found.session, found.practice
    state, lang = app_context(), language()
    visible, _ = _visible(found)
    with Session(state.reader) as db:
        mine = [EnrolmentRow.key == key, EnrolmentRow.fhir_base == row.fhir_base.rstrip("/")]
        if practice is not None:
            mine.append(or_(EnrolmentRow.practice == practice, EnrolmentRow.practice.is_(None)))
        enrolment = db.scalars(select(EnrolmentRow).where(*mine)).first()
        if enrolment is None or (visible is not None and enrolment.patient not in visible):
            abort(404)
        if enrolment.patient == row.patient:
            return redirect(url_for("practitioner.practitioner_page"), code=303)
        overview = patient_overview(
            db, state.definitions, fhir_base=row.fhir_base, patient=enrolment.patient,
            lang=lang, forms=current_memo().form,
        )  # fmt: skip
    name = _names(row, {enrolment.patient}).get(enrolment.patient)
    changes = {
        (s.questionnaire, s.link_id): clinical_change(
            s.questionnaire, s.link_id, s.points[0].value, s.points[-1].value
        )
        for s in overview.scores
        if len(s.points) > 1
    }
    # No patient banner: it names the launch's client, and this page is about another one.
    return render(
        "practice_client.html", banner=None, overview=overview, name=name,
        patient=enrolment.patient,
        changes=changes, current=CURRENT, day=lambda value: _day(value, lang),
        moment=lambda value: _moment(value, lang),
    )  # fmt: skip
