"""The module's own access to a Koppeltaal domain: SMART Backend Services.

TOP-KT-005/-016/-021 and the Koppeltaal auth service: ``client_credentials`` with a
``private_key_jwt`` client assertion (iss = sub = our client id, aud = the token URL, a new
``jti`` each time, ``exp`` at most five minutes ahead, ``kid`` in the header so the domain
picks the right key from our JWKS). The scope we ask for is ignored: the domain grants our
role's scopes. There is no refresh token; a new token is fetched shortly before
``expires_in`` runs out (:class:`fhir_burnout.smart_launch.BackendTokenSource`).

Algorithms: RS512 by default (the Koppeltaal reference code and the POC module use it);
RS384 and ES384 when the config says so (``koppeltaal_alg`` per ``[[ehr]]``) or the key
names one in its ``alg``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import requests
from joserfc.jwk import JWKRegistry

from fhir_burnout.errors import FhirConnectionError
from fhir_burnout.smart_launch import BackendTokenSource

ALGORITHMS = ("RS512", "RS384", "ES384")
DEFAULT_ALGORITHM = "RS512"
#: What we ask for; the domain ignores it and grants the role's scopes.
DEFAULT_SCOPE = "system/*.cruds"


def assertion_algorithm(private_jwk: dict[str, Any], configured: str | None = None) -> str:
    """The algorithm our client assertions use: ``configured``, else the key's ``alg``, else
    RS512; refused when Koppeltaal does not accept it or the key cannot make it."""
    alg = configured or str(private_jwk.get("alg") or "") or DEFAULT_ALGORITHM
    if alg not in ALGORITHMS:
        raise ValueError(f"koppeltaal_alg {alg!r}: use one of {ALGORITHMS}")
    kty = private_jwk.get("kty")
    if (alg.startswith("RS") and kty != "RSA") or (alg == "ES384" and kty != "EC"):
        raise ValueError(f"koppeltaal_alg {alg}: the key is {kty}, not a key for {alg}")
    if alg == "ES384" and private_jwk.get("crv") != "P-384":
        raise ValueError("koppeltaal_alg ES384 needs a P-384 key")
    return alg


def with_kid(private_jwk: dict[str, Any]) -> dict[str, Any]:
    """The key with a ``kid`` (its RFC 7638 thumbprint when it has none, as ``fhir-burnout
    keys`` names them): Koppeltaal wants ``kid`` in every assertion header."""
    if private_jwk.get("kid"):
        return private_jwk
    public = {k: v for k, v in private_jwk.items() if k != "alg"}
    return {**private_jwk, "kid": JWKRegistry.import_key(public).thumbprint()}


def token_endpoint(
    fhir_base: str, *, session: requests.Session | None = None, timeout: float = 30.0
) -> str:
    """The token endpoint from ``<fhir_base>/.well-known/smart-configuration`` (TOP-KT-016)."""
    url = f"{fhir_base.rstrip('/')}/.well-known/smart-configuration"
    http = session or requests.Session()
    try:
        body = http.get(url, timeout=timeout, headers={"Accept": "application/json"}).json()
    except (requests.RequestException, ValueError):
        raise FhirConnectionError(f"GET {url}: no usable answer", method="GET", url=url) from None
    if not isinstance(body, dict) or not body.get("token_endpoint"):
        raise FhirConnectionError(f"GET {url}: no token_endpoint", method="GET", url=url)
    return str(body["token_endpoint"])


def koppeltaal_token_source(
    token_url: str,
    client_id: str,
    private_jwk: dict[str, Any],
    *,
    alg: str | None = None,
    scope: str = DEFAULT_SCOPE,
    session: requests.Session | None = None,
    clock: Callable[[], float] = time.time,
) -> BackendTokenSource:
    """A token source for the module's Device on a Koppeltaal domain (see module doc)."""
    chosen = assertion_algorithm(private_jwk, alg)
    return BackendTokenSource(
        token_url,
        client_id,
        with_kid(private_jwk),
        scope,
        session=session,
        clock=clock,
        alg=chosen,
    )
