"""SMART Backend Services: an access token for a system, with no person involved.

SMART App Launch 2.2, "Backend Services" (client_credentials grant, client authenticated by
a signed JWT assertion, RFC 7523): the assertion lives at most five minutes and carries a
fresh ``jti`` every time, so a server that refuses replays never sees the same one twice.

One path signs every client assertion, for Backend Services and for the code exchange
(``_launch._client_auth``), in both modes (docs/architecture.md, "The seam where an EHR
connects"): the algorithm is the configured one (``koppeltaal_alg``), else the key's
``alg``, else the adapter's default (Koppeltaal: RS512; SMART: RS384, ES384 for an EC key),
and the header names the key's ``kid`` (SMART Backend Services and TOP-KT-005 both ask it).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
from joserfc import jwt
from joserfc.jwk import JWKRegistry

from fhir_burnout.errors import FhirBurnoutError

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_ASSERTION_SECONDS = 300
#: What a client assertion may be signed with (SMART asks RS384 or ES384; Koppeltaal RS512).
ALGORITHMS = ("RS512", "RS384", "ES384")


class TokenRequestError(FhirBurnoutError):
    """The authorization server refused the token request (OAuth2 error and description)."""

    code = "security"

    def __init__(self, error: str, description: str = "", status: int | None = None) -> None:
        super().__init__(f"{error}: {description}" if description else error)
        self.error, self.description, self.status = error, description, status


@dataclass(frozen=True)
class AccessToken:
    """A bearer token and what the server said about it."""

    access_token: str
    expires_in: int
    scope: str
    raw: dict[str, Any]


def client_assertion(
    client_id: str,
    token_url: str,
    private_jwk: dict[str, Any],
    *,
    now: float | None = None,
    alg: str | None = None,
) -> str:
    """A signed client assertion (RFC 7523 §3) for ``private_key_jwt``.

    The algorithm is the key's ``alg`` (RS384, or ES384 for an EC key, when it has none);
    ``alg`` overrides it (Koppeltaal signs RS512 by default).
    """
    issued = int(time.time() if now is None else now)
    if alg is None:
        alg = str(
            private_jwk.get("alg") or ("ES384" if private_jwk.get("kty") == "EC" else "RS384")
        )
        key = JWKRegistry.import_key(private_jwk)
    else:
        # joserfc refuses to sign with another algorithm than the one a JWK names.
        key = JWKRegistry.import_key({k: v for k, v in private_jwk.items() if k != "alg"})
    header = {"alg": alg, "typ": "JWT"}
    if private_jwk.get("kid"):
        header["kid"] = str(private_jwk["kid"])
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": token_url,
        "jti": uuid.uuid4().hex,
        "iat": issued,
        "exp": issued + MAX_ASSERTION_SECONDS,
    }
    return jwt.encode(header, claims, key, algorithms=[alg])


def assertion_algorithm(
    private_jwk: dict[str, Any], configured: str | None = None, default: str | None = None
) -> str:
    """The algorithm our client assertions use: ``configured``, else the key's ``alg``, else
    ``default`` (the adapter's), else RS384 (ES384 for an EC key); ValueError when it is not
    one of :data:`ALGORITHMS` or the key cannot make it."""
    kty = private_jwk.get("kty")
    fallback = "ES384" if kty == "EC" else "RS384"
    alg = configured or str(private_jwk.get("alg") or "") or default or fallback
    if alg not in ALGORITHMS:
        raise ValueError(f"koppeltaal_alg {alg!r}: use one of {ALGORITHMS}")
    if (alg.startswith("RS") and kty != "RSA") or (alg == "ES384" and kty != "EC"):
        raise ValueError(f"koppeltaal_alg {alg}: the key is {kty}, not a key for {alg}")
    if alg == "ES384" and private_jwk.get("crv") != "P-384":
        raise ValueError("koppeltaal_alg ES384 needs a P-384 key")
    return alg


def with_kid(private_jwk: dict[str, Any]) -> dict[str, Any]:
    """The key with a ``kid`` (its RFC 7638 thumbprint when it has none, as ``fhir-burnout
    keys`` names them): the server picks the right key of our JWKS by it."""
    if private_jwk.get("kid"):
        return private_jwk
    public = {k: v for k, v in private_jwk.items() if k != "alg"}
    return {**private_jwk, "kid": JWKRegistry.import_key(public).thumbprint()}


def post_token_request(
    session: requests.Session,
    token_url: str,
    form: dict[str, str],
    *,
    auth: tuple[str, str] | None = None,
    timeout: float = 30.0,
) -> dict[str, Any]:
    """POST to a token endpoint (RFC 6749 §5): the JSON answer, or TokenRequestError."""
    try:
        response = session.post(token_url, data=form, auth=auth, timeout=timeout)
    except requests.RequestException as exc:
        raise TokenRequestError("temporarily_unavailable", type(exc).__name__) from None
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200 or not isinstance(body, dict) or "access_token" not in body:
        body = body if isinstance(body, dict) else {}
        raise TokenRequestError(
            str(body.get("error", f"HTTP {response.status_code}")),
            str(body.get("error_description", "")),
            response.status_code,
        )
    return dict(body)


def backend_token(
    token_url: str,
    client_id: str,
    private_jwk: dict[str, Any],
    scope: str,
    *,
    session: requests.Session | None = None,
    timeout: float = 30.0,
    alg: str | None = None,
) -> AccessToken:
    """Request an access token with the client_credentials grant and a JWT assertion
    (signed with ``alg``, default: the key's own)."""
    http = session or requests.Session()
    form = {
        "grant_type": "client_credentials",
        "scope": scope,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": client_assertion(client_id, token_url, private_jwk, alg=alg),
    }
    body = post_token_request(http, token_url, form, timeout=timeout)
    return AccessToken(
        access_token=str(body["access_token"]),
        expires_in=int(body.get("expires_in", 0)),
        scope=str(body.get("scope", "")),
        raw=body,
    )


class BackendTokenSource:
    """A backend-services token, reused until shortly before it expires.

    Call :meth:`invalidate` when the FHIR server answers 401; the next :meth:`token` then
    asks for a new one (SMART Backend Services: there is no refresh token).
    """

    def __init__(
        self,
        token_url: str,
        client_id: str,
        private_jwk: dict[str, Any],
        scope: str,
        *,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
        margin: float = 60.0,
        alg: str | None = None,
    ) -> None:
        self._args = (token_url, client_id, private_jwk, scope)
        self._alg = alg
        self._session = session or requests.Session()
        self._clock, self._margin = clock, margin
        self._current: AccessToken | None = None
        self._expires_at = 0.0
        self.requests = 0

    def token(self) -> str:
        """A valid access token, fetched when none is cached or it is about to expire."""
        now = self._clock()
        if self._current is None or now >= self._expires_at - self._margin:
            self._current = backend_token(*self._args, session=self._session, alg=self._alg)
            self._expires_at = now + (self._current.expires_in or 300)
            self.requests += 1
        return self._current.access_token

    def invalidate(self) -> None:
        """Forget the cached token (the server refused it)."""
        self._current = None


def backend_token_source(
    token_url: str,
    client_id: str,
    private_jwk: dict[str, Any],
    scope: str,
    *,
    alg: str | None = None,
    default_alg: str | None = None,
    session: requests.Session | None = None,
    clock: Callable[[], float] = time.time,
) -> BackendTokenSource:
    """The Backend Services token source for one EHR, its assertions signed as the module's
    docstring says (``alg``: the configured algorithm; ``default_alg``: the adapter's).
    TokenRequestError ``invalid_client`` when the key cannot make that algorithm."""
    try:
        chosen = assertion_algorithm(private_jwk, alg, default_alg)
    except ValueError as exc:
        raise TokenRequestError("invalid_client", str(exc)) from None
    return BackendTokenSource(
        token_url,
        client_id,
        with_kid(private_jwk),
        scope,
        session=session,
        clock=clock,
        alg=chosen,
    )
