"""Subscription notifications for new referrals: the channel they come by, and what our
Subscription watches (FHIR R4 §2.46, rest-hook channel; the skeleton's
:func:`~fhir_burnout.integration.subscribe` makes it).

A notification only says "something matching your criteria changed"; what changed is found
by the reconciliation poll (:func:`reconcile`), which the notification asks for; the poll
and the Subscription watch the same search (:func:`referral_criteria`). The token in the
Subscription's ``channel.header`` is an HMAC of the EHR's FHIR base under the app's secret
key with the purpose ``referral-notify|``: a token for one EHR is no good for another, nor
for the Koppeltaal endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode

from fhir_burnout.fhir import FhirClient
from fhir_burnout.integration import Channel, Subscribed, subscribe

#: Where an EHR notifies us of referrals, and what its token signs before the FHIR base.
REFERRAL_CHANNEL = Channel("referral-notify|", "/referrals/notify")
#: Why we subscribe (R4 requires Subscription.reason).
REFERRAL_REASON = (
    "fhir-burnout: new referrals for burn-out treatment (a notification asks for a poll)"
)


def referral_criteria(practice: str) -> dict[str, str]:
    """The search that finds the referrals to ``practice`` (``Organization/<id>``): the
    reconciliation poll searches with it and the Subscription watches it. Not filtered on
    status: a referral that becomes active later changes, and so is seen then;
    :func:`take_referral` refuses what is not active."""
    return {"performer": practice}


def subscription_criteria(criteria: Mapping[str, str]) -> str:
    """``criteria`` as Subscription.criteria: ``ServiceRequest?performer=Organization/1``."""
    return "ServiceRequest?" + urlencode(sorted(criteria.items()), safe="/:")


def subscribe_referrals(
    client: FhirClient, *, base_url: str, secret_key: str, practice: str
) -> Subscribed:
    """Make sure the EHR of ``client`` notifies the app at ``base_url`` of the referrals to
    ``practice`` (what ``fhir-burnout referrals subscribe`` does for each EHR)."""
    fhir_base = client.base_url
    return subscribe(
        client,
        REFERRAL_CHANNEL.endpoint(base_url, fhir_base),
        REFERRAL_CHANNEL.token(secret_key, fhir_base),
        subscription_criteria(referral_criteria(practice)),
        REFERRAL_REASON,
    )
