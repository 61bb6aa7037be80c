"""The reconciliation poll of referrals: the ServiceRequests a lost notification would
have brought, the ``referrals`` feed of the skeleton's poller (docs/architecture.md, the
adapter seam).

On a schedule, and when a notification arrives, we search the EHR for the ServiceRequests
of this practice changed since the last poll that succeeded
(:func:`~fhir_burnout.integration.changed_since`) and take each in (:func:`take_referral`
finds those we have).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from fhir_burnout.fhir import FhirClient
from fhir_burnout.integration import REFERRALS, Feed, PollResult, changed_since, watched
from fhir_burnout.referral._intake import ReferralError, SeenBy, take_referral
from fhir_burnout.referral._notify import referral_criteria
from fhir_burnout.settings import Settings
from fhir_burnout.workflow import Definitions


def reconcile(
    engine: Engine,
    client: FhirClient,
    definitions: Definitions,
    *,
    criteria: Mapping[str, str],
    practice: str | None = None,
    now: datetime | None = None,
    seen_by: SeenBy = "reconciliation",
    triage: bool = True,
) -> PollResult:
    """Take in every referral changed on the EHR since the last poll that succeeded.
    ``criteria`` are the search parameters that make a ServiceRequest a referral to this
    practice (``{"performer": "Organization/12", "status": "active"}``, say). Each referral
    is taken in in a transaction of its own: one that is refused (with the reason in the
    result) does not hold back the others. ``now`` is when the poll counts as succeeded
    (our clock; default: the time it ends); ``seen_by`` what the referrals it takes in are
    recorded as seen by (``subscription`` when a notification asked for the poll);
    ``triage``: new referrals wait for a care professional (False: enrolled at once)."""
    fhir_base = client.base_url.rstrip("/")
    result = PollResult()

    def take(request: dict[str, Any]) -> None:
        result.seen += 1
        try:
            with Session(engine) as db, db.begin():
                intake = take_referral(
                    db, definitions, fhir_base=fhir_base, service_request=request,
                    seen_by=seen_by, practice=practice, triage=triage,
                )  # fmt: skip
            result.new += intake.new
        except ReferralError as refused:
            result.refused.append(f"ServiceRequest/{request.get('id')}: {refused}")

    changed_since(engine, client, REFERRALS, ("ServiceRequest", criteria), take, now=now)
    return result


class ReferralFeed(Feed):
    """The referrals to each EHR's practice. ``ehrs`` are ``(fhir_base, practice)`` pairs;
    ``auto_enrol``: the EHRs whose referrals are enrolled at once (``referral_triage =
    false``); the others' wait for triage. Subscribing is left to ``fhir-burnout referrals
    subscribe``."""

    name = REFERRALS

    def __init__(
        self,
        definitions: Definitions,
        ehrs: Iterable[tuple[str, str]],
        *,
        auto_enrol: Iterable[str] = (),
    ) -> None:
        self.definitions = definitions
        self.practices = {base.rstrip("/"): practice for base, practice in ehrs}
        self.ehrs = tuple(self.practices)
        self.auto_enrol = frozenset(base.rstrip("/") for base in auto_enrol)

    @classmethod
    def from_settings(cls, definitions: Definitions, settings: Settings) -> ReferralFeed:
        """The feed of every configured EHR with referrals (a SMART EHR with a practice)."""
        ehrs = [w for w in watched(settings, REFERRALS) if w.practice]
        return cls(definitions, [(w.fhir_base, str(w.practice)) for w in ehrs],
                   auto_enrol=[w.fhir_base for w in ehrs if not w.triage])  # fmt: skip

    def reconcile(
        self, engine: Engine, client: FhirClient, fhir_base: str, *, notified: bool, now: datetime
    ) -> PollResult:
        """The poll of one EHR's referrals (:func:`reconcile`)."""
        practice = self.practices[fhir_base]
        return reconcile(
            engine, client, self.definitions, criteria=referral_criteria(practice),
            practice=practice, now=now,
            seen_by="subscription" if notified else "reconciliation",
            triage=fhir_base not in self.auto_enrol,
        )  # fmt: skip
