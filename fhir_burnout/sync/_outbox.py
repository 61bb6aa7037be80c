"""The outbox: writes for the EHR, committed with the change that caused them.

``enqueue`` adds an entry inside the caller's transaction, so the entry exists exactly when
the change does. Workers ``claim`` entries with a lease: on PostgreSQL with ``SELECT … FOR
UPDATE SKIP LOCKED``, on SQLite under the database write lock. Only the oldest undelivered
entry of each partition (a patient) can be claimed, which keeps each patient's writes in
order while different patients go concurrently. A dead entry holds its partition back until
someone fixes and requeues it: later writes may depend on it, and nothing is dropped.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, insert, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, aliased

from fhir_burnout.db import is_postgresql
from fhir_burnout.errors import FhirBurnoutError
from fhir_burnout.sync._operations import Operation
from fhir_burnout.sync._tables import OutboxEntry, OutboxEvent

PENDING, LEASED, DELIVERED, DEAD = "pending", "leased", "delivered", "dead"

#: Why an entry cannot be delivered now (``OutboxEntry.waiting_for``), in plain words (the
#: practice's page has them in Dutch and English too).
WAITING = {
    "worker-refused": "the EHR's authorization server refused the worker's credentials "
    "(SMART Backend Services): register the worker's client and key at the EHR, or set "
    'writes = "user"',
    "no-worker": "the worker has no key for SMART Backend Services (fhir-burnout keys), "
    'and the EHR is not set to writes = "user"',
    "no-user": "the EHR takes writes only with a signed-in person's authorisation (writes = "
    '"user"), and nobody signed in made these changes (a referral, the poll, the weekly '
    "check-ins)",
    "user-ended": "the person who made these changes has no authorisation left at the EHR; "
    "they are delivered when that person next opens the programme from the EHR",
}


class OutboxError(FhirBurnoutError, ValueError):
    """An outbox entry that does not exist or cannot be changed that way."""

    code = "not-found"


@dataclass(frozen=True)
class Agent:
    """Who made a change, for its Provenance: a Patient or Practitioner reference, or None
    for the app itself; and the practice (Organization) on whose behalf."""

    who: str | None = None
    on_behalf_of: str | None = None


@dataclass(frozen=True)
class Claimed:
    """An entry a worker holds the lease on."""

    id: int
    key: str
    fhir_base: str
    partition: str
    kind: str
    payload: dict[str, Any]
    attempts: int
    #: the launch session whose person caused the write (None: the app itself)
    caused_by: str | None = None


#: The launch session whose person is acting in this thread (a web request), recorded with
#: every entry queued meanwhile. A context variable, not a parameter through every
#: workflow function: the web layer knows the session, the workflow must not.
_CAUSE: ContextVar[str | None] = ContextVar("fhir_burnout_outbox_cause", default=None)


@contextmanager
def caused_by(session_id: str | None) -> Iterator[None]:
    """Record ``session_id`` as the cause of every entry queued inside this block."""
    token = _CAUSE.set(session_id)
    try:
        yield
    finally:
        _CAUSE.reset(token)


def set_cause(session_id: str | None) -> None:
    """Record ``session_id`` as the cause of what this thread queues from now on (a web
    request sets it first and clears it last: see ``caused_by`` for a block)."""
    _CAUSE.set(session_id)


def utcnow() -> datetime:
    """Now, in UTC (the outbox keeps every time in UTC)."""
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    # SQLite hands timezone-aware columns back naive; they were written in UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def enqueue(
    db: Session,
    *,
    fhir_base: str,
    partition: str,
    kind: str,
    operations: Sequence[Operation],
    agent: Agent,
    now: datetime | None = None,
    context: Mapping[str, str] | None = None,
) -> str:
    """Add an entry to the outbox in the caller's transaction (the caller commits); returns
    its key. One INSERT: the entry itself records when it was queued and what for, so its
    history of events starts with the first attempt. ``context``: kept in the payload for
    the delivery, the same at every attempt (a Koppeltaal entry's ``trace_id`` and
    ``cause``: its retries stay in the trace that caused it)."""
    now = now or utcnow()
    key = str(uuid.uuid4())
    params = {
        "key": key,
        "fhir_base": fhir_base.rstrip("/"),
        "partition": partition,
        "kind": kind,
        "payload": json.dumps(
            {
                "operations": [op.to_json() for op in operations],
                "agent": {"who": agent.who, "onBehalfOf": agent.on_behalf_of},
                "recorded": now.isoformat(timespec="seconds"),
            }
            | {k: v for k, v in (context or {}).items() if k not in _OWN_KEYS},
            ensure_ascii=False,
        ),
        "state": PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "caused_by": _CAUSE.get(),
    }
    db.execute(_QUEUE, params)
    return key


#: What ``enqueue`` writes into every payload itself (a ``context`` cannot replace it).
_OWN_KEYS = frozenset({"operations", "agent", "recorded"})

#: Built once: a Core INSERT with parameters, without the ORM's per-row bookkeeping (an
#: entry is written once here and only read back by workers, never as this session's object).
_QUEUE = insert(OutboxEntry.metadata.tables[OutboxEntry.__tablename__])


def record(db: Session, entry_id: int, what: str, now: datetime | None = None) -> None:
    """Note what happened to an entry (kept for the practitioner view and the CLI)."""
    db.add(OutboxEvent(entry_id=entry_id, at=now or utcnow(), what=what))


def claim(
    engine: Engine,
    owner: str,
    *,
    limit: int = 10,
    lease: float = 60.0,
    now: datetime | None = None,
) -> list[Claimed]:
    """Lease up to ``limit`` due entries, each the oldest undelivered one of its partition."""
    now = now or utcnow()
    earlier = aliased(OutboxEntry)
    blocked = exists().where(
        and_(
            earlier.partition == OutboxEntry.partition,
            earlier.id < OutboxEntry.id,
            earlier.state != DELIVERED,
        )
    )
    due = or_(
        and_(OutboxEntry.state == PENDING, OutboxEntry.next_attempt_at <= now),
        and_(OutboxEntry.state == LEASED, OutboxEntry.lease_until <= now),
    )
    query = select(OutboxEntry).where(due, ~blocked).order_by(OutboxEntry.id).limit(limit)
    if is_postgresql(engine):
        query = query.with_for_update(skip_locked=True, of=OutboxEntry)
    claimed = []
    with Session(engine) as db, db.begin():
        for entry in db.scalars(query):
            if entry.state == LEASED:
                record(db, entry.id, f"lease of {entry.lease_owner} ran out; taken over", now)
            entry.state = LEASED
            entry.lease_owner = owner
            entry.lease_until = now + timedelta(seconds=lease)
            entry.attempts += 1
            claimed.append(
                Claimed(
                    entry.id,
                    entry.key,
                    entry.fhir_base,
                    entry.partition,
                    entry.kind,
                    json.loads(entry.payload),
                    entry.attempts,
                    entry.caused_by,
                )
            )
    return claimed


def _held(db: Session, entry_id: int, owner: str) -> OutboxEntry | None:
    entry = db.get(OutboxEntry, entry_id, with_for_update=True)
    if entry is None or entry.state != LEASED or entry.lease_owner != owner:
        return None  # our lease ran out and another worker took the entry over
    return entry


def mark_all_delivered(
    db: Session, delivered: Sequence[tuple[int, str]], owner: str, now: datetime
) -> None:
    """Close many delivered entries at once: one UPDATE and one INSERT, not two per entry.

    An entry whose lease ran out (another worker holds it now) is left to that worker,
    with an event saying we delivered it too (harmless: the writes are idempotent).
    """
    ids = [entry_id for entry_id, _ in delivered]
    closed = set(
        db.scalars(
            update(OutboxEntry)
            .where(
                OutboxEntry.id.in_(ids),
                OutboxEntry.state == LEASED,
                OutboxEntry.lease_owner == owner,
            )
            .values(
                state=DELIVERED, delivered_at=now, lease_owner=None, lease_until=None,
                last_error=None, waiting_for=None,
            )
            .returning(OutboxEntry.id)
        )
    )  # fmt: skip
    db.execute(
        insert(OutboxEvent),
        [
            {
                "entry_id": entry_id,
                "at": now,
                "what": f"{what} (by {owner})"
                if entry_id in closed
                else f"delivered by {owner} after its lease ran out",
            }
            for entry_id, what in delivered
        ],
    )


def mark_delivered(db: Session, entry_id: int, owner: str, what: str, now: datetime) -> bool:
    """Close a delivered entry (False if the lease was lost: the new holder closes it)."""
    entry = _held(db, entry_id, owner)
    if entry is None:
        record(db, entry_id, f"delivered by {owner} after its lease ran out", now)
        return False
    entry.state, entry.delivered_at = DELIVERED, now
    entry.lease_owner = entry.lease_until = None
    entry.last_error = entry.waiting_for = None
    record(db, entry_id, f"{what} (by {owner})", now)
    return True


def mark_retry(
    db: Session,
    entry_id: int,
    owner: str,
    *,
    at: datetime,
    status: int | None,
    error: str,
    now: datetime,
    waiting_for: str | None = None,
) -> None:
    """Put an entry back to be tried again at ``at`` (``waiting_for``: why it cannot be
    delivered before something changes, one of WAITING; None: a passing fault)."""
    entry = _held(db, entry_id, owner)
    if entry is None:
        return
    entry.state, entry.next_attempt_at = PENDING, at
    entry.lease_owner = entry.lease_until = None
    entry.last_status, entry.last_error = status, error
    entry.waiting_for = waiting_for
    record(db, entry_id, f"not delivered ({error}); next try at {at.isoformat()}", now)


def mark_dead(
    db: Session, entry_id: int, owner: str, *, status: int | None, error: str, now: datetime
) -> None:
    """Stop trying an entry the server refuses; it waits for a person (``sync retry``)."""
    entry = _held(db, entry_id, owner)
    if entry is None:
        return
    entry.state = DEAD
    entry.lease_owner = entry.lease_until = None
    entry.last_status, entry.last_error = status, error
    entry.waiting_for = None
    record(db, entry_id, f"refused by the EHR, kept as a dead letter: {error}", now)


def requeue(db: Session, entry_id: int, *, by: str, now: datetime | None = None) -> OutboxEntry:
    """Send a dead (or waiting) entry again now, after someone fixed the cause."""
    now = now or utcnow()
    entry = db.get(OutboxEntry, entry_id, with_for_update=True)
    if entry is None:
        raise OutboxError(f"there is no outbox entry {entry_id}")
    if entry.state == DELIVERED:
        raise OutboxError(f"outbox entry {entry_id} was delivered already")
    if entry.state == LEASED:
        raise OutboxError(f"outbox entry {entry_id} is being delivered right now")
    entry.state, entry.next_attempt_at = PENDING, now
    record(db, entry_id, f"requeued by {by}", now)
    return entry


@dataclass(frozen=True)
class QueueStatus:
    """How the outbox is doing."""

    pending: int
    leased: int
    delivered: int
    dead: int
    oldest_waiting_seconds: float | None
    dead_letters: tuple[tuple[int, str, int | None, str], ...]  # id, partition, status, error
    #: entries that cannot be delivered before something changes, per EHR and reason
    blocked: tuple[Blocked, ...] = ()


@dataclass(frozen=True)
class Blocked:
    """Undelivered entries of one EHR that wait for the same reason (one of WAITING), with
    the newest stored error (the EHR's status and message, never a token)."""

    fhir_base: str
    reason: str
    count: int
    error: str
    status: int | None


def blocked_entries(db: Session, fhir_base: str | None = None) -> tuple[Blocked, ...]:
    """Pending entries that wait for a reason (``waiting_for``), grouped per EHR and
    reason; only those of ``fhir_base`` when given."""
    query = (
        select(OutboxEntry.fhir_base, OutboxEntry.waiting_for, OutboxEntry.id,
               OutboxEntry.last_error, OutboxEntry.last_status)
        .where(OutboxEntry.state.in_((PENDING, LEASED)), OutboxEntry.waiting_for.is_not(None))
        .order_by(OutboxEntry.id)
    )  # fmt: skip
    if fhir_base is not None:
        query = query.where(OutboxEntry.fhir_base == fhir_base.rstrip("/"))
    groups: dict[tuple[str, str], Blocked] = {}
    for base, waiting_for, _id, error, status in db.execute(query):
        reason = str(waiting_for)  # not NULL: the query says so
        seen = groups.get((base, reason))
        count = seen.count + 1 if seen else 1
        groups[(base, reason)] = Blocked(base, reason, count, error or "", status)
    return tuple(groups.values())


def queue_status(engine: Engine, now: datetime | None = None) -> QueueStatus:
    """Counts per state, the age of the oldest undelivered entry, and the dead letters."""
    now = now or utcnow()
    with Session(engine) as db:
        counts = dict(
            db.execute(select(OutboxEntry.state, func.count()).group_by(OutboxEntry.state)).all()
        )
        oldest = db.scalar(
            select(func.min(OutboxEntry.created_at)).where(
                OutboxEntry.state.in_((PENDING, LEASED, DEAD))
            )
        )
        dead = db.execute(
            select(
                OutboxEntry.id, OutboxEntry.partition, OutboxEntry.last_status,
                OutboxEntry.last_error,
            )
            .where(OutboxEntry.state == DEAD)
            .order_by(OutboxEntry.id)
        ).all()  # fmt: skip
        blocked = blocked_entries(db)
    return QueueStatus(
        pending=counts.get(PENDING, 0),
        leased=counts.get(LEASED, 0),
        delivered=counts.get(DELIVERED, 0),
        dead=counts.get(DEAD, 0),
        oldest_waiting_seconds=(now - _aware(oldest)).total_seconds() if oldest else None,
        dead_letters=tuple((i, p, s, e or "") for i, p, s, e in dead),
        blocked=blocked,
    )
