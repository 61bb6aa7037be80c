"""``GET /koppeltaal/results/<key>``: the client's results, where a Koppeltaal
DocumentReference links to (draft T029; koppeltaal/_results.py).

The domain's store holds only the link; the content stays here, and only a care professional
of that domain sees it: a session launched by a care professional (``role`` practitioner)
through a Koppeltaal launch of the same domain (the session's EHR is that Koppeltaal domain).
Anyone else (a client's session, another EHR's care professional, a browser that is not
signed in) gets a readable 403 saying to open the module from the portal first. The key is
the KT2_Task's id; a key the care professional's domain does not know is a 404. The page is
a printable summary from ``patient_overview``: scores over time with bands and the reliable
change, the answers in words, the modules done; Dutch first; ``Cache-Control: no-store``.
Nothing about the client is logged.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from flask import Blueprint, current_app
from sqlalchemy.orm import Session

from fhir_burnout.koppeltaal import KoppeltaalTaskRow
from fhir_burnout.settings import Settings
from fhir_burnout.web._context import app_context
from fhir_burnout.web._i18n import format_date
from fhir_burnout.web._launch import SessionExpired, current_session
from fhir_burnout.web._memo import current_memo
from fhir_burnout.web._render import language, message_page, render
from fhir_burnout.web._sessions import LaunchSessionRow
from fhir_burnout.workflow import patient_overview

bp = Blueprint("koppeltaal_results", __name__, url_prefix="/koppeltaal/results")


def _koppeltaal_practitioner() -> LaunchSessionRow | None:
    """The signed-in care professional of a Koppeltaal domain, else None."""
    try:
        row = current_session()
    except SessionExpired:
        return None
    if row is None or row.role != "practitioner":
        return None
    settings: Settings = app_context().settings
    domain = row.fhir_base.rstrip("/")
    koppeltaal = {e.fhir_base.rstrip("/") for e in settings.ehrs if e.mode == "koppeltaal"}
    return row if domain in koppeltaal else None


def _no_store(page: tuple[str, int]) -> Any:
    response = current_app.make_response(page)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/<key>")
def results_page(key: str) -> Any:
    """The printable summary of the results of the client of KT2_Task ``key``."""
    row = _koppeltaal_practitioner()
    if row is None:
        return _no_store(message_page("ktr_portal_first", 403))
    domain = row.fhir_base.rstrip("/")
    state, lang = app_context(), language()
    with Session(state.reader) as db:
        task = db.get(KoppeltaalTaskRow, (domain, key))
        if task is None:
            return _no_store(message_page("ktr_not_found", 404))
        who = task.patient
        patient = who.removeprefix("Patient/")
        overview = patient_overview(
            db, state.definitions, fhir_base=domain, patient=patient, lang=lang,
            forms=current_memo().form,
        )  # fmt: skip

    def day(value: datetime | date) -> str:
        when = value.date() if isinstance(value, datetime) else value
        return format_date(when.isoformat(), lang)

    return _no_store(
        render(
            "koppeltaal_results.html",
            overview=overview,
            patient=who,
            printed=day(date.today()),
            day=day,
        )
    )
