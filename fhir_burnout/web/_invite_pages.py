"""The client's way in from an invitation: a link with a code, or the code typed in.

The code is kept in the browser's session until the client has signed in at the practice's
EHR (the standalone patient launch); then it is taken up for the signed-in patient
(``workflow.accept_invitation``). A code for someone else is refused without saying whose
it is, and the client's own programme is shown as usual.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, request, session, url_for
from sqlalchemy.orm import Session

from fhir_burnout.web._context import app_context
from fhir_burnout.web._launch import SessionExpired, current_session
from fhir_burnout.web._render import render
from fhir_burnout.web._typed_text import refused_fields
from fhir_burnout.workflow import (
    EnrolmentStateError,
    NotFoundError,
    accept_invitation,
    normalise_code,
)

bp = Blueprint("invite", __name__)
#: A code is 8 symbols; more than this is not a code.
MAX_TYPED = 32


def _remember(code: str) -> Any:
    session["invitation"] = normalise_code(code[:MAX_TYPED])
    try:
        row = current_session()
    except SessionExpired:
        row = None
    if row is not None and row.role == "patient":
        return redirect(url_for("launch.home"), code=303)  # signed in: take it up there
    return redirect(url_for("launch.standalone_login"), code=303)


@bp.get("/invite/<code>")
def invitation_link(code: str) -> Any:
    """The link the practice sends: remember its code, then sign in."""
    return _remember(code)


@bp.get("/invite")
def invitation_form() -> Any:
    """A page to type the code the practice gave."""
    return render("invite.html")


@bp.post("/invite")
def invitation_typed() -> Any:
    """The typed code: remember it, then sign in."""
    code = request.form.get("code", "").strip()
    if refused_fields():
        return render("invite.html", status=400, error="error_control_characters")
    if not code:
        return render("invite.html", status=400, error="invite_code_missing")
    return _remember(code)


def take_up_invitation(fhir_base: str, patient: str) -> str | None:
    """The invitation kept in this browser, taken up for the signed-in patient; the key of
    the message to show (None when there was none)."""
    code = session.pop("invitation", None)
    if not isinstance(code, str):
        return None
    state = app_context()
    try:
        with Session(state.engine) as db, db.begin():
            accept_invitation(db, code, fhir_base=fhir_base, patient=patient)
    except (NotFoundError, EnrolmentStateError):
        return "invite_not_yours"
    return "invite_accepted"
