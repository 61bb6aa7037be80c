"""Verifying a bearer token presented to the app's own FHIR operations (RFC 9068 JWTs).

Callers of ``$apply`` (a referral system, another module) get a token from the practice's
authorization server, the same one the EHR trusts. We check the signature against that
server's JWKS (asymmetric algorithms only, as for id_tokens), ``iss``, ``exp`` and that one
of the audiences is an EHR we serve or the app itself; then the SMART scopes the operation
needs (SMART App Launch 2.2 §3.0.2, v1 and v2 spellings).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from fhir_burnout.smart_launch._errors import AccessTokenError, InsufficientScopeError
from fhir_burnout.smart_launch._id_token import ALLOWED_ALGORITHMS, LEEWAY_SECONDS, jwt_header


def verify_access_token(
    token: str,
    jwks: dict[str, Any],
    *,
    issuer: str,
    audiences: Iterable[str],
    now: float | None = None,
) -> dict[str, Any]:
    """The token's claims once it verifies; else :class:`AccessTokenError`."""
    try:
        alg = jwt_header(token).get("alg")
    except Exception:  # jwt_header words its error for id_tokens
        raise AccessTokenError("the bearer token is not a JWT") from None
    if alg not in ALLOWED_ALGORITHMS:
        raise AccessTokenError(f"token algorithm {alg!r} is not accepted")
    try:
        decoded = jwt.decode(token, KeySet.import_key_set(jwks), algorithms=[str(alg)])  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError):
        raise AccessTokenError("the bearer token's signature does not verify") from None
    claims = dict(decoded.claims)
    if claims.get("iss") != issuer:
        raise AccessTokenError("the bearer token was issued by another server")
    exp = claims.get("exp")
    current = time.time() if now is None else now
    if not isinstance(exp, int | float) or exp + LEEWAY_SECONDS < current:
        raise AccessTokenError("the bearer token has expired")
    audience = claims.get("aud")
    given = {str(a).rstrip("/") for a in (audience if isinstance(audience, list) else [audience])}
    if not given & {a.rstrip("/") for a in audiences}:
        raise AccessTokenError("the bearer token is meant for another server")
    return claims


def require_scope(
    claims: dict[str, Any],
    resource_type: str,
    action: str,
    contexts: tuple[str, ...] = ("system", "user"),
) -> None:
    """Raise :class:`InsufficientScopeError` unless a granted scope allows ``action``
    (c, r, u, d or s) on ``resource_type``, in one of ``contexts`` (``system/`` for a
    machine caller acting for the practice, ``user/`` for a signed-in person)."""
    v1 = {"c": "write", "u": "write", "d": "write", "r": "read", "s": "read"}[action]
    for scope in str(claims.get("scope", "")).split():
        context, _, rest = scope.partition("/")
        kind, _, permissions = rest.partition(".")
        if context not in contexts or kind not in (resource_type, "*"):
            continue
        permissions = permissions.split("?", 1)[0]
        if permissions in ("*", v1) or (permissions.isalpha() and action in permissions):
            return
    raise InsufficientScopeError(f"the token's scopes do not allow {resource_type}.{action}")
