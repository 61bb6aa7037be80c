"""The Flask app: launch routes, the first screen, the app's JWKS.

``create_app(settings)`` builds an app; importing this package builds nothing.
"""

from __future__ import annotations

from pathlib import Path

import requests
from flask import Flask, jsonify
from werkzeug.wrappers import Response

from fhir_burnout.db import create_db_engine, reader, upgrade
from fhir_burnout.errors import ContentError
from fhir_burnout.integration import EhrClients
from fhir_burnout.koppeltaal import CONNECTION
from fhir_burnout.referral import load_triage
from fhir_burnout.resources import build_resources, load_programme, load_safety_rules
from fhir_burnout.settings import Settings
from fhir_burnout.smart_launch import DiscoveryCache, public_jwks
from fhir_burnout.web import (
    _assets,
    _client_pages,
    _confirmations,
    _crisis_pages,
    _csrf,
    _fhir_api,
    _gate,
    _headers,
    _invite_pages,
    _koppeltaal_pages,
    _koppeltaal_results,
    _launch,
    _notify,
    _practitioner_pages,
    _programme_pages,
    _progress_pages,
    _questionnaire_pages,
    _rate_limits,
    _redact,
    _referral_api,
    _render,
    _request_ids,
    _triage_pages,
    _typed_text,
)
from fhir_burnout.web._context import EXTENSION, AppContext
from fhir_burnout.web._i18n import translate
from fhir_burnout.web._koppeltaal_results import results_renderer
from fhir_burnout.web._memo import Memo
from fhir_burnout.web._session_tokens import SessionTokens
from fhir_burnout.web._sessions import SessionStore, purge
from fhir_burnout.web._urls import App
from fhir_burnout.workflow import Definitions

__all__ = ["create_app"]
__all__ += ["SessionStore", "SessionTokens", "purge", "translate"]  # imports18: for the CLI
__all__ += ["results_renderer"]  # kt-results: the worker renders the results document

DEFAULT_ROOT = Path(__file__).resolve().parent.parent.parent


def create_app(settings: Settings | None = None) -> Flask:
    """The app for these settings (default: the config file named by FHIR_BURNOUT_CONFIG)."""
    settings = settings or Settings.from_env()
    settings.check_safety()  # no promise, no owner: no app (SafetyConfigError names the key)
    app = App(__name__)
    https = settings.base_url.startswith("https://")
    # Inside an EHR's iframe (another site) a Lax cookie set at /launch never comes back on
    # /callback. SameSite=None lets it cross (it requires Secure); Partitioned (CHIPS) keys it
    # to the framing EHR's site, so no other site that frames the app shares the session.
    # The CSRF token lives in this cookie too: it is the only cookie a launch needs.
    cross_site = https and bool(settings.framing_origins())
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="None" if cross_site else "Lax",
        SESSION_COOKIE_SECURE=https,
        SESSION_COOKIE_PARTITIONED=cross_site,
    )
    http = requests.Session()
    engine = create_db_engine(settings.database_url)
    upgrade(engine)  # every process may start first: upgrade() takes a lock and is idempotent
    programme, problems = load_programme(settings.content_root or DEFAULT_ROOT)
    if programme is None or problems:
        raise ContentError(str(settings.content_root), "", "the programme content has problems")
    definitions = Definitions.from_resources(build_resources(programme))
    # The exclusion criteria shown at referral triage: a practice's app does not start
    # without them (content/triage.yaml).
    triage = load_triage(settings.content_root or DEFAULT_ROOT)
    rules, broken = load_safety_rules(settings.content_root or DEFAULT_ROOT, programme.canonical)
    if broken:  # a safety rule that cannot be read is never silently skipped
        raise ContentError(str(broken[0]), "", "fix the safety rules (fhir-burnout validate)")
    _request_ids.init_app(app)  # first: every log line of a request carries its id
    # Then the limits: a request over its limit costs nothing more.
    limiter = _rate_limits.init_app(app, settings)
    app.extensions[EXTENSION] = AppContext(
        settings=settings,
        engine=engine,
        reader=reader(engine),  # for requests that only read
        definitions=definitions,
        triage=triage,
        safety_rules=rules,
        memo=Memo(definitions),
        store=SessionStore(engine, settings.token_key, settings.pending_launches_max),
        http=http,
        discovery=DiscoveryCache(http),
        ehr_clients=EhrClients(settings, connections={"koppeltaal": CONNECTION}),
        limiter=limiter,
    )
    _headers.init_app(app)
    _assets.init_app(app, settings.theme)  # the pages' CSS and the practice's theme
    _typed_text.init_app(app)
    _redact.install()
    _launch.init_app(app)
    _csrf.init_app(app)  # after the launch handle: the refusal page keeps the tab's launch
    _gate.init_app(app)
    _crisis_pages.init_app(app)
    _render.init_app(app)  # Flask-Babel: the person's language as the locale
    _confirmations.init_app(app)
    _register_blueprints(app)

    @app.get("/.well-known/jwks.json")
    def jwks() -> Response:
        """The app's public keys, for EHRs that verify our private_key_jwt assertions."""
        response = jsonify(public_jwks(settings.keys_dir))
        response.headers["Cache-Control"] = "max-age=3600"
        return response

    return app


def _register_blueprints(app: Flask) -> None:
    """Every page and endpoint of the app, by blueprint."""
    app.register_blueprint(_launch.bp)
    app.register_blueprint(_invite_pages.bp)
    app.register_blueprint(_fhir_api.bp)
    app.register_blueprint(_client_pages.bp)
    app.register_blueprint(_questionnaire_pages.bp)
    app.register_blueprint(_progress_pages.bp)
    app.register_blueprint(_programme_pages.bp)
    app.register_blueprint(_practitioner_pages.bp)
    app.register_blueprint(_triage_pages.bp)
    app.register_blueprint(_referral_api.bp)
    app.register_blueprint(_koppeltaal_pages.bp)
    for notify_bp in _notify.blueprints:  # /referrals/notify, /koppeltaal/notify
        app.register_blueprint(notify_bp)
    app.register_blueprint(_koppeltaal_results.bp)
