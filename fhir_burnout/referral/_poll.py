"""The reconciliation poll: the referrals a lost notification would have brought.

Subscription notifications can be lost (R4 gives no delivery guarantee). On a schedule, and
when a notification arrives, we search the EHR for the ServiceRequests of this practice
changed since the last poll that succeeded (``_lastUpdated``, following paging: R4
§3.1.1.5.1 and §3.1.0.3.7) and take each in (:func:`take_referral` finds those we have).
The search asks only for what changed since then, so a poll's cost grows with the new
referrals, not with all the referrals ever made.

Where the last poll got to is the server's own clock (the newest ``meta.lastUpdated`` it
showed us), never ours, so clock skew between us and the EHR loses nothing. The next poll
searches from that instant inclusive (``ge``): what changed in the same instant is seen
again and found taken in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from fhir_burnout.db import upsert
from fhir_burnout.fhir import FhirClient
from fhir_burnout.referral._intake import ReferralError, SeenBy, take_referral
from fhir_burnout.referral._tables import PollRow
from fhir_burnout.workflow import Definitions

#: Page size asked of the EHR (it may give fewer).
PAGE = 100


@dataclass
class PollResult:
    """What one poll saw: ServiceRequests returned, newly taken in, refused (with why)."""

    seen: int = 0
    new: int = 0
    refused: list[str] = field(default_factory=list)


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
    result) does not hold back the others. A poll that fails midway leaves the mark where
    it was, so the next one looks again. ``now`` is when the poll counts as succeeded (our
    clock; default: the time it ends); ``seen_by`` what the referrals it takes in are
    recorded as seen by (``subscription`` when a notification asked for the poll);
    ``triage``: new referrals wait for a care professional (False: enrolled at once)."""
    fhir_base = client.base_url.rstrip("/")
    with Session(engine) as db:
        state = db.get(PollRow, fhir_base)
        since = state.seen_until if state is not None else None
    params = {**criteria, "_sort": "_lastUpdated", "_count": str(PAGE)}
    if since:
        params["_lastUpdated"] = f"ge{since}"
    result, newest = PollResult(), since
    for request in client.search("ServiceRequest", params):
        result.seen += 1
        updated = str(request.get("meta", {}).get("lastUpdated") or "")
        if updated and (newest is None or _instant(updated) > _instant(newest)):
            newest = updated
        try:
            with Session(engine) as db, db.begin():
                intake = take_referral(
                    db, definitions, fhir_base=fhir_base, service_request=request,
                    seen_by=seen_by, practice=practice, triage=triage,
                )  # fmt: skip
            result.new += intake.new
        except ReferralError as refused:
            result.refused.append(f"ServiceRequest/{request.get('id')}: {refused}")
    with Session(engine) as db, db.begin():  # a poll may run beside another: no look first
        mark = {
            "fhir_base": fhir_base,
            "seen_until": newest,
            "succeeded_at": now or datetime.now(UTC),
        }
        upsert(db, PollRow, [mark], "fhir_base")
    return result


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
