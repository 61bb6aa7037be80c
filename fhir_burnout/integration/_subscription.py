"""Our Subscription on an EHR (FHIR R4 §2.46, rest-hook channel), made idempotently: the
referral Subscription and the Koppeltaal KT2_Subscription alike (docs/architecture.md, the
adapter seam: the KT2 one only adds its profile).

R4 lets a notification come with no payload, or with just an id (R4 §2.46.7.1), so ours
asks for none: a notification only says "something matching your criteria changed", and
the poll finds what. The EHR sends the Subscription's ``channel.header`` with each
notification: ours carries ``Authorization: Bearer <token>`` (a
:class:`~fhir_burnout.integration.Channel` token). The Subscription holds the token: never
log it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from fhir_burnout.fhir import FhirClient


@dataclass(frozen=True)
class Subscribed:
    """What :func:`subscribe` did: ``created``, ``reactivated`` (it was in ``error`` or
    ``off``), ``updated`` (current, but with another token or criteria, or a payload), or
    ``unchanged``."""

    action: Literal["created", "reactivated", "updated", "unchanged"]
    subscription: str  # Subscription/<id>
    status: str  # as the EHR stored it
    criteria: str
    endpoint: str
    was: str | None = None  # the status before, when reactivated or updated


def _ours(subscription: Mapping[str, Any], endpoint: str) -> bool:
    channel = subscription.get("channel") or {}
    return channel.get("type") == "rest-hook" and channel.get("endpoint") == endpoint


def _channel(endpoint: str, token: str) -> dict[str, Any]:
    header = f"Authorization: Bearer {token}"
    return {"type": "rest-hook", "endpoint": endpoint, "header": [header]}


def subscription_resource(
    endpoint: str, token: str, criteria: str, reason: str, profile: str | None = None
) -> dict[str, Any]:
    """The Subscription :func:`subscribe` creates: rest-hook to ``endpoint`` with our token,
    no payload, ``requested`` (the server makes it active); ``profile`` in ``meta.profile``."""
    meta = {"meta": {"profile": [profile]}} if profile else {}
    new = {"status": "requested", "reason": reason, "criteria": criteria}
    return {"resourceType": "Subscription", **meta, **new, "channel": _channel(endpoint, token)}


def _with_profile(meta: Mapping[str, Any], profile: str) -> dict[str, Any]:
    return {**meta, "profile": sorted({*meta.get("profile", []), profile})}


def _renewed(
    existing: Mapping[str, Any], channel: dict[str, Any], criteria: str, reason: str,
    profile: str | None,
) -> dict[str, Any]:  # fmt: skip
    """``existing`` set to ``requested`` again with our channel and criteria (R4: the server
    then makes it active); its own reason kept."""
    renewed = {
        **{k: v for k, v in existing.items() if k not in ("error", "meta", "text")},
        "status": "requested",
        "reason": existing.get("reason") or reason,
        "criteria": criteria,
        "channel": channel,
    }
    if profile:
        renewed["meta"] = _with_profile(existing.get("meta") or {}, profile)
    return renewed


def subscribe(
    client: FhirClient,
    endpoint: str,
    token: str,
    criteria: str,
    reason: str,
    *,
    profile: str | None = None,
    one_per_endpoint: bool = False,
) -> Subscribed:
    """Make sure the EHR notifies ``endpoint`` of changes to what ``criteria`` finds
    (``ServiceRequest?performer=Organization/1``), idempotently. A Subscription of ours
    (found with ``Subscription?url=``: rest-hook to ``endpoint``, with these criteria, or
    with any when ``one_per_endpoint``) is kept as it is when current, else set to
    ``requested`` again with ``If-Match`` (in ``error`` or ``off``, or its header, criteria
    or payload stale); otherwise one is created by POST (the server gives the id).
    ``reason``: R4 requires one; ``profile``: the profile it claims (KT2_Subscription)."""
    channel = _channel(endpoint, token)
    found = [
        s
        for s in client.search("Subscription", {"url": endpoint})
        if _ours(s, endpoint) and (one_per_endpoint or s.get("criteria") == criteria)
    ]
    if not found:
        created = client.create(subscription_resource(endpoint, token, criteria, reason, profile))
        return Subscribed("created", f"Subscription/{created.get('id')}",
                          str(created.get("status")), criteria, endpoint)  # fmt: skip
    existing = min(found, key=lambda s: s.get("status") != "active")  # active first
    reference, status = f"Subscription/{existing['id']}", str(existing.get("status"))
    current = status in ("active", "requested")
    stored_channel = existing.get("channel") or {}
    if (
        current
        and existing.get("criteria") == criteria
        and stored_channel.get("header") == channel["header"]
        and "payload" not in stored_channel
    ):
        return Subscribed("unchanged", reference, status, criteria, endpoint)
    version = (existing.get("meta") or {}).get("versionId")
    stored = client.update(_renewed(existing, channel, criteria, reason, profile),
                           version_id=version)  # fmt: skip
    return Subscribed("updated" if current else "reactivated", reference,
                      str(stored.get("status")), criteria, endpoint, was=status)  # fmt: skip
