"""What a feed is, and the step every feed's poll shares: search what changed since the
last poll that succeeded, take each in, and mark how far the poll got.

Subscription notifications can be lost (R4 gives no delivery guarantee), so every feed
also polls. A poll searches the EHR for what changed since the last one that succeeded
(``_lastUpdated``, following paging: R4 §3.1.1.5.1 and §3.1.0.3.7), so its cost grows with
what is new, not with all that ever was. Where it got to is the server's own clock (the
newest ``meta.lastUpdated`` it showed us), never ours, so clock skew loses nothing; the
next poll searches from that instant inclusive (``ge``): what changed in the same instant
is seen again and found taken in. A poll that fails midway leaves the mark where it was.

A :class:`Feed` holds only what differs between the ways of connecting (docs/architecture.md,
the adapter seam): which EHRs, how one resource is taken in, whether the poller subscribes,
whether a notification's trace goes on. :class:`~fhir_burnout.integration.Poller` does the
rest.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from fhir_burnout.db import upsert
from fhir_burnout.fhir import FhirClient
from fhir_burnout.integration._subscription import Subscribed
from fhir_burnout.integration._tables import PollRow

#: Page size asked of the EHR (it may give fewer).
PAGE = 100
#: The poll-state table's primary key, for upserts.
KEY = ("fhir_base", "feed")


def utcnow() -> datetime:
    """Now, in UTC (the poller's default clock)."""
    return datetime.now(UTC)


@dataclass
class PollResult:
    """What one poll saw: resources returned, newly taken in, refused (with why)."""

    seen: int = 0
    new: int = 0
    refused: list[str] = field(default_factory=list)

    def counts(self) -> str:
        """The counts for the log: never what the resources say (health data)."""
        return f"{self.seen} seen, {self.new} new, {len(self.refused)} refused"


class Feed(ABC):
    """One kind of poll: ``name`` (the poll-state row's ``feed``), the EHRs it watches
    (FHIR bases without a trailing slash) and how one poll of one EHR runs."""

    name: str
    ehrs: tuple[str, ...]

    @abstractmethod
    def reconcile(
        self, engine: Engine, client: FhirClient, fhir_base: str, *, notified: bool, now: datetime
    ) -> PollResult:
        """One poll of ``fhir_base`` (``notified``: a notification asked for it)."""

    @property
    def subscribes_itself(self) -> bool:
        """Whether the poller makes our Subscription, once per process and EHR (else a
        command does: ``fhir-burnout referrals subscribe``)."""
        return False

    def subscribe(self, client: FhirClient) -> Subscribed:
        """Our Subscription on the EHR of ``client`` (when :attr:`subscribes_itself`)."""
        raise NotImplementedError(f"the {self.name} feed does not subscribe itself")

    def traced(self, trace_id: str | None, cause: str | None) -> AbstractContextManager[object]:
        """Where a poll's requests run: in a notification's trace (``trace_id``, ``cause``)
        for the feeds that carry one on (Koppeltaal, TOP-KT-006), else as they are."""
        return nullcontext()


def poll_row(db: Session, fhir_base: str, feed: str) -> PollRow | None:
    """The poll state of ``feed`` on ``fhir_base`` (None: never polled nor notified)."""
    return db.get(PollRow, (fhir_base.rstrip("/"), feed))


def want_poll(
    db: Session,
    fhir_base: str,
    feed: str,
    *,
    trace_id: str | None = None,
    cause: str | None = None,
    now: datetime | None = None,
) -> None:
    """Record that a notification asks for a poll of ``feed`` on ``fhir_base`` (and in which
    trace); the poller clears it after the poll, unless a newer notification replaced it."""
    wanted = {
        "fhir_base": fhir_base.rstrip("/"),
        "feed": feed,
        "wanted_at": now or utcnow(),
        "trace_id": trace_id,
        "cause": cause,
    }
    upsert(db, PollRow, [wanted], KEY)


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _newer(newest: str | None, resource: Mapping[str, Any]) -> str | None:
    updated = str((resource.get("meta") or {}).get("lastUpdated") or "")
    if updated and (newest is None or _instant(updated) > _instant(newest)):
        return updated
    return newest


def changed_since(
    engine: Engine,
    client: FhirClient,
    feed: str,
    search: tuple[str, Mapping[str, str]],
    take: Callable[[dict[str, Any]], object],
    *,
    now: datetime | None = None,
) -> None:
    """Search ``search`` (a resource type and its parameters) for what changed on the EHR
    of ``client`` since ``feed``'s last poll that succeeded, hand each resource to ``take``
    (which commits what it takes in itself, so one refused holds back none of the others),
    then mark the poll: the newest ``meta.lastUpdated`` seen, and ``now`` (our clock;
    default: when it ends) as when it succeeded. An exception from the search or from
    ``take`` leaves the mark where it was."""
    fhir_base = client.base_url.rstrip("/")
    with Session(engine) as db:
        state = poll_row(db, fhir_base, feed)
        since = state.seen_until if state is not None else None
    resource_type, criteria = search
    params = {**criteria, "_sort": "_lastUpdated", "_count": str(PAGE)}
    if since:
        params["_lastUpdated"] = f"ge{since}"
    newest = since
    for resource in client.search(resource_type, params):
        newest = _newer(newest, resource)
        take(resource)
    with Session(engine) as db, db.begin():  # a poll may run beside another: no look first
        mark = {
            "fhir_base": fhir_base,
            "feed": feed,
            "seen_until": newest,
            "succeeded_at": now or utcnow(),
        }
        upsert(db, PollRow, [mark], KEY)
