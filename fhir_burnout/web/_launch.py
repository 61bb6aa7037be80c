"""Launch routes: EHR launch by a care professional (/launch) or from a patient portal
(/launch/patient), standalone patient launch (/login), /callback.

SMART does not say who will sign in before the authorization, so the launch URL does: the
EHR registers /launch for its care professionals and its portal registers /launch/patient,
and each asks only the scopes its role uses (``smart_launch._scopes``).

SMART App Launch 2.2. The browser session holds two opaque values: a browser id that binds
pending launches to this browser, and the id of the signed-in launch session. Tokens stay
in the database, encrypted.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from collections.abc import Callable
from typing import Any, TypeVar

import requests
from flask import Blueprint, Flask, current_app, g, redirect, request, session, url_for
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from fhir_burnout.errors import FhirBurnoutError, FhirServerError
from fhir_burnout.fhir import FhirClient
from fhir_burnout.smart_launch import (
    LaunchError,
    Role,
    ScopeRequest,
    TokenKind,
    TokenRequestError,
    UntrustedIssuerError,
    begin_launch,
    complete_launch,
    revoke,
    trusted_ehr,
)
from fhir_burnout.sync import set_cause
from fhir_burnout.web import _callbacks as callbacks
from fhir_burnout.web._callbacks import browser_id
from fhir_burnout.web._context import app_context
from fhir_burnout.web._csrf import csrf_exempt
from fhir_burnout.web._i18n import format_date, translate
from fhir_burnout.web._render import language, message_page, render
from fhir_burnout.web._session_tokens import REFRESH_MARGIN, Refused, renewed
from fhir_burnout.web._sessions import SESSION_MAX, LaunchSessionRow, SessionStore
from fhir_burnout.web._waiting_help import waiting_help
from fhir_burnout.workflow import notes_for

bp = Blueprint("launch", __name__)
log = logging.getLogger(__name__)
#: The newest notes from the care professional on the client's first page.
NOTES_SHOWN = 5


def _start(iss: str, launch: str | None, role: Role) -> Response | tuple[str, int]:
    state = app_context()
    try:
        ehr = trusted_ehr(iss, state.settings.ehrs)
    except UntrustedIssuerError:
        log.info("launch refused: untrusted iss")
        return message_page("error_untrusted", 400)
    if ehr.mode != "smart":  # a Koppeltaal domain launches at /koppeltaal/launch (HTI)
        log.info("launch refused: the EHR is connected by %s, not SMART", ehr.mode)
        return message_page("error_untrusted", 400)
    try:
        config = state.discovery.get(ehr.fhir_base)
        url, pending, scopes = begin_launch(
            ehr, config, f"{state.settings.base_url}/callback", launch=launch, role=role
        )
    except LaunchError as exc:
        log.warning("launch could not start: %s", type(exc).__name__)
        return message_page("error_launch", 502)
    store: SessionStore = state.store
    store.save_pending(pending, browser_id(), {"purposes": list(scopes.purposes)})
    return redirect(url, code=302)


@bp.route("/launch", methods=["GET", "POST"])
@csrf_exempt
def ehr_launch() -> Response | tuple[str, int]:
    """EHR launch by a care professional: the EHR opens us with ``iss`` and ``launch`` (GET
    or form POST)."""
    return _ehr_launch("practitioner")


@bp.route("/launch/patient", methods=["GET", "POST"])
@csrf_exempt
def portal_launch() -> Response | tuple[str, int]:
    """EHR launch from a patient portal: the client is the user, so only their scopes."""
    return _ehr_launch("patient")


def _ehr_launch(role: Role) -> Response | tuple[str, int]:
    values = request.values
    iss, launch = values.get("iss", ""), values.get("launch", "")
    if not iss or not launch:
        return message_page("error_launch", 400)
    return _start(iss, launch, role)


@bp.route("/login")
def standalone_login() -> Response | tuple[str, int]:
    """Standalone patient launch at the practice's configured EHR."""
    settings = app_context().settings
    if not settings.default_ehr:
        return message_page("error_untrusted", 400)
    return _start(settings.default_ehr, None, "patient")


@bp.route("/callback")
def callback() -> Response | tuple[str, int]:
    """The authorization server sends the person back here with ``code`` and ``state``."""
    state = app_context()
    back = callbacks.callback()
    try:
        pending, extra, ehr = back.take(trusted_ehr, koppeltaal=False)
        config = state.discovery.get(ehr.fhir_base)
        scopes = ScopeRequest(pending.scope, tuple(tuple(p) for p in extra["purposes"]))
        result = complete_launch(ehr, config, pending, back.params, state.http, scopes=scopes)
    except (LaunchError, TokenRequestError) as exc:
        reference = secrets.token_hex(4)
        back.refused(exc, reference)
        text = (
            translate("error_launch", language())
            + " "
            + translate("error_reference", language(), reference=reference)
        )
        return render("message.html", status=400, message=text)
    sign_in(state.store.create_session(ehr.fhir_base, result, result.role))
    if result.locale:
        session["locale"] = result.locale
    return redirect(url_for("launch.home"))


@bp.post("/logout")
def logout() -> Response | tuple[str, int]:
    """Sign out of this launch: its session and tokens are deleted here (the EHR's own
    sign-in is the EHR's); other tabs' launches stay. The page says so, with crisis help."""
    sid = current_sid()
    if sid:
        held = _held_tokens(sid)  # read before the row and its tokens go
        # A session kept for writes it caused (writes = "user") keeps its tokens, for the
        # worker only: revoking them would strand those writes. The pages refuse it at once.
        if app_context().store.end(sid):
            _revoke_tokens(held)
    kept = [p for p in session.get("launches") or [] if isinstance(p, list) and p[1] != sid]
    session["launches"] = kept
    if session.get("sid") == sid:
        session.pop("sid", None)
        if kept:
            session["sid"] = kept[-1][1]
    g.ctx = None  # the page after it belongs to no launch
    g.launch_session = None
    return message_page("signed_out_done", 200)


#: A signed-out session's EHR and tokens, refresh token first (None: nothing to revoke).
_Held = tuple[str, tuple[tuple[str | None, TokenKind], ...]] | None


def _held_tokens(sid: str) -> _Held:
    """The session's EHR and its tokens, decrypted, while the row is still there."""
    store: SessionStore = app_context().store
    try:
        row = store.get(sid)
        if row is None:
            return None
        tokens: tuple[tuple[str | None, TokenKind], ...] = (
            (store.refresh_token(row), "refresh_token"),
            (store.access_token(row), "access_token"),
        )
        return row.fhir_base, tokens
    except SQLAlchemyError as exc:
        log.info("a signed-out session's tokens could not be read: %s", type(exc).__name__)
        return None


def _revoke_tokens(held: _Held) -> None:
    """At logout, the EHR revokes the session's refresh token, then its access token, where
    it offers revocation (RFC 7009): a token copied from here is then worth nothing there
    either. The logout never waits on it to fail: an EHR that does not answer or refuses
    is logged by the error's type, and the tokens are deleted here all the same."""
    if held is None:
        return
    state = app_context()
    fhir_base, tokens = held
    try:
        ehr = trusted_ehr(fhir_base, state.settings.ehrs)
        config = state.discovery.get(ehr.fhir_base)
        for token, hint in tokens:
            if token and not revoke(ehr, config, token, state.http, hint=hint):
                return  # the EHR offers no revocation: its tokens run out by themselves
    except FhirBurnoutError as exc:
        log.info("the EHR did not revoke a signed-out session's tokens: %s", type(exc).__name__)


# --- one context per launch --------------------------------------------------------------
#
# A care professional may have two charts open, in two tabs of one browser; the cookie is
# shared by both. So each launch gets a handle of its own, which every URL and form of that
# tab carries (``ctx``), and the browser session keeps the handles of its recent launches.
# A page asked without a handle is for the newest launch (a bookmark, an old link); an
# unknown handle is for no one (the person signs in again), never for another launch.

#: The launches one browser keeps apart; the oldest is forgotten first.
LAUNCHES_KEPT = 8
_HANDLE = re.compile(r"[A-Za-z0-9_-]{8,64}")


def sign_in(session_id: str) -> str:
    """Keep a new launch session beside this browser's others and make it this request's
    context; returns its handle."""
    handle = secrets.token_urlsafe(12)
    kept = [pair for pair in session.get("launches") or [] if isinstance(pair, list)]
    # A list of pairs, not a dict: the session cookie's JSON sorts keys, and age matters.
    session["launches"] = [*kept, [handle, session_id]][-LAUNCHES_KEPT:]
    session["sid"] = session_id  # pages opened without a handle: the newest launch
    g.ctx = handle
    g.pop("launch_session", None)
    return handle


def _requested_handle() -> str | None:
    """The launch handle this request names (query string, else a form field), if valid."""
    value = request.args.get("ctx")
    if (
        value is None
        and request.method == "POST"
        and request.mimetype
        in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        )
    ):
        value = request.form.get("ctx")
    return value if value and _HANDLE.fullmatch(value) else None


def current_sid() -> str | None:
    """The id of the launch session this request is for: the one its handle names, else
    (no handle) the browser's newest."""
    handle = g.get("ctx")
    if handle:
        pairs = session.get("launches") or []
        return next((str(p[1]) for p in pairs if isinstance(p, list) and p[0] == handle), None)
    sid = session.get("sid")
    return str(sid) if sid else None


#: The endpoints of files, which no launch handle follows.
_FILES = ("static", "assets")


def init_app(app: Flask) -> None:
    """Every request knows its launch handle, and every URL the app builds keeps it."""

    @app.before_request
    def _take_handle() -> None:
        g.ctx = _requested_handle()
        _renew_or_end()
        # Whatever this request queues for the EHR was caused by this launch's person: an
        # EHR that takes writes only with their authorisation gets it with their tokens.
        set_cause(current_sid() if request.endpoint not in (None, "static") else None)

    @app.teardown_request
    def _forget_cause(_exc: BaseException | None) -> None:
        set_cause(None)  # the thread serves other requests (and other people) next

    @app.url_defaults
    def _keep_handle(endpoint: str, values: dict[str, Any]) -> None:
        # Not on files (static/, the theme): one URL for all launches, kept by the browser.
        if g.get("ctx") and endpoint.partition(".")[0] not in _FILES and "ctx" not in values:
            values["ctx"] = g.ctx


#: The views whose forms act on the launch's client (see ``acts_on_client``).
_ACTING: set[Callable[..., Any]] = set()
View = TypeVar("View", bound=Callable[..., Any])


def acts_on_client(view: View) -> View:
    """Mark a view whose POST acts on the launch's client: its form must name that client
    (``patient``), else nothing happens and the person reads why (409). A page left open for
    one client (another tab, another launch) must never act on another."""
    _ACTING.add(view)
    return view


class WrongClient(Exception):  # noqa: N818 - a signal inside the web layer, like SessionExpired
    """A form names another client than its launch's."""


def check_acting_for(row: LaunchSessionRow) -> None:
    """Raise WrongClient when this request's form acts on another client than ``row``'s
    (only for views marked ``acts_on_client``; called once whose session it is is known)."""
    if request.method != "POST" or request.endpoint is None:
        return
    if current_app.view_functions.get(request.endpoint) not in _ACTING:
        return  # (a form without its token never gets here: web/_csrf.py refused it)
    named = request.form.get("patient", "")
    if not row.patient or not secrets.compare_digest(named, row.patient):
        log.info("a form named another client than its launch's: refused")
        raise WrongClient


def practitioner_reference(fhir_user: str | None) -> str | None:
    """``Practitioner/<id>`` from the fhirUser claim (absolute or relative)."""
    parts = (fhir_user or "").rstrip("/").split("/")
    if len(parts) < 2 or parts[-2] != "Practitioner" or not parts[-1]:
        return None
    return f"Practitioner/{parts[-1]}"


def current_launch() -> tuple[LaunchSessionRow, str] | None:
    """The signed-in session and a fresh access token; refreshed shortly before expiry."""
    state = app_context()
    store: SessionStore = state.store
    sid = current_sid()
    row = store.get(sid) if sid else None
    if row is None or row.ended_at is not None:
        return None
    try:
        token = renewed(store, row, state.settings.ehrs, state.discovery, state.http)
    except Refused:
        # The EHR refused: the authorisation has ended (revoked, say), so the session ends
        # for every page, not only this one. Its row stays until the worker purges it, so
        # what the person was sending can still be kept as their draft.
        log.info("the session's authorisation ended (a refresh refused, or none): it ends")
        raise SessionExpired from None
    except TokenRequestError:
        raise EhrUnavailable from None  # no answer: the authorization may well stand
    except LaunchError:
        raise SessionExpired from None
    return row, token


def current_session(
    *, allow_ended: bool = False, db: Session | None = None
) -> LaunchSessionRow | None:
    """The signed-in session, from our own database only: the EHR is not asked. The client's
    pages work on local state, so they keep working (and keep what the client typed) while
    the EHR or its authorization server is down. Raises SessionExpired when the session has
    ended (its EHR authorization ran out with nothing to renew it, or it is older than
    SESSION_MAX), unless ``allow_ended``: to keep a draft the client was sending."""
    if "launch_session" not in g:  # once a request
        store: SessionStore = app_context().store
        sid = current_sid()
        g.launch_session = store.get(sid, db) if sid else None
    row: LaunchSessionRow | None = g.launch_session
    if row is None or row.ended_at is not None:
        return None  # signed out: this browser's (or a copied) cookie reaches nothing
    now = time.time()
    ran_out = row.expires_at <= now and not row.refresh_token
    if (ran_out or now - row.created_at > SESSION_MAX) and not allow_ended:
        raise SessionExpired
    return row


def _renew_or_end() -> None:
    """Before a page: when its session's access token has (nearly) run out, renew it, so a
    refused renewal (an authorisation the EHR ended) ends the session on every page, also
    those that need nothing from the EHR. An EHR that does not answer changes nothing: local
    pages carry on without it. Done before the view, outside its transactions (on SQLite a
    second writer inside one would wait for the lock the view holds)."""
    sid = current_sid() if request.endpoint not in (None, "static") else None
    if not sid:
        return
    store: SessionStore = app_context().store
    if (store.renewable_at(sid) or 0.0) - REFRESH_MARGIN > time.time():
        return  # good for a while yet, as this process last read it: no read
    try:
        row = store.get(sid)
    except SQLAlchemyError:
        return  # the database is away: the view answers for that (and keeps what was typed)
    if (
        row is None
        or row.ended_at is not None
        or not row.refresh_token
        or row.expires_at - REFRESH_MARGIN > time.time()
    ):
        return
    try:
        current_launch()
    except (EhrUnavailable, SessionExpired):
        return  # away: carry on; refused: the session is ended, and the view says so


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
    """The signed-in person's own name (read once per session and kept with it, encrypted,
    never in the cookie) and, for a care professional, the patient banner
    (``patient_banner``). The name is "" while the EHR does not answer: it is nice to have,
    and the page works without it."""
    store: SessionStore = app_context().store
    user_name = store.user_name(row)
    if token and user_name is None and row.fhir_user:
        try:
            with FhirClient(row.fhir_base, token=token, session=requests.Session()) as client:
                resource_type, resource_id = row.fhir_user.rstrip("/").split("/")[-2:]
                user_name = person_name(client.read(resource_type, resource_id))
                store.remember_name(row.id, user_name)
        except FhirServerError:
            pass  # no answer or an error: the name waits for the next page
    return user_name or "", patient_banner(token)


def patient_banner(token: str | None = None) -> dict[str, Any] | None:
    """The patient banner on a care professional's page: the launch's client by name, birth
    date and identifier, read from the EHR each time (it is the patient's data, not theirs),
    whatever ``need_patient_banner`` said: nobody should act on a client they cannot see
    named. While the EHR does not answer it still names the client by their EHR id. None on
    a client's own pages."""
    if "banner" in g:
        return g.banner  # type: ignore[no-any-return]
    row: LaunchSessionRow | None = g.get("launch_session")
    banner: dict[str, Any] | None = None
    if row is not None and row.role == "practitioner" and row.patient:
        banner = {"name": "", "birth_date": "", "identifier": None, "id": row.patient}
        if token is None:
            try:
                fresh = current_launch()
            except (SessionExpired, EhrUnavailable):
                fresh = None
            token = fresh[1] if fresh else None
        if token:
            try:
                with FhirClient(row.fhir_base, token=token, session=requests.Session()) as c:
                    patient = c.read("Patient", row.patient)
                banner["name"] = person_name(patient)
                banner["birth_date"] = format_date(patient.get("birthDate"), language())
                banner["identifier"] = next(
                    (i.get("value") for i in patient.get("identifier", [])), None
                )
            except FhirServerError:
                pass  # the id stands in for the name until the EHR answers
    g.banner = banner
    return banner


@bp.route("/")
def home() -> str | tuple[str, int]:
    """The first screen: who you are, and the patient banner for a care professional."""
    row = current_session()  # an ended session: the gate's page (web/_gate.py)
    try:
        fresh = current_launch()
    except EhrUnavailable:
        fresh = None  # the EHR is away: the programme is ours, only the names wait
    if row is None:
        return message_page("error_signed_out", 401)
    user_name, banner = _names_from_ehr(row, fresh[1] if fresh else None)
    invitation = None
    if row.role == "patient" and row.patient:
        from fhir_burnout.web._invite_pages import take_up_invitation  # noqa: PLC0415

        invitation = take_up_invitation(row.fhir_base, row.patient)
    programmes, notes, responded = [], [], None
    if row.patient:
        from fhir_burnout.web._programme_pages import home_programmes  # noqa: PLC0415

        programmes = home_programmes(row.fhir_base, row.patient, language())
        state = app_context()
        with Session(state.reader) as db:
            if row.role == "patient":  # the care professional reads them on their own page
                notes = [
                    {
                        "text": n.text,
                        "date": format_date(n.created_at.date().isoformat(), language()),
                    }
                    for n in notes_for(db, row.fhir_base, row.patient)[:NOTES_SHOWN]
                ]
                # A care professional responded to an answer: one line, with the way there.
                from fhir_burnout.web._thread_views import response_notice  # noqa: PLC0415

                responded = response_notice(db, row.fhir_base, row.patient, language())
    return render(
        "home.html",
        role=row.role if row.role in ("practitioner", "patient") else "patient",
        user_name=user_name,
        banner=banner,
        not_granted=json.loads(row.not_granted),
        programmes=programmes,
        notes=notes,
        responded=responded,
        invitation=invitation,
        waiting_help=waiting_help(row.fhir_base, language()),
    )
