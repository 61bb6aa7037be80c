"""Rate limits on the app's doors: launches, callbacks, invitation codes and the API.

Flask-Limiter counts, in the storage the config names (``rate_limit_storage``: memory://
counts per process, so under gunicorn each worker counts apart; redis:// counts for all
workers and hosts). Each limit is one of ``Settings.rate_limits`` for a group of endpoints,
counted per client address, and where there is one per account: the browser session or
signed-in launch (invitations), the invitation code itself, the API caller's client id as
its verified token names it, or the EHR whose notification token verified. A caller over a
limit gets 429 with ``Retry-After`` (RFC 6585 §4): a person a page with crisis help, a
program an OperationOutcome with code ``throttled`` (``web._crisis_pages``).

The address is the peer's, unless ``trusted_proxies`` says how many reverse proxies stand
in front of the app: then it is the one they name in X-Forwarded-For (Werkzeug's ProxyFix),
and only then, so a client cannot pick its own address by sending that header.

Keys that could say something (a code, a session id, a client id) are HMACs under the
app's secret key: Flask-Limiter logs a key when its limit is hit, and a log keeps nothing
a person typed or held.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable

from flask import Flask, request, session
from flask_limiter import ApplicationLimit, Limiter
from limits.errors import ConfigurationError
from werkzeug.middleware.proxy_fix import ProxyFix

from fhir_burnout.errors import ContentError, FhirBurnoutError
from fhir_burnout.settings import RateLimits, Settings
from fhir_burnout.web._context import AppContext, app_context
from fhir_burnout.workflow import normalise_code

#: The endpoints of each group of limits.
LAUNCH = frozenset({"launch.standalone_login", "launch.ehr_launch", "koppeltaal.hti_launch",
                    "koppeltaal.hti_launch_by_get"})  # fmt: skip
CALLBACK = frozenset({"launch.callback", "koppeltaal.hti_callback"})
INVITATION = frozenset({"invite.invitation_link", "invite.invitation_typed"})
BEARER_API = frozenset({"fhir_api.apply", "referral_api.push"})
NOTIFY = frozenset({"referral_notify.notify", "koppeltaal_notify.notify"})  # web._notify
MACHINE = BEARER_API | NOTIFY
#: Every endpoint some limit counts: the limiter looks at no other request.
DOORS = LAUNCH | CALLBACK | INVITATION | MACHINE
#: A typed code longer than this is not a code (``web._invite_pages.MAX_TYPED``).
MAX_CODE = 32


def _settings() -> Settings:
    settings: Settings = app_context().settings
    return settings


def _hashed(kind: str, value: str) -> str:
    """``value`` as a key that names it without telling it."""
    key = _settings().secret_key.encode()
    return f"{kind}:{hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:24]}"


def address() -> str:
    """The client's address (after ProxyFix, when proxies are trusted)."""
    return request.remote_addr or "unknown"


def _browser() -> str:
    """The signed-in launch, else the browser session (given one now when it has none, as
    a launch would: the invitation is kept in it)."""
    sid = session.get("sid")
    if isinstance(sid, str) and sid:
        return _hashed("sid", sid)
    if not isinstance(session.get("browser"), str):
        session["browser"] = secrets.token_urlsafe(24)
    return _hashed("browser", str(session["browser"]))


def _code() -> str:
    """The invitation code this request carries, as the app keeps it; "" when none."""
    if request.endpoint == "invite.invitation_link":
        raw = str((request.view_args or {}).get("code", ""))
    elif request.method == "POST":
        raw = request.form.get("code", "")
    else:
        return ""
    code = normalise_code(raw.strip()[:MAX_CODE])
    return _hashed("code", code) if code else ""


def verified_caller() -> str:
    """The API caller whose credentials verified: its token's client id, or the EHR of a
    notification; "" when they do not (the endpoint refuses it; the address still counts)."""
    state = app_context()
    if "rate_limit_caller" in request.environ:  # once a request: verifying costs a signature
        return str(request.environ["rate_limit_caller"])
    found = ""
    try:
        found = _verified_caller(state)
    except FhirBurnoutError:
        found = ""
    request.environ["rate_limit_caller"] = found
    return found


def _verified_caller(state: AppContext) -> str:
    # Imported here: the endpoints' modules import the app's state, this module is theirs.
    from fhir_burnout.web._bearer import authenticate  # noqa: PLC0415
    from fhir_burnout.web._notify import NOTIFIERS  # noqa: PLC0415

    settings: Settings = state.settings
    notifier = NOTIFIERS.get(request.endpoint or "")
    if notifier is not None:
        header = request.headers.get("Authorization")
        ehr = notifier.verified(settings, request.args.get("ehr", ""), header)
        return _hashed("ehr", ehr.fhir_base) if ehr is not None else ""
    claims, fhir_base = authenticate(state)
    client = claims.get("client_id") or claims.get("azp") or claims.get("sub")
    return _hashed("client", f"{fhir_base} {client}") if client else ""


def _group(
    limit: str,
    scope: str,
    endpoints: frozenset[str],
    key: Callable[[], str] | None = None,
) -> ApplicationLimit | None:
    """One limit shared by ``endpoints`` (None when switched off); a request without a key
    (no browser session, no verified caller) is not counted by it."""
    if not limit:
        return None

    def exempt() -> bool:
        return request.endpoint not in endpoints or (key is not None and not key())

    return ApplicationLimit(
        limit_provider=limit, key_function=key or address, scope=scope, exempt_when=exempt
    )


def limits_of(rates: RateLimits) -> list[str | Callable[[], str] | ApplicationLimit]:
    """The app's limits: per address on every door, per account where there is one."""
    groups = [
        _group(rates.launch, "launch", LAUNCH),
        _group(rates.callback, "callback", CALLBACK),
        _group(rates.invitation, "invitation", INVITATION),
        _group(rates.invitation, "invitation-browser", INVITATION, _browser),
        _group(rates.invitation_code, "invitation-code", INVITATION, _code),
        _group(rates.machine_address, "machine", MACHINE),
        _group(rates.machine, "machine-client", MACHINE, verified_caller),
    ]
    return [g for g in groups if g is not None]


def init_app(app: Flask, settings: Settings) -> Limiter:
    """Count requests on ``app``'s doors; before any other request hook, so a request over
    its limit costs nothing more (no token refresh, no database)."""
    if settings.trusted_proxies:
        # Only the hops the practice put there: X-Forwarded-For's last n addresses.
        proxied = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies)
        app.wsgi_app = proxied  # type: ignore[method-assign]
    rates = settings.rate_limits
    limiter = Limiter(
        address,
        application_limits=limits_of(rates),
        storage_uri=rates.storage,
        # No X-RateLimit-* headers: Flask-Limiter would put Retry-After on every answer
        # (a redirect too, RFC 9110 §10.2.3); the 429 alone carries it (retry_after()).
        headers_enabled=False,
        key_prefix="fhir-burnout",
    )
    # A page behind the doors (a module, a form) is counted by no limit: skip the limiter's
    # walk through every limit and its exemption for it, on every page a client opens.
    limiter.request_filter(lambda: request.endpoint not in DOORS)
    try:
        limiter.init_app(app)
    except ConfigurationError as exc:
        raise ContentError("config", "rate_limit_storage", str(exc)) from None
    return limiter


def retry_after() -> str:
    """Seconds until the limit this request hit lets it through again (RFC 9110 §10.2.3)."""
    limiter: Limiter | None = app_context().limiter
    hit = limiter.current_limit if limiter is not None else None
    seconds = int(hit.reset_at - time.time()) if hit is not None else 60
    return str(max(1, seconds))
