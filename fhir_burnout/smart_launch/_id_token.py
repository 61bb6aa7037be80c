"""Verifying an OpenID Connect id_token (OpenID Connect Core 1.0 §3.1.3.7).

Signature against the server's JWKS with asymmetric algorithms only: ``alg: none`` and the
HMAC family are refused outright (an HS256 token "signed" with the server's public key is the
classic confusion attack). Then ``iss`` (a trailing slash on either side aside: the Koppeltaal
reference auth service names itself by its URL root, ``https://auth.example/``, where the
domain's discovery may not), ``aud`` (and ``azp``), ``exp``, and ``nonce`` where the launch
demands it back (``LaunchClient.nonce_echoed``).
"""

from __future__ import annotations

import hmac
import json
import time
from base64 import urlsafe_b64decode
from typing import Any
from urllib.parse import urlsplit

import requests
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from fhir_burnout.smart_launch._errors import IdTokenError

ALLOWED_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
)
LEEWAY_SECONDS = 60


def _segment(token: str, index: int) -> dict[str, Any]:
    """One JSON part of a JWT, unverified: 0 the header, 1 the claims."""
    try:
        segment = token.split(".")[index]
        data = json.loads(urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, IndexError):
        raise IdTokenError("the id_token is not a JWT") from None
    if not isinstance(data, dict):
        raise IdTokenError("the id_token is not a JWT")
    return data


def jwt_header(token: str) -> dict[str, Any]:
    """A JWT's header, not verified (RFC 7519 section 7.2, step 3): read to pick a key."""
    return _segment(token, 0)


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc.lower()


def openid_issuer(
    token: str, token_endpoint: str, session: requests.Session, *, timeout: float = 15.0
) -> tuple[str, str | None]:
    """The issuer of an id_token from an EHR whose SMART configuration names none, and its
    ``jwks_uri`` (OpenID Connect Discovery 1.0 §4).

    The id_token's ``iss`` is trusted only when it is on the token endpoint's own origin and
    its OpenID configuration names that issuer (§4.3) and that token endpoint: the id_token
    came from there, so that server vouches for it. Nothing is fetched from elsewhere."""
    iss = _segment(token, 1).get("iss")
    if not isinstance(iss, str) or _origin(iss) != _origin(token_endpoint):
        raise IdTokenError("the id_token names an issuer outside the EHR's token endpoint")
    url = f"{iss.rstrip('/')}/.well-known/openid-configuration"
    try:
        response = session.get(url, headers={"Accept": "application/json"}, timeout=timeout)
        response.raise_for_status()
        found = response.json()
    except (requests.RequestException, ValueError):
        raise IdTokenError(f"the issuer's OpenID configuration could not be read: {url}") from None
    if not isinstance(found, dict) or found.get("issuer") != iss:
        raise IdTokenError(f"{url} names another issuer than the id_token")
    if found.get("token_endpoint") != token_endpoint:
        raise IdTokenError(f"{url} names another token endpoint than the EHR's")
    jwks_uri = found.get("jwks_uri")
    return iss, str(jwks_uri) if jwks_uri else None


def fetch_jwks(
    jwks_uri: str, session: requests.Session, *, timeout: float = 15.0
) -> dict[str, Any]:
    """The authorization server's public keys."""
    try:
        response = session.get(jwks_uri, timeout=timeout)
        response.raise_for_status()
        data = response.json()
    except (requests.RequestException, ValueError):
        raise IdTokenError(f"the server's keys could not be read from {jwks_uri}") from None
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise IdTokenError(f"{jwks_uri} is not a JWKS")
    return data


def same_issuer(found: object, expected: str) -> bool:
    """Whether an id_token's ``iss`` names ``expected``: the same URL, but for one trailing
    slash on either side (issue 19: the Koppeltaal reference auth service's ``iss`` is its
    Flask ``request.url_root``, which always ends in one)."""
    if not isinstance(found, str) or not found or not expected:
        return False
    return hmac.compare_digest(found.removesuffix("/"), expected.removesuffix("/"))


def verify_id_token(
    token: str,
    jwks: dict[str, Any],
    *,
    issuer: str,
    client_id: str,
    nonce: str | None,
    now: float | None = None,
) -> dict[str, Any]:
    """The id_token's claims, once signature and claims check out; else :class:`IdTokenError`.

    ``nonce``: the value the id_token must carry (OpenID Connect Core §3.1.3.7 step 11), or
    None where the authorization service puts its own and the launch rests its replay
    protection on ``state``, PKCE and the launch token's ``jti`` instead (Koppeltaal)."""
    alg = jwt_header(token).get("alg")
    if alg not in ALLOWED_ALGORITHMS:
        raise IdTokenError(f"id_token algorithm {alg!r} is not accepted")
    try:
        keys = KeySet.import_key_set(jwks)  # type: ignore[arg-type]
        decoded = jwt.decode(token, keys, algorithms=[str(alg)])
    except (JoseError, ValueError, TypeError):
        raise IdTokenError("the id_token's signature does not verify") from None
    claims = dict(decoded.claims)
    current = time.time() if now is None else now
    if not same_issuer(claims.get("iss"), issuer):
        raise IdTokenError("the id_token was issued by another server")
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if client_id not in audiences:
        raise IdTokenError("the id_token is meant for another app")
    if len(audiences) > 1 and claims.get("azp") != client_id:
        raise IdTokenError("the id_token names another authorized party")
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or exp + LEEWAY_SECONDS < current:
        raise IdTokenError("the id_token has expired")
    if nonce is not None and not hmac.compare_digest(str(claims.get("nonce", "")), nonce):
        raise IdTokenError("the id_token's nonce does not belong to this launch")
    return claims
