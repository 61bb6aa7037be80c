"""SMART App Launch 2.2: EHR launch and standalone patient launch, as functions without state.

``begin_launch`` builds the authorization URL and a :class:`PendingLaunch` (state, nonce,
PKCE verifier) that the web layer keeps server-side, bound to the browser session, and
uses once. ``complete_launch`` checks the callback, exchanges the code, verifies the
id_token and returns the launch context. Only trusted EHRs are ever contacted.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

import requests
from authlib.common.security import generate_token
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from fhir_burnout.smart_launch._backend_services import (
    ASSERTION_TYPE,
    TokenRequestError,
    assertion_algorithm,
    client_assertion,
    post_token_request,
    with_kid,
)
from fhir_burnout.smart_launch._discovery import SmartConfiguration
from fhir_burnout.smart_launch._errors import (
    AuthorizationDeniedError,
    DiscoveryError,
    StateError,
    UntrustedIssuerError,
)
from fhir_burnout.smart_launch._id_token import fetch_jwks, openid_issuer, verify_id_token
from fhir_burnout.smart_launch._scopes import Role, ScopeRequest, launch_scopes, missing_purposes

AuthMethod = Literal["none", "client_secret_basic", "private_key_jwt"]


#: The two ways an EHR connects the programme (docs/architecture.md, "The seam where an EHR
#: connects").
IntegrationMode = Literal["smart", "koppeltaal"]
MODES: tuple[IntegrationMode, ...] = ("smart", "koppeltaal")

#: Whether an EHR's id_tokens must echo the launch's nonce ("echo"), or may carry one of the
#: authorization service's own ("any": the Koppeltaal reference auth service; issue 19).
IdTokenNonce = Literal["echo", "any"]
ID_TOKEN_NONCES: tuple[IdTokenNonce, ...] = ("echo", "any")


class LaunchClient(Protocol):
    """What the launch functions read of an EHR the practice configured: its FHIR base and
    how the app authenticates and asks scopes there (``settings.Ehr`` is one; this package
    lies below ``settings``, so it names only what it reads: docs/architecture.md)."""

    @property
    def fhir_base(self) -> str:
        """The EHR's FHIR base URL, without a trailing slash."""

    @property
    def client_id(self) -> str:
        """The app's client id at the EHR's authorization server."""

    @property
    def auth_method(self) -> AuthMethod:
        """How the app authenticates at the token endpoint."""

    @property
    def client_secret(self) -> str | None:
        """The secret for ``client_secret_basic``."""

    @property
    def private_jwk(self) -> dict[str, Any] | None:
        """The private key for ``private_key_jwt``."""

    @property
    def user_writes(self) -> bool:
        """The worker writes with the launching person's tokens: the launch asks the write
        scopes those writes need."""

    @property
    def scopes_practitioner(self) -> str | None:
        """The identity and resource scopes a care professional's launch asks (None: the
        app's defaults)."""

    @property
    def scopes_patient(self) -> str | None:
        """The same for a client's launch."""

    @property
    def offline_access(self) -> bool | None:
        """Ask ``offline_access`` (true), never (false), or as the role needs it (None)."""

    @property
    def nonce_echoed(self) -> bool:
        """The id_token must carry the nonce the launch sent (OpenID Connect Core §3.1.3.7);
        false where the authorization service puts a fresh one of its own (the Koppeltaal
        reference, issue 19), so replay protection rests on ``state``, PKCE and the launch
        token's ``jti``."""


_Client = TypeVar("_Client", bound=LaunchClient)


def trusted_ehr(iss: str, ehrs: Sequence[_Client]) -> _Client:
    """The configured EHR whose FHIR base is exactly ``iss``; anything else is refused."""
    wanted = iss.rstrip("/")
    for ehr in ehrs:
        if hmac.compare_digest(ehr.fhir_base, wanted):
            return ehr
    raise UntrustedIssuerError("this EHR is not one the practice has connected to the programme")


@dataclass(frozen=True)
class PendingLaunch:
    """What the app must remember between sending the person away and the callback."""

    state: str
    nonce: str
    code_verifier: str = field(repr=False)
    fhir_base: str
    redirect_uri: str
    scope: str
    created_at: float


def role_scopes(
    ehr: LaunchClient, config: SmartConfiguration, role: Role, *, ehr_launch: bool
) -> ScopeRequest:
    """The scopes a launch in ``role`` asks this EHR: its override or the app's defaults,
    in the scope version it advertises."""
    return launch_scopes(
        role=role,
        v2=config.supports_v2_scopes,
        ehr_launch=ehr_launch,
        offline_access=ehr.offline_access,
        online_access="permission-online" in config.capabilities,
        override=ehr.scopes_practitioner if role == "practitioner" else ehr.scopes_patient,
        writes=ehr.user_writes,
    )


def begin_launch(
    ehr: LaunchClient,
    config: SmartConfiguration,
    redirect_uri: str,
    *,
    launch: str | None = None,
    login_hint: str | None = None,
    role: Role | None = None,
    now: float | None = None,
) -> tuple[str, PendingLaunch, ScopeRequest]:
    """The authorization URL for an EHR launch (``launch`` given) or a standalone launch,
    asking the scopes of ``role`` (default: a care professional for an EHR launch, the
    client for a standalone one)."""
    if not config.supports_pkce_s256 and config.source != "metadata":
        raise DiscoveryError(
            "the EHR does not support PKCE with S256, so the app cannot launch safely"
        )
    scopes = role_scopes(ehr, config, role or ("practitioner" if launch else "patient"),
                         ehr_launch=launch is not None)  # fmt: skip
    url, pending = authorization_request(
        ehr, config, redirect_uri, scopes.scope, launch=launch, login_hint=login_hint, now=now
    )
    return url, pending, scopes


def authorization_request(
    ehr: LaunchClient,
    config: SmartConfiguration,
    redirect_uri: str,
    scope: str,
    *,
    launch: str | None = None,
    login_hint: str | None = None,
    now: float | None = None,
) -> tuple[str, PendingLaunch]:
    """The authorization URL of every launch (SMART App Launch 2.2 §"Obtain authorization
    code"; the Koppeltaal HTI launch is one with the HTI token as ``launch``) and the
    :class:`PendingLaunch` to keep until the callback: a new state, nonce and PKCE S256
    verifier, ``aud`` the EHR's FHIR base."""
    verifier = generate_token(64)
    pending = PendingLaunch(
        state=generate_token(32),
        nonce=generate_token(32),
        code_verifier=verifier,
        fhir_base=ehr.fhir_base,
        redirect_uri=redirect_uri,
        scope=scope,
        created_at=time.time() if now is None else now,
    )
    extra: dict[str, str] = {
        "aud": ehr.fhir_base,
        "nonce": pending.nonce,
        "code_challenge": create_s256_code_challenge(verifier),
        "code_challenge_method": "S256",
    }
    if launch is not None:
        extra["launch"] = launch
    if login_hint:
        extra["login_hint"] = login_hint
    url = prepare_grant_uri(
        config.authorization_endpoint,
        ehr.client_id,
        "code",
        redirect_uri=redirect_uri,
        scope=scope,
        state=pending.state,
        **extra,
    )
    return str(url), pending


@dataclass(frozen=True)
class LaunchResult:
    """Tokens and launch context (SMART App Launch 2.2, launch context in the token response)."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    expires_at: float
    scope: str
    patient: str | None
    encounter: str | None
    fhir_user: str | None
    need_patient_banner: bool
    smart_style_url: str | None
    intent: str | None
    locale: str | None
    id_token_claims: dict[str, Any]
    not_granted: tuple[str, ...]

    @property
    def role(self) -> Literal["practitioner", "patient", "unknown"]:
        """Who is using the app, from fhirUser (relative or absolute reference)."""
        resource_type = (self.fhir_user or "").rstrip("/").split("/")[-2:][0]
        if resource_type in ("Practitioner", "PractitionerRole"):
            return "practitioner"
        if resource_type in ("Patient", "RelatedPerson"):
            return "patient"
        return "unknown"


@dataclass(frozen=True)
class Signing:
    """How the app authenticates at an EHR's token endpoint where its adapter decides more
    than the EHR's ``auth_method`` says (Koppeltaal: always ``private_key_jwt``, RS512 by
    default): the method, the configured algorithm (``koppeltaal_alg``) and the adapter's
    default algorithm (None: the SMART defaults, ``_backend_services.assertion_algorithm``)."""

    method: AuthMethod | None = None
    alg: str | None = None
    default_alg: str | None = None


def _client_auth(
    ehr: LaunchClient, token_endpoint: str, signing: Signing = Signing()
) -> tuple[dict[str, str], tuple[str, str] | None]:
    """Form fields and HTTP basic credentials for the EHR's client authentication method."""
    method = signing.method or ehr.auth_method
    if method == "client_secret_basic":
        if not ehr.client_secret:
            raise TokenRequestError(
                "invalid_client", "no client secret is configured for this EHR"
            )
        return {}, (ehr.client_id, ehr.client_secret)
    if method == "private_key_jwt":
        if not ehr.private_jwk:
            raise TokenRequestError("invalid_client", "no private key is configured for this EHR")
        try:
            alg = assertion_algorithm(ehr.private_jwk, signing.alg, signing.default_alg)
        except ValueError as exc:  # an algorithm the key cannot make
            raise TokenRequestError("invalid_client", str(exc)) from None
        key = with_kid(ehr.private_jwk)
        assertion = client_assertion(ehr.client_id, token_endpoint, key, alg=alg)
        return {"client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion}, None
    return {"client_id": ehr.client_id}, None


def _token_request(
    ehr: LaunchClient,
    config: SmartConfiguration,
    form: dict[str, str],
    session: requests.Session,
    signing: Signing = Signing(),
) -> dict[str, Any]:
    extra, basic = _client_auth(ehr, config.token_endpoint, signing)
    return post_token_request(session, config.token_endpoint, {**form, **extra}, auth=basic)


def probe_client_authentication(
    ehr: LaunchClient, config: SmartConfiguration, session: requests.Session
) -> None:
    """A client_credentials request with the app's own client authentication (RFC 6749
    §4.4), to learn whether the EHR accepts its credentials: ``invalid_client`` says it does
    not; another refusal is about the grant, which servers check after the credentials."""
    _token_request(ehr, config, {"grant_type": "client_credentials"}, session)


def _result(
    body: dict[str, Any], scopes: ScopeRequest | None, claims: dict[str, Any], now: float
) -> LaunchResult:
    granted = str(body.get("scope", ""))
    return LaunchResult(
        access_token=str(body["access_token"]),
        refresh_token=body.get("refresh_token"),
        expires_at=now + float(body.get("expires_in", 300)),
        scope=granted,
        patient=body.get("patient"),
        encounter=body.get("encounter"),
        # SMART v1 servers name the user in ``profile`` (App Launch 1.0 §"Scopes for
        # requesting identity data"); fhirUser replaced it, with the same value.
        fhir_user=body.get("fhirUser") or claims.get("fhirUser") or claims.get("profile"),
        need_patient_banner=bool(body.get("need_patient_banner", False)),
        smart_style_url=body.get("smart_style_url"),
        intent=body.get("intent"),
        locale=body.get("locale"),
        id_token_claims=claims,
        not_granted=tuple(missing_purposes(scopes, granted)) if scopes else (),
    )


@dataclass(frozen=True)
class CodeExchange:
    """What one code exchange works with, whichever launch started it: the EHR, its SMART
    configuration, the pending launch, the callback's parameters and the HTTP session it
    goes through; ``jwks`` (the authorization server's keys, when already known) and ``now``
    for tests."""

    ehr: LaunchClient
    config: SmartConfiguration
    pending: PendingLaunch
    callback: dict[str, str]
    session: requests.Session = field(repr=False)
    jwks: dict[str, Any] | None = field(default=None, repr=False)
    now: float | None = None


def exchange_code(
    exchange: CodeExchange, *, signing: Signing = Signing()
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The code exchange of every launch (SMART App Launch 2.2 and the Koppeltaal HTI launch):
    check the callback against the pending launch, exchange the code with the EHR's client
    authentication (``signing``), verify the id_token when ``openid`` was asked (with the
    pending launch's nonce where the EHR echoes it: ``LaunchClient.nonce_echoed``). Returns
    the token response and the id_token's claims ({} without openid)."""
    ehr, config, pending, session = (
        exchange.ehr,
        exchange.config,
        exchange.pending,
        exchange.session,
    )
    form = {
        "grant_type": "authorization_code",
        "code": _callback_code(ehr, pending, exchange.callback),
        "redirect_uri": pending.redirect_uri,
        "code_verifier": pending.code_verifier,
    }
    body = _token_request(ehr, config, form, session, signing)
    if "openid" not in pending.scope.split():
        return body, {}
    token = body.get("id_token")
    if not isinstance(token, str) or not token:
        raise TokenRequestError("invalid_grant", "openid was granted but no id_token came back")
    issuer, jwks_uri = config.issuer, config.jwks_uri
    if not issuer:
        # SMART App Launch 2.2 §Conformance: issuer is required only with
        # sso-openid-connect, and /metadata never names it. OpenID Connect Core §3.1.3.7:
        # the issuer is "typically obtained during Discovery", so take the id_token's
        # iss from the OpenID configuration it names, if that names our token endpoint.
        issuer, found_jwks = openid_issuer(token, config.token_endpoint, session)
        jwks_uri = jwks_uri or found_jwks
    jwks = exchange.jwks
    if jwks is None:
        if not jwks_uri:
            raise DiscoveryError("the EHR publishes no jwks_uri to check the id_token with")
        jwks = fetch_jwks(jwks_uri, session)
    claims = verify_id_token(
        token,
        jwks,
        issuer=issuer,
        client_id=ehr.client_id,
        nonce=pending.nonce if ehr.nonce_echoed else None,
        now=exchange.now,
    )
    return body, claims


def _callback_code(ehr: LaunchClient, pending: PendingLaunch, callback: dict[str, str]) -> str:
    """The callback's code, once its state is the pending launch's, the launch was started
    for this EHR, and the authorization server sent no error."""
    if not hmac.compare_digest(str(callback.get("state", "")), pending.state):
        raise StateError("this sign-in does not belong to the launch that was started here")
    if pending.fhir_base != ehr.fhir_base:
        raise StateError("this sign-in was started for another EHR")
    if "error" in callback:
        raise AuthorizationDeniedError(callback["error"], callback.get("error_description", ""))
    code = callback.get("code")
    if not code:
        raise AuthorizationDeniedError("invalid_request", "the callback carries no code")
    return code


def complete_launch(
    ehr: LaunchClient,
    config: SmartConfiguration,
    pending: PendingLaunch,
    callback: dict[str, str],
    session: requests.Session,
    *,
    scopes: ScopeRequest | None = None,
    jwks: dict[str, Any] | None = None,
    now: float | None = None,
) -> LaunchResult:
    """Check the callback against the pending launch, exchange the code, verify the id_token
    (:func:`exchange_code`); the tokens and the launch context."""
    exchange = CodeExchange(ehr, config, pending, callback, session, jwks=jwks, now=now)
    body, claims = exchange_code(exchange)
    return _result(body, scopes, claims, time.time() if now is None else now)


def refresh(
    ehr: LaunchClient,
    config: SmartConfiguration,
    refresh_token: str,
    session: requests.Session,
    *,
    now: float | None = None,
) -> LaunchResult:
    """New tokens from a refresh token (RFC 6749 §6); the launch context comes along."""
    body = _token_request(
        ehr, config, {"grant_type": "refresh_token", "refresh_token": refresh_token}, session
    )
    return _result(body, None, {}, time.time() if now is None else now)
