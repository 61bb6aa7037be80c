"""The poll on a schedule, for every feed: when a notification asked for it, and every
``interval`` seconds in any case (notifications can be lost: R4 promises no delivery).

:class:`Poller` runs in the worker process (``fhir-burnout worker``, the demo), beside the
outbox worker and stopped by the same ``threading.Event``. Each round, for each feed and
each EHR it watches, it polls (:meth:`Feed.reconcile`) when

- ``wanted_at`` is set: a notification arrived (``POST /referrals/notify``,
  ``POST /koppeltaal/notify``). After the poll, ``wanted_at`` is cleared only if it still
  holds the value read before the poll began: a notification that arrives during a poll
  leaves its own value, which asks for another;
- or the last poll that succeeded is ``interval`` seconds old or more, or there was none
  (``interval`` 0: only when notified).

Several worker processes may run against one PostgreSQL: a poll holds a transaction-level
advisory lock on its EHR and feed (``pg_try_advisory_xact_lock``), and a process that does
not get it skips that poll this round. Not a row lock on the ``ehr_poll`` row: the
notification endpoint writes that row, and must answer at once rather than wait for a poll
to end. On SQLite one worker process is the norm and no lock is taken; two polls at once
would only repeat work (taking a resource in is idempotent).

A poll that fails (the EHR down, a token refused) is logged without health data or tokens,
keeps ``wanted_at`` as it was, and is tried again after a short wait that doubles with each
failure in a row (``retry_base`` up to ``retry_cap`` seconds), kept in this process only.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy import text, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from fhir_burnout.db import is_postgresql, upsert
from fhir_burnout.errors import FhirBurnoutError
from fhir_burnout.fhir import FhirClient
from fhir_burnout.integration._poll import KEY, Feed, PollResult, poll_row, utcnow
from fhir_burnout.integration._tables import PollRow
from fhir_burnout.sync import Retries, error_kind

log = logging.getLogger(__name__)

#: Default seconds between polls of one EHR when no notification asks for one.
DEFAULT_INTERVAL = 300.0

PollState = Literal["polled", "idle", "busy", "failed", "waiting"]


@dataclass(frozen=True)
class PollOutcome:
    """What one round did for one feed on one EHR: ``polled`` (why: ``notified``,
    ``interval`` or ``first``), ``idle`` (not due), ``busy`` (another process polls it),
    ``failed`` (with the error's kind), ``waiting`` (after a failure, until the retry time)."""

    fhir_base: str
    state: PollState
    why: str = ""
    result: PollResult | None = None
    error: str | None = None
    feed: str = ""


def _aware(moment: datetime) -> datetime:
    # SQLite gives back the naive UTC time we stored; PostgreSQL an aware one.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _lock_key(feed: str, fhir_base: str) -> int:
    digest = hashlib.sha256(f"fhir-burnout poll|{feed}|{fhir_base}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def _exclusive(engine: Engine, feed: str, fhir_base: str) -> Iterator[bool]:
    """Whether this process may poll ``feed`` on ``fhir_base`` now; on PostgreSQL, held
    until the end of the ``with`` (an advisory lock: it goes with the transaction, also when
    we die)."""
    if not is_postgresql(engine):
        yield True
        return
    with engine.connect() as connection, connection.begin():
        got = connection.execute(
            text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": _lock_key(feed, fhir_base)}
        ).scalar()
        yield bool(got)


@dataclass(frozen=True)
class _Wanted:
    """A poll's state as read before it runs."""

    at: datetime | None
    last: datetime | None
    trace_id: str | None
    cause: str | None


class Poller:
    """Runs each feed's poll of each EHR it watches when a notification asked for it or the
    interval has passed. ``client_for`` gives the FhirClient of an EHR (not closed here).
    ``run_once`` from tests, ``run`` from the worker; neither raises for a poll that fails."""

    def __init__(
        self,
        engine: Engine,
        client_for: Callable[[str], FhirClient],
        *feeds: Feed,
        interval: float = DEFAULT_INTERVAL,
        clock: Callable[[], datetime] = utcnow,
        retry_base: float = 5.0,
        retry_cap: float = 300.0,
    ) -> None:
        self.engine, self.client_for, self.feeds = engine, client_for, feeds
        self.interval, self.clock = interval, clock
        self.retries = Retries(retry_base, retry_cap)
        self._subscribed: set[tuple[str, str]] = set()

    def run(self, stop: threading.Event, *, idle: float = 1.0) -> None:
        """Poll what is due every ``idle`` seconds until ``stop`` is set."""
        while not stop.is_set():
            self.run_once()
            stop.wait(idle)

    def run_once(self) -> list[PollOutcome]:
        """One round: poll each feed's EHRs that are due."""
        return [self.poll(feed, fhir_base) for feed in self.feeds for fhir_base in feed.ehrs]

    def poll(self, feed: Feed, fhir_base: str) -> PollOutcome:
        """Poll one EHR for ``feed`` if it is due and no other process polls it; never
        raises."""
        now = self.clock()
        retry_key = f"{feed.name} {fhir_base}"
        if self.retries.waiting(retry_key, now):
            return PollOutcome(fhir_base, "waiting", feed=feed.name)
        self._subscribe(feed, fhir_base)
        try:
            with _exclusive(self.engine, feed.name, fhir_base) as mine:
                if not mine:
                    return PollOutcome(fhir_base, "busy", feed=feed.name)
                return self._poll(feed, fhir_base, now)
        except Exception as error:
            delay = self.retries.failed(retry_key, now)
            kind = error_kind(error)
            log.warning(
                "%s poll of %s failed (%s); trying again in %.0f s",
                feed.name, fhir_base, kind, delay,
            )  # fmt: skip
            return PollOutcome(fhir_base, "failed", error=kind, feed=feed.name)

    def _wanted(self, feed: Feed, fhir_base: str) -> _Wanted:
        with Session(self.engine) as db:
            row = poll_row(db, fhir_base, feed.name)
            if row is None:
                return _Wanted(None, None, None, None)
            return _Wanted(row.wanted_at, row.succeeded_at, row.trace_id, row.cause)

    def _why(self, wanted: _Wanted, now: datetime) -> str | None:
        """Why a poll is due now (None: it is not)."""
        if wanted.at is not None:
            return "notified"
        if self.interval <= 0:
            return None
        if wanted.last is None:
            return "first"
        if now - _aware(wanted.last) >= timedelta(seconds=self.interval):
            return "interval"
        return None

    def _poll(self, feed: Feed, fhir_base: str, now: datetime) -> PollOutcome:
        wanted = self._wanted(feed, fhir_base)
        why = self._why(wanted, now)
        if why is None:
            return PollOutcome(fhir_base, "idle", feed=feed.name)
        notified = wanted.at is not None
        # A notification's trace goes on (TOP-KT-006 step 6); a scheduled poll starts one.
        with feed.traced(
            wanted.trace_id if notified else None, wanted.cause if notified else None
        ):
            result = feed.reconcile(
                self.engine, self.client_for(fhir_base), fhir_base, notified=notified, now=now
            )
        if notified:
            # Only the notification this poll answered: a newer one keeps its value.
            with Session(self.engine) as db, db.begin():
                db.execute(
                    update(PollRow)
                    .where(PollRow.fhir_base == fhir_base, PollRow.feed == feed.name,
                           PollRow.wanted_at == wanted.at)
                    .values(wanted_at=None, trace_id=None, cause=None)
                )  # fmt: skip
        self.retries.succeeded(f"{feed.name} {fhir_base}")
        log.info("%s poll of %s (%s): %s", feed.name, fhir_base, why, result.counts())
        return PollOutcome(fhir_base, "polled", why, result, feed=feed.name)

    def _subscribe(self, feed: Feed, fhir_base: str) -> None:
        """Once per process, EHR and feed that subscribes itself: make sure our Subscription
        is there (idempotent; a failure is tried again with the next poll) and remember its
        id (a notification's AuditEvent names it)."""
        if not feed.subscribes_itself or (feed.name, fhir_base) in self._subscribed:
            return
        try:
            with feed.traced(None, None):
                done = feed.subscribe(self.client_for(fhir_base))
            with Session(self.engine) as db, db.begin():
                mark = {"fhir_base": fhir_base, "feed": feed.name,
                        "subscription": done.subscription.split("/")[-1]}  # fmt: skip
                upsert(db, PollRow, [mark], KEY)
        except Exception as error:
            # The poll goes on without it (it is what makes a lost notification harmless);
            # the next round tries again. The error's kind only: no URLs, no tokens; our own
            # refusals of a setting say what to change (their messages hold neither).
            why = type(error).__name__
            if isinstance(error, FhirBurnoutError) and isinstance(error, ValueError):
                why = f"{why}: {error}"
            log.warning("%s Subscription on %s failed (%s)", feed.name, fhir_base, why)
            return
        self._subscribed.add((feed.name, fhir_base))
        log.info("%s Subscription on %s: %s", feed.name, fhir_base, done.action)
