"""Subscription notifications for new referrals: the token that proves one came from the
EHR we subscribed at, and the Subscription itself (FHIR R4 §2.46, rest-hook channel).

An R4 notification may come with no payload, or with just an id (R4 §2.46.7.1), so its body
is never trusted for content: it only says "something matching your criteria changed".
What changed is found by the reconciliation poll (:func:`reconcile`), which the
notification asks for; the poll and the Subscription watch the same search
(:func:`referral_criteria`).

The EHR sends the Subscription's ``channel.header`` values with each notification. Ours
carries ``Authorization: Bearer <token>``, the token being an HMAC-SHA256 of the EHR's FHIR
base under the app's secret key: only whoever can read the Subscription (the EHR, and us)
knows it, and a token for one EHR is no good for another. No Flask here: the web app's
endpoint calls :func:`notify_token_ok`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlencode

from fhir_burnout.fhir import FhirClient, channel_id, channel_token, channel_token_ok

#: What the HMAC signs before the FHIR base: a token made for anything else never matches.
_PURPOSE = "referral-notify|"
#: Why we subscribe (R4 requires Subscription.reason).
REASON = "fhir-burnout: new referrals for burn-out treatment (a notification asks for a poll)"


def referral_criteria(practice: str) -> dict[str, str]:
    """The search that finds the referrals to ``practice`` (``Organization/<id>``): the
    reconciliation poll searches with it and the Subscription watches it. Not filtered on
    status: a referral that becomes active later changes, and so is seen then;
    :func:`take_referral` refuses what is not active."""
    return {"performer": practice}


def subscription_criteria(criteria: Mapping[str, str]) -> str:
    """``criteria`` as Subscription.criteria: ``ServiceRequest?performer=Organization/1``."""
    return "ServiceRequest?" + urlencode(sorted(criteria.items()), safe="/:")


def _base(fhir_base: str) -> str:
    return fhir_base.rstrip("/")


def ehr_id(fhir_base: str) -> str:
    """A short, stable name for an EHR in the notification URL (it does not change when the
    config lists its EHRs in another order)."""
    return channel_id(fhir_base)


def notify_token(secret_key: str, fhir_base: str) -> str:
    """The bearer token the EHR at ``fhir_base`` sends with its notifications:
    base64url(HMAC-SHA256(secret_key, "referral-notify|" + fhir_base)), unpadded."""
    return channel_token(secret_key, _PURPOSE, fhir_base)


def notify_token_ok(secret_key: str, fhir_base: str, authorization: str | None) -> bool:
    """Whether an ``Authorization`` header carries the token of ``fhir_base`` (compared in
    constant time)."""
    return channel_token_ok(secret_key, _PURPOSE, fhir_base, authorization)


def notify_endpoint(base_url: str, fhir_base: str) -> str:
    """Where the EHR at ``fhir_base`` sends its notifications: the app's
    ``/referrals/notify?ehr=<ehr_id>``."""
    return f"{base_url.rstrip('/')}/referrals/notify?ehr={ehr_id(fhir_base)}"


@dataclass(frozen=True)
class Subscribed:
    """What :func:`subscribe` did: ``created``, ``reactivated`` (it was in ``error`` or
    ``off``), ``updated`` (active, but with another token or a payload), or ``unchanged``."""

    action: Literal["created", "reactivated", "updated", "unchanged"]
    subscription: str  # Subscription/<id>
    status: str  # as the EHR stored it
    criteria: str
    endpoint: str
    was: str | None = None  # the status before, when reactivated or updated


def _header(token: str) -> str:
    return f"Authorization: Bearer {token}"


def _ours(subscription: Mapping[str, Any], criteria: str, endpoint: str) -> bool:
    channel = subscription.get("channel") or {}
    return (
        subscription.get("criteria") == criteria
        and channel.get("type") == "rest-hook"
        and channel.get("endpoint") == endpoint
    )


def subscribe(
    client: FhirClient, endpoint: str, token: str, criteria: Mapping[str, str]
) -> Subscribed:
    """Make sure the EHR notifies ``endpoint`` of changes to the ServiceRequests that match
    ``criteria`` (:func:`referral_criteria`), idempotently: a Subscription of ours (same
    criteria and endpoint, found with ``Subscription?url=``) is kept, and set to
    ``requested`` again when it is in ``error`` or ``off`` or its header is stale (R4: the
    server then makes it active); otherwise one is created. Rest-hook without a payload:
    the notification is an empty POST. The Subscription carries the token: never log it."""
    wanted = subscription_criteria(criteria)
    header = _header(token)
    found = [
        s for s in client.search("Subscription", {"url": endpoint}) if _ours(s, wanted, endpoint)
    ]
    if found:
        existing = min(found, key=lambda s: s.get("status") != "active")  # active first
        channel = existing.get("channel") or {}
        status = str(existing.get("status"))
        current = status in ("active", "requested")
        if current and channel.get("header") == [header] and "payload" not in channel:
            return Subscribed("unchanged", f"Subscription/{existing['id']}", status, wanted,
                              endpoint)  # fmt: skip
        renewed = {
            **{k: v for k, v in existing.items() if k not in ("error", "meta", "text")},
            "status": "requested",
            "reason": existing.get("reason") or REASON,
            "channel": {"type": "rest-hook", "endpoint": endpoint, "header": [header]},
        }
        version = (existing.get("meta") or {}).get("versionId")
        stored = client.update(renewed, version_id=version)
        return Subscribed(
            "updated" if current else "reactivated", f"Subscription/{existing['id']}",
            str(stored.get("status")), wanted, endpoint, was=status,
        )  # fmt: skip
    created = client.create(
        {
            "resourceType": "Subscription",
            "status": "requested",
            "reason": REASON,
            "criteria": wanted,
            "channel": {"type": "rest-hook", "endpoint": endpoint, "header": [header]},
        }
    )
    return Subscribed(
        "created", f"Subscription/{created.get('id')}", str(created.get("status")), wanted,
        endpoint,
    )  # fmt: skip
