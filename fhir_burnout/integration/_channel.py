"""Our side of an R4 rest-hook Subscription channel (R4 §2.46): where an EHR notifies us,
a short stable name for the EHR in that URL, and the bearer token it sends back in
``channel.header`` (an HMAC of the app's secret, so nothing is stored and a new secret
renews every token).

One :class:`Channel` per feed (docs/architecture.md, the adapter seam): the referral
Subscription and the KT2_Subscription differ only in their path and in the purpose their
token signs, so neither token opens the other's endpoint. Ids and tokens are the ones EHRs
hold in their Subscriptions today: they must never change (tests/test_channel.py pins them).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass


def channel_id(fhir_base: str) -> str:
    """A short, stable name for an EHR (it does not change when the config lists its EHRs in
    another order): the first 16 hex digits of SHA-256 of its FHIR base."""
    return hashlib.sha256(fhir_base.rstrip("/").encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Channel:
    """The notification channel of one feed: ``purpose`` is what its token signs before the
    FHIR base (``"referral-notify|"``), ``path`` where the app takes its notifications
    (``"/referrals/notify"``)."""

    purpose: str
    path: str

    def endpoint(self, base_url: str, fhir_base: str) -> str:
        """Where the EHR at ``fhir_base`` notifies us: ``<base_url><path>?ehr=<channel_id>``."""
        return f"{base_url.rstrip('/')}{self.path}?ehr={channel_id(fhir_base)}"

    def token(self, secret_key: str, fhir_base: str) -> str:
        """base64url(HMAC-SHA256(secret_key, purpose + fhir_base)), unpadded: one token per
        purpose and EHR. Never log it."""
        message = (self.purpose + fhir_base.rstrip("/")).encode()
        digest = hmac.new(secret_key.encode(), message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def token_ok(self, secret_key: str, fhir_base: str, authorization: str | None) -> bool:
        """Whether an ``Authorization`` header carries the token of ``fhir_base`` (compared
        in constant time)."""
        scheme, _, given = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return False
        expected = self.token(secret_key, fhir_base)
        return hmac.compare_digest(expected.encode(), given.strip().encode("utf-8", "replace"))
