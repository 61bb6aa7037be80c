"""Which polls each configured EHR has: the one place that reads that from the config
(docs/architecture.md, the adapter seam).

A feed is one kind of poll, named in the poll-state table: ``referrals`` (the ServiceRequests
to a practice, SMART EHRs) and ``koppeltaal-tasks`` (the Tasks a Koppeltaal domain's portal
assigns). A SMART EHR with a practice has the referrals feed; a Koppeltaal domain has its
Tasks only (a KT2 server holds no referrals: polling it for ServiceRequests only fails).
"""

from __future__ import annotations

from dataclasses import dataclass

from fhir_burnout.settings import Settings

#: The feed of referrals (ServiceRequests to the practice) on a SMART EHR.
REFERRALS = "referrals"
#: The feed of new and changed Tasks on a Koppeltaal domain.
KOPPELTAAL_TASKS = "koppeltaal-tasks"


@dataclass(frozen=True)
class Watched:
    """One EHR a feed polls, with what the feed needs of its config: the practice, our
    client id there, and whether new referrals wait for triage."""

    fhir_base: str
    feed: str
    practice: str | None = None
    client_id: str = ""
    triage: bool = True


def _feeds_of(mode: str, practice: str | None) -> tuple[str, ...]:
    if mode == "koppeltaal":
        return (KOPPELTAAL_TASKS,)
    return (REFERRALS,) if practice else ()


def watched(settings: Settings, feed: str | None = None) -> list[Watched]:
    """Every EHR each feed polls (only ``feed``'s, given one), in the config's order."""
    return [
        Watched(b.fhir_base, name, b.practice, b.worker_client_id, b.triage)
        for b in settings.ehrs
        for name in _feeds_of(b.mode, b.practice)
        if feed in (None, name)
    ]
