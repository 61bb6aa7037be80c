"""The reconciliation poll on a schedule: when a notification asked for it, and every
``interval`` seconds in any case (notifications can be lost: R4 promises no delivery).

:class:`ReferralPoller` runs in the worker process (``fhir-burnout worker``, the demo),
beside the outbox worker and stopped by the same ``threading.Event``. Each round, for each
EHR with a practice configured, it polls (:func:`reconcile`) when

- ``wanted_at`` is set: a notification arrived (``POST /referrals/notify``). After the poll,
  ``wanted_at`` is cleared only if it still holds the value read before the poll began: a
  notification that arrives during a poll leaves its own value, which asks for another;
- or the last poll that succeeded is ``interval`` seconds old or more, or there was none
  (``interval`` 0: only when notified).

Several worker processes may run against one PostgreSQL: a poll holds a transaction-level
advisory lock on its EHR (``pg_try_advisory_xact_lock``), and a process that does not get
it skips that EHR this round. Not a row lock on the ``referral_poll`` row: the notification
endpoint writes that row, and must answer at once rather than wait for a poll to end. On
SQLite one worker process is the norm and no lock is taken; two polls at once would only
repeat work (taking a referral in is idempotent).

A poll that fails (the EHR down, a token refused) is logged without health data or tokens,
keeps ``wanted_at`` as it was, and is tried again after a short wait that doubles with each
failure in a row (``retry_base`` up to ``retry_cap`` seconds), kept in this process only.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy import text, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from fhir_burnout.db import is_postgresql
from fhir_burnout.fhir import FhirClient
from fhir_burnout.referral._notify import referral_criteria
from fhir_burnout.referral._poll import PollResult, reconcile
from fhir_burnout.referral._tables import PollRow
from fhir_burnout.settings import Settings
from fhir_burnout.sync import Retries, error_kind
from fhir_burnout.workflow import Definitions

log = logging.getLogger(__name__)

#: Default seconds between polls of one EHR when no notification asks for one.
DEFAULT_INTERVAL = 300.0

PollState = Literal["polled", "idle", "busy", "failed", "waiting"]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class PollOutcome:
    """What one round did for one EHR: ``polled`` (why: ``notified``, ``interval`` or
    ``first``), ``idle`` (not due), ``busy`` (another process polls it), ``failed`` (with the
    error's kind), ``waiting`` (after a failure, until the retry time)."""

    fhir_base: str
    state: PollState
    why: str = ""
    result: PollResult | None = None
    error: str | None = None


def _aware(moment: datetime) -> datetime:
    # SQLite gives back the naive UTC time we stored; PostgreSQL an aware one.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _lock_key(fhir_base: str) -> int:
    digest = hashlib.sha256(b"fhir-burnout referral poll|" + fhir_base.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def _exclusive(engine: Engine, fhir_base: str) -> Iterator[bool]:
    """Whether this process may poll ``fhir_base`` now; on PostgreSQL, held until the end
    of the ``with`` (an advisory lock: it goes with the transaction, also when we die)."""
    if not is_postgresql(engine):
        yield True
        return
    with engine.connect() as connection, connection.begin():
        got = connection.execute(
            text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": _lock_key(fhir_base)}
        ).scalar()
        yield bool(got)


class ReferralPoller:
    """Runs :func:`reconcile` for each watched EHR when a notification asked for it or the
    interval has passed. ``ehrs`` are ``(fhir_base, practice)`` pairs; ``client_for`` gives
    the FhirClient of an EHR (``EhrClients.get``; not closed here). ``run_once`` from tests,
    ``run`` from the worker; neither raises for a poll that fails. ``auto_enrol``: the EHRs
    whose referrals are enrolled at once (``referral_triage = false``); the others' wait
    for triage."""

    def __init__(
        self,
        engine: Engine,
        client_for: Callable[[str], FhirClient],
        definitions: Definitions,
        ehrs: Iterable[tuple[str, str]],
        *,
        interval: float = DEFAULT_INTERVAL,
        clock: Callable[[], datetime] = _utcnow,
        retry_base: float = 5.0,
        retry_cap: float = 300.0,
        auto_enrol: Iterable[str] = (),
    ) -> None:
        self.engine = engine
        self.client_for = client_for
        self.definitions = definitions
        self.ehrs = tuple((base.rstrip("/"), practice) for base, practice in ehrs)
        self.interval = interval
        self.clock = clock
        self.retries = Retries(retry_base, retry_cap)
        self.auto_enrol = frozenset(base.rstrip("/") for base in auto_enrol)

    @classmethod
    def from_settings(
        cls,
        engine: Engine,
        client_for: Callable[[str], FhirClient],
        definitions: Definitions,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = _utcnow,
    ) -> ReferralPoller:
        """A poller for every configured EHR with a practice, at the configured interval."""
        ehrs = [(b.fhir_base, b.practice) for b in settings.ehrs if b.practice]
        return cls(
            engine, client_for, definitions, ehrs, interval=settings.referral_poll_seconds,
            clock=clock, auto_enrol=[b.fhir_base for b in settings.ehrs if not b.triage],
        )  # fmt: skip

    def run(self, stop: threading.Event, *, idle: float = 1.0) -> None:
        """Poll what is due every ``idle`` seconds until ``stop`` is set."""
        while not stop.is_set():
            self.run_once()
            stop.wait(idle)

    def run_once(self) -> list[PollOutcome]:
        """One round: poll each EHR that is due."""
        return [self.poll(fhir_base, practice) for fhir_base, practice in self.ehrs]

    def poll(self, fhir_base: str, practice: str) -> PollOutcome:
        """Poll one EHR if it is due and no other process polls it; never raises."""
        now = self.clock()
        if self.retries.waiting(fhir_base, now):
            return PollOutcome(fhir_base, "waiting")
        try:
            with _exclusive(self.engine, fhir_base) as mine:
                if not mine:
                    return PollOutcome(fhir_base, "busy")
                return self._poll(fhir_base, practice, now)
        except Exception as error:
            return self._failed(fhir_base, now, error)

    def _poll(self, fhir_base: str, practice: str, now: datetime) -> PollOutcome:
        with Session(self.engine) as db:
            row = db.get(PollRow, fhir_base)
            wanted = row.wanted_at if row is not None else None
            last = row.succeeded_at if row is not None else None
        if wanted is not None:
            why = "notified"
        elif self.interval <= 0:
            return PollOutcome(fhir_base, "idle")
        elif last is None:
            why = "first"
        elif now - _aware(last) >= timedelta(seconds=self.interval):
            why = "interval"
        else:
            return PollOutcome(fhir_base, "idle")
        result = reconcile(
            self.engine, self.client_for(fhir_base), self.definitions,
            criteria=referral_criteria(practice), practice=practice, now=now,
            seen_by="subscription" if wanted is not None else "reconciliation",
            triage=fhir_base not in self.auto_enrol,
        )  # fmt: skip
        if wanted is not None:
            # Only the notification this poll answered: a newer one keeps its value.
            with Session(self.engine) as db, db.begin():
                db.execute(
                    update(PollRow)
                    .where(PollRow.fhir_base == fhir_base, PollRow.wanted_at == wanted)
                    .values(wanted_at=None)
                )
        self.retries.succeeded(fhir_base)
        log.info(
            "referral poll of %s (%s): %d seen, %d new, %d refused",
            fhir_base, why, result.seen, result.new, len(result.refused),
        )  # fmt: skip
        return PollOutcome(fhir_base, "polled", why, result)

    def _failed(self, fhir_base: str, now: datetime, error: Exception) -> PollOutcome:
        delay = self.retries.failed(fhir_base, now)
        kind = error_kind(error)
        log.warning(
            "referral poll of %s failed (%s); trying again in %.0f s", fhir_base, kind, delay
        )
        return PollOutcome(fhir_base, "failed", error=kind)
