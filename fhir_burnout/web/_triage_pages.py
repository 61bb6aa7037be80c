"""Referral triage for the practice's care professionals: the referrals waiting on
/practice (longest first, with how long they wait), one referral beside the programme's
exclusion criteria (/practice/referrals/<key>), and the decision: accept or decline.

The same check as /practice keeps everyone else out (an active PractitionerRole at the
configured practice). Both decisions need the form's CSRF token, run in one transaction
with their outbox entries (``fhir_burnout.referral``), and happen once: a second one
changes nothing and the page says what was decided before.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, flash, redirect, request, url_for
from sqlalchemy.orm import Session

from fhir_burnout.koppeltaal import CareTeamUnreadableError
from fhir_burnout.referral import (
    MAX_DECLINE_NOTE,
    ReferralDecidedError,
    ReferralNotFoundError,
    ReferralRow,
    TriageContent,
    TriageError,
    accept_referral,
    decline_referral,
    find_referral,
    summarise,
)
from fhir_burnout.web._context import app_context
from fhir_burnout.web._gate import CareProfessional, care_professional
from fhir_burnout.web._i18n import format_date, translate
from fhir_burnout.web._practitioner_pages import _names, visible_clients
from fhir_burnout.web._render import language, message_page, render
from fhir_burnout.web._triage_list import _aware, waited
from fhir_burnout.web._typed_text import refused_fields

bp = Blueprint("triage", __name__)
log = logging.getLogger(__name__)


def triage_content() -> TriageContent:
    """The exclusion criteria and decline reasons (read when the app starts)."""
    content: TriageContent = app_context().triage
    return content


@bp.get("/practice/referrals/<key>")
@care_professional(of_practice=True)
def referral_page(found: CareProfessional, key: str) -> Any:
    """One referral: what it says, the exclusion criteria, and the decision."""
    return _page(found, found.practice, key)


def _page(
    found: CareProfessional,
    practice: str | None,
    key: str,
    *,
    error: str | None = None,
    status: int = 200,
    form: dict[str, str] | None = None,
) -> Any:
    lang = language()
    state = app_context()
    refused = _not_theirs(found, key)
    if refused is not None:
        return refused
    with Session(state.reader) as db:
        try:
            row = find_referral(db, key, fhir_base=found.session.fhir_base, practice=practice)
        except ReferralNotFoundError:
            return message_page("triage_not_found", 404)
        db.expunge(row)
    names = _names(found.session, {row.patient})
    content = triage_content()
    reasons = {r.code: r.display.get(lang, r.display["nl"]) for r in content.reasons}
    return render(
        "triage.html",
        status=status,
        referral=row,
        summary=summarise(row),
        who=f"{names[row.patient]} ({row.patient})" if names.get(row.patient) else row.patient,
        received=format_date(_aware(row.received_at).date().isoformat(), lang),
        waited=waited(row.received_at, lang),
        decided=_decided(row, reasons, lang),
        criteria=content.criteria,
        question=content.question.get(lang, content.question["nl"]),
        reasons=reasons,
        error=error,
        form=form or {},
        max_note=MAX_DECLINE_NOTE,
        date=lambda value: format_date(value, lang),
    )


def _not_theirs(found: CareProfessional, key: str) -> tuple[str, int] | None:
    """The page for a referral of a client this care professional may not see (on a
    Koppeltaal domain: not in their CareTeams, no Task of theirs launched), or None."""
    try:
        visible = visible_clients(found)
    except CareTeamUnreadableError:
        return message_page("error_care_teams_unread", 503)
    if visible is None:
        return None
    with Session(app_context().reader) as db:
        row = db.get(ReferralRow, key)
        patient = row.patient if row is not None else None
    return None if patient in visible else message_page("triage_not_found", 404)


def _decided(row: ReferralRow, reasons: dict[str, str], lang: str) -> str | None:
    """What was decided about a referral, as a sentence; None while it waits."""
    if row.decided_at is None or row.state == "triage":
        return None
    day = format_date(_aware(row.decided_at).date().isoformat(), lang)
    if row.state == "declined":
        reason = reasons.get(row.decline_reason or "", row.decline_reason or "")
        return translate("triage_was_declined", lang, date=day, reason=reason)
    return translate("triage_was_accepted", lang, date=day)


@bp.post("/practice/referrals/<key>/<decision>")
@care_professional(of_practice=True)
def decide(found: CareProfessional, key: str, decision: str) -> Any:
    """Accept or decline a referral waiting for triage, once."""
    if decision not in ("accept", "decline"):
        return message_page("error_not_found", 404)
    return _decide(found, found.practice, key, decision)


def _decide(found: CareProfessional, practice: str | None, key: str, decision: str) -> Any:
    """The decision in one transaction with its outbox entries; back to /practice with a
    notice, or this referral's page again with why nothing changed."""
    lang, form = language(), request.form
    state = app_context()
    fhir_base = found.session.fhir_base
    theirs = _not_theirs(found, key)
    if theirs is not None:
        return theirs
    if refused_fields():  # the reason and note as typed, without the control characters
        kept = {"reason": form.get("reason", ""), "note": form.get("note", "")}
        said = translate("error_control_characters", lang)
        return _page(found, practice, key, error=said, status=400, form=kept)
    try:
        with Session(state.engine) as db, db.begin():
            if decision == "accept":
                accept_referral(
                    db, state.definitions, key, fhir_base=fhir_base, practice=practice,
                    by=found.by,
                )  # fmt: skip
            else:
                decline_referral(
                    db, triage_content(), key, fhir_base=fhir_base, practice=practice,
                    reason=form.get("reason", ""), note=form.get("note", ""), by=found.by,
                )  # fmt: skip
    except ReferralNotFoundError:
        return message_page("triage_not_found", 404)
    except ReferralDecidedError:
        log.info("a triage decision came too late: the referral was decided already")
        error = translate("triage_decided_already", lang)
        return _page(found, practice, key, error=error, status=409)
    except TriageError as exc:
        said = str(exc)
        message = (
            "triage_note_long" if "longer than" in said
            else "triage_note_needed" if "needs an explanation" in said
            else "triage_reason_needed"
        )  # fmt: skip
        kept = {"reason": form.get("reason", ""), "note": form.get("note", "")}
        return _page(found, practice, key, error=translate(message, lang), status=400, form=kept)
    flash(translate(f"triage_notice_{decision}", lang))
    return redirect(url_for("practice.practice_page"), code=303)
