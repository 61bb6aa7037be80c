"""Our side of an R4 rest-hook Subscription channel: a short stable name for the EHR in the
notification URL, and the bearer token the EHR sends back in ``channel.header`` (an HMAC of
the app's secret, so nothing is stored and a new secret renews every token)."""

from __future__ import annotations

import base64
import hashlib
import hmac


def channel_id(fhir_base: str) -> str:
    """A short, stable name for an EHR (it does not change when the config lists its EHRs in
    another order): the first 16 hex digits of SHA-256 of its FHIR base."""
    return hashlib.sha256(fhir_base.rstrip("/").encode()).hexdigest()[:16]


def channel_token(secret_key: str, purpose: str, fhir_base: str) -> str:
    """base64url(HMAC-SHA256(secret_key, purpose + fhir_base)), unpadded: one token per
    purpose (referrals, Koppeltaal Tasks) and EHR. Never log it."""
    message = (purpose + fhir_base.rstrip("/")).encode()
    digest = hmac.new(secret_key.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def channel_token_ok(
    secret_key: str, purpose: str, fhir_base: str, authorization: str | None
) -> bool:
    """Whether an ``Authorization`` header carries that token (compared in constant time)."""
    scheme, _, given = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return False
    expected = channel_token(secret_key, purpose, fhir_base)
    return hmac.compare_digest(expected.encode(), given.strip().encode("utf-8", "replace"))
