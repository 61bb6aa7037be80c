"""The referrals waiting for triage, as the practice's list shows them (kept apart from
the triage pages, which build on the care professional's pages that show this list)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from fhir_burnout.referral import summarise, waiting_for_triage
from fhir_burnout.web._i18n import format_date, translate, translate_n


@dataclass(frozen=True)
class Waiting:
    """A referral on the practice's list: who, since when, and how long that is."""

    key: str
    patient: str
    received: str
    waited: str
    urgent: bool = False  # the referrer asked for it urgently (ServiceRequest.priority)


def _aware(moment: datetime) -> datetime:
    # SQLite gives back the naive UTC time we stored; PostgreSQL an aware one.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def waited(since: datetime, lang: str, now: datetime | None = None) -> str:
    """How long a referral waits, in whole days, as people say it."""
    days = ((now or datetime.now(UTC)) - _aware(since)).days
    if days <= 0:
        return translate("triage_waited_today", lang)
    return translate_n("triage_waited_days", days, lang)


#: ServiceRequest.priority values (R4 request-priority) that ask for haste.
URGENT = frozenset({"urgent", "asap", "stat"})


def waiting_list(
    db: Session,
    fhir_base: str,
    practice: str | None,
    lang: str,
    patients: Collection[str] | None = None,
) -> list[Waiting]:
    """The practice's referrals that wait for triage, for the /practice page: urgent ones
    first, then the longest waiting (``patients``: only theirs; None: everyone's)."""
    rows = [
        Waiting(
            key=row.key,
            patient=row.patient,
            received=format_date(_aware(row.received_at).date().isoformat(), lang),
            waited=waited(row.received_at, lang),
            urgent=summarise(row).priority in URGENT,
        )
        for row in waiting_for_triage(db, fhir_base=fhir_base, practice=practice)
        if patients is None or row.patient in patients
    ]
    return sorted(rows, key=lambda w: not w.urgent)  # stable: longest waiting within each
