"""Launch routes: EHR launch (/launch), standalone patient launch (/login), /callback.

SMART App Launch 2.2. The browser session holds two opaque values: a browser id that binds
pending launches to this browser, and the id of the signed-in launch session. Tokens stay
in the database, encrypted.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from typing import Any

import requests
from flask import Blueprint, current_app, g, redirect, request, session, url_for
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from fhir_burnout.errors import FhirServerError
from fhir_burnout.fhir import FhirClient
from fhir_burnout.smart_launch import (
    LaunchError,
    TokenRequestError,
    UntrustedIssuerError,
    begin_launch,
    complete_launch,
    refresh,
    trusted_ehr,
)
from fhir_burnout.smart_launch._scopes import ScopeRequest
from fhir_burnout.web._i18n import format_date
from fhir_burnout.web._render import language, message_page, render
from fhir_burnout.web._sessions import LaunchSessionRow, SessionStore
from fhir_burnout.web._waiting_help import waiting_help
from fhir_burnout.workflow import notes_for, programme_views

bp = Blueprint("launch", __name__)
log = logging.getLogger(__name__)
REFRESH_MARGIN = 60.0
#: The newest notes from the care professional on the client's first page.
NOTES_SHOWN = 5


def _state() -> dict[str, Any]:
    return dict(current_app.extensions["fhir_burnout"])


def _browser_id() -> str:
    if "browser" not in session:
        session["browser"] = secrets.token_urlsafe(24)
    return str(session["browser"])


def _start(iss: str, launch: str | None) -> Response | tuple[str, int]:
    state = _state()
    try:
        ehr = trusted_ehr(iss, state["settings"].ehrs)
    except UntrustedIssuerError:
        log.info("launch refused: untrusted iss")
        return message_page("error_untrusted", 400)
    if ehr.mode != "smart":  # a Koppeltaal domain launches at /koppeltaal/launch (HTI)
        log.info("launch refused: the EHR is connected by %s, not SMART", ehr.mode)
        return message_page("error_untrusted", 400)
    try:
        config = state["discovery"].get(ehr.fhir_base)
        url, pending, scopes = begin_launch(
            ehr, config, f"{state['settings'].base_url}/callback", launch=launch
        )
    except LaunchError as exc:
        log.warning("launch could not start: %s", type(exc).__name__)
        return message_page("error_launch", 502)
    store: SessionStore = state["store"]
    store.save_pending(pending, _browser_id(), {"purposes": list(scopes.purposes)})
    return redirect(url, code=302)


@bp.route("/launch", methods=["GET", "POST"])
def ehr_launch() -> Response | tuple[str, int]:
    """EHR launch: the EHR opens us with ``iss`` and ``launch`` (GET or form POST)."""
    values = request.values
    iss, launch = values.get("iss", ""), values.get("launch", "")
    if not iss or not launch:
        return message_page("error_launch", 400)
    return _start(iss, launch)


@bp.route("/login")
def standalone_login() -> Response | tuple[str, int]:
    """Standalone patient launch at the practice's configured EHR."""
    settings = _state()["settings"]
    if not settings.default_ehr:
        return message_page("error_untrusted", 400)
    return _start(settings.default_ehr, None)


@bp.route("/callback")
def callback() -> Response | tuple[str, int]:
    """The authorization server sends the person back here with ``code`` and ``state``."""
    state = _state()
    store: SessionStore = state["store"]
    params = {
        k: v
        for k, v in request.args.items()
        if k in ("code", "state", "error", "error_description")
    }
    try:
        pending, extra = store.take_pending(params.get("state", ""), _browser_id())
        ehr = trusted_ehr(pending.fhir_base, state["settings"].ehrs)
        config = state["discovery"].get(ehr.fhir_base)
        scopes = ScopeRequest(pending.scope, tuple(tuple(p) for p in extra["purposes"]))
        result = complete_launch(ehr, config, pending, params, state["http"], scopes=scopes)
    except (LaunchError, TokenRequestError) as exc:
        log.info("launch refused at callback: %s", type(exc).__name__)
        return message_page("error_launch", 400)
    session.pop("sid", None)
    session["sid"] = store.create_session(ehr.fhir_base, result, result.role)
    if result.locale:
        session["locale"] = result.locale
    return redirect(url_for("launch.home"))


def current_launch() -> tuple[LaunchSessionRow, str] | None:
    """The signed-in session and a fresh access token; refreshed shortly before expiry."""
    state = _state()
    store: SessionStore = state["store"]
    sid = session.get("sid")
    row = store.get(str(sid)) if sid else None
    if row is None:
        return None
    if row.expires_at - REFRESH_MARGIN > time.time():
        return row, store.access_token(row)
    refresh_token = store.refresh_token(row)
    if not refresh_token:
        raise SessionExpired
    try:
        ehr = trusted_ehr(row.fhir_base, state["settings"].ehrs)
        result = refresh(ehr, state["discovery"].get(ehr.fhir_base), refresh_token, state["http"])
    except TokenRequestError as exc:
        if exc.error == "temporarily_unavailable" or (exc.status or 0) >= 500:
            raise EhrUnavailable from None  # no answer: the authorization may well stand
        raise SessionExpired from None
    except LaunchError:
        raise SessionExpired from None
    store.update_tokens(row.id, result)
    return row, result.access_token


#: The longest a signed-in session lasts, whatever the EHR's tokens allow (seconds).
SESSION_MAX = 12 * 3600.0


def current_session(
    *, allow_ended: bool = False, db: Session | None = None
) -> LaunchSessionRow | None:
    """The signed-in session, from our own database only: the EHR is not asked. The client's
    pages work on local state, so they keep working (and keep what the client typed) while
    the EHR or its authorization server is down. Raises SessionExpired when the session has
    ended (its EHR authorization ran out with nothing to renew it, or it is older than
    SESSION_MAX), unless ``allow_ended``: to keep a draft the client was sending."""
    if "launch_session" not in g:  # once a request
        store: SessionStore = _state()["store"]
        sid = session.get("sid")
        g.launch_session = store.get(str(sid), db) if sid else None
    row: LaunchSessionRow | None = g.launch_session
    if row is None:
        return None
    now = time.time()
    ran_out = row.expires_at <= now and not row.refresh_token
    if (ran_out or now - row.created_at > SESSION_MAX) and not allow_ended:
        raise SessionExpired
    return row


class SessionExpired(Exception):  # noqa: N818 - a signal inside the web layer, not an error we raise out
    """The session's tokens can no longer be refreshed."""


class EhrUnavailable(Exception):  # noqa: N818 - a signal inside the web layer, like SessionExpired
    """The EHR's authorization server did not answer; local pages carry on without it."""


def person_name(resource: dict[str, Any]) -> str:
    """A Patient's or Practitioner's name as people write it (text, else given and family)."""
    for name in resource.get("name", []):
        if name.get("text"):
            return str(name["text"])
        parts = [*name.get("given", []), name.get("family", "")]
        if any(parts):
            return " ".join(p for p in parts if p)
    return ""


def _names_from_ehr(row: LaunchSessionRow, token: str | None) -> tuple[str, dict[str, Any] | None]:
    """The signed-in person's own name (read once per session, then kept in the session
    cookie) and, for a care professional, the patient banner (read each time: it is the
    patient's data, not theirs). ("", None) while the EHR does not answer: they are nice to
    have, and the page works without them."""
    kept = session.get("user_name")
    user_name = str(kept[1]) if isinstance(kept, list) and kept[:1] == [row.id] else None
    banner = None
    if token is None:
        return user_name or "", None
    try:
        with FhirClient(row.fhir_base, token=token, session=requests.Session()) as client:
            if user_name is None and row.fhir_user:
                resource_type, resource_id = row.fhir_user.rstrip("/").split("/")[-2:]
                user_name = person_name(client.read(resource_type, resource_id))
                session["user_name"] = [row.id, user_name]
            if row.role == "practitioner" and row.need_patient_banner and row.patient:
                patient = client.read("Patient", row.patient)
                identifier = next((i.get("value") for i in patient.get("identifier", [])), None)
                banner = {
                    "name": person_name(patient),
                    "birth_date": format_date(patient.get("birthDate"), language()),
                    "identifier": identifier,
                }
    except FhirServerError:
        pass  # no answer or an error: the names wait for the next page
    return user_name or "", banner


@bp.route("/")
def home() -> str | tuple[str, int]:
    """The first screen: who you are, and the patient banner for a care professional."""
    try:
        row = current_session()
        fresh = current_launch()
    except SessionExpired:
        return message_page("error_expired", 401)
    except EhrUnavailable:
        fresh = None  # the EHR is away: the programme is ours, only the names wait
    if row is None:
        return message_page("error_signed_out", 401)
    user_name, banner = _names_from_ehr(row, fresh[1] if fresh else None)
    invitation = None
    if row.role == "patient" and row.patient:
        from fhir_burnout.web._invite_pages import take_up_invitation  # noqa: PLC0415

        invitation = take_up_invitation(row.fhir_base, row.patient)
    programmes, notes = [], []
    if row.patient:
        state = current_app.extensions["fhir_burnout"]
        with Session(state["reader"]) as db:
            programmes = programme_views(
                db, state["definitions"], fhir_base=row.fhir_base, patient=row.patient,
                lang=language(),
            )  # fmt: skip
            if row.role == "patient":  # the care professional reads them on their own page
                notes = [
                    {
                        "text": n.text,
                        "date": format_date(n.created_at.date().isoformat(), language()),
                    }
                    for n in notes_for(db, row.fhir_base, row.patient)[:NOTES_SHOWN]
                ]
    return render(
        "home.html",
        role=row.role if row.role in ("practitioner", "patient") else "patient",
        user_name=user_name,
        banner=banner,
        not_granted=json.loads(row.not_granted),
        programmes=programmes,
        notes=notes,
        invitation=invitation,
        waiting_help=waiting_help(row.fhir_base, language()),
    )
