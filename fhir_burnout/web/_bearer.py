"""Bearer tokens sent to the app's APIs (``$apply``, ``POST /referrals``): who sent them.

A caller (a referral system, another module) gets an access token from the practice's
authorization server, the one a configured EHR names in its SMART configuration, for the
app itself (RFC 8707 ``resource`` = our ``base_url``), and sends it as
``Authorization: Bearer <token>`` (RFC 6750 §2.1). :func:`authenticate` finds the EHR whose
authorization server issued the token (its ``iss``), checks the token against that
server's keys (cached for :data:`JWKS_TTL` seconds) and that its audience is us, and
answers with the token's claims and that EHR's FHIR base. A token whose audience is the
EHR is refused: it was issued for the EHR, which may pass it on to anyone it calls, and a
person's launch token always is one (RFC 9068 §4). :func:`challenge` is the status and
``WWW-Authenticate`` header a refusal gets (RFC 6750 §3).
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from flask import request

from fhir_burnout.errors import FhirBurnoutError
from fhir_burnout.smart_launch import (
    AccessTokenError,
    DiscoveryError,
    IdTokenError,
    InsufficientScopeError,
    fetch_jwks,
    jwt_header,
    verify_access_token,
)
from fhir_burnout.web._context import AppContext

#: Seconds an authorization server's keys are reused before they are fetched again.
JWKS_TTL = 300.0


def authenticate(state: AppContext) -> tuple[dict[str, Any], str]:
    """The token's claims and the FHIR base of the EHR whose authorization server issued
    it; :class:`AccessTokenError` when there is no token or it does not verify."""
    auth = request.headers.get("Authorization", "")
    if not auth.lower().startswith("bearer "):
        raise AccessTokenError("a bearer token is required")
    token = auth[7:].strip()
    try:
        payload = token.split(".")[1]
        issuer = json.loads(_b64(payload)).get("iss")
        jwt_header(token)
    except (IndexError, ValueError, AttributeError, IdTokenError):
        raise AccessTokenError("the bearer token is not a JWT") from None
    settings = state.settings
    for ehr in settings.ehrs:
        try:
            smart = state.discovery.get(ehr.fhir_base)
        except DiscoveryError:
            continue
        if smart.issuer != issuer or not smart.jwks_uri:
            continue
        claims = verify_access_token(
            token,
            _jwks(state, smart.jwks_uri),
            issuer=issuer,
            # Our base URL, or our FHIR endpoint's (where $apply lives); never the EHR's.
            audiences=(settings.base_url, f"{settings.base_url.rstrip('/')}/fhir"),
        )
        return claims, str(ehr.fhir_base)
    raise AccessTokenError("the bearer token comes from an authorization server we do not trust")


class UnknownCallerError(FhirBurnoutError):
    """A valid token of a client the practice did not name as a caller (HTTP 403)."""

    code = "forbidden"


def challenge(error: FhirBurnoutError) -> tuple[int, dict[str, str]]:
    """The HTTP status and ``WWW-Authenticate`` header for a refused token (RFC 6750 §3):
    401 for a missing or invalid one, 403 for one whose scopes are too narrow or whose
    client is not a caller of ours (no new token helps: no challenge)."""
    if isinstance(error, UnknownCallerError):
        return 403, {}
    if isinstance(error, InsufficientScopeError):
        return 403, {"WWW-Authenticate": 'Bearer error="insufficient_scope"'}
    # Without any credentials the challenge carries no error code (RFC 6750 §3.1).
    return 401, {
        "WWW-Authenticate": 'Bearer error="invalid_token"' if request.authorization else "Bearer"
    }


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _jwks(state: AppContext, uri: str) -> dict[str, Any]:
    cache = state.jwks_cache
    now = time.monotonic()
    if uri not in cache or now - cache[uri][0] > JWKS_TTL:
        try:
            cache[uri] = (now, fetch_jwks(uri, state.http))
        except IdTokenError:
            raise AccessTokenError("the authorization server's keys cannot be read") from None
    return cache[uri][1]
