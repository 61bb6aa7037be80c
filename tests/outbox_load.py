"""A small, realistic outbox load and the checks every fault test ends with.

The load: a few patients enrolled in the waiting-list track, each then finishing modules
one by one, so every patient has an enrolment entry followed by Task updates that must
arrive in order. The check: everything delivered, each resource exactly once on the EHR
(counted by its write key), one Provenance per entry, order per patient kept, and the
EHR's Task statuses equal to ours.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from contextlib import contextmanager
from datetime import UTC, date

from sqlalchemy import select
from sqlalchemy.orm import Session

from fhir_burnout.sync import KEY_SYSTEM, Backoff, OutboxEntry, Worker, queue_status
from fhir_burnout.workflow import EnrolmentRow, ResponseRow, TaskRow, change_task, enrol

PATIENTS = ("pat-11", "pat-12", "pat-13", "pat-14")
ENTRY_TAG = "https://fhir-burnout.org/fhir/outbox-entry"


def make_load(engine, definitions, fhir_base, patients=PATIENTS, steps=2):
    """Enrol each patient, then let each finish ``steps`` modules in order."""
    for patient in patients:
        with Session(engine) as db, db.begin():
            enrol(
                db, definitions, fhir_base=fhir_base, patient=patient, track="waiting-list",
                author="Practitioner/prac-1", practice="Organization/practice-1",
                today=date(2026, 11, 26),
            )  # fmt: skip
    for _ in range(steps):
        for patient in patients:
            with Session(engine) as db, db.begin():
                ready = db.scalars(
                    select(TaskRow)
                    .join(EnrolmentRow)
                    .where(
                        EnrolmentRow.patient == patient,
                        TaskRow.kind == "module",
                        TaskRow.status == "ready",
                    )
                    .order_by(TaskRow.position)
                ).first()
                assert ready is not None
                change_task(
                    db, definitions, ready.key, "completed", actor="client",
                    who=f"Patient/{patient}",
                )  # fmt: skip


def fast_worker(engine, client_for, **options):
    """A worker that retries within a fraction of a second, so fault tests stay short."""
    options.setdefault("backoff", Backoff(base=0.2, cap=1.0))
    options.setdefault("lease", 5.0)
    return Worker(engine, client_for, **options)


@contextmanager
def running(*workers, idle=0.05):
    """Workers delivering in threads while the block runs."""
    stop = threading.Event()
    threads = [
        threading.Thread(target=w.run, args=(stop,), kwargs={"idle": idle}) for w in workers
    ]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)


def wait_until_delivered(engine, timeout=90.0):
    """Wait until nothing is pending or leased; fail with the queue's state otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = queue_status(engine)
        if status.pending == status.leased == 0:
            return status
        time.sleep(0.1)
    raise AssertionError(f"not delivered in {timeout} s: {queue_status(engine)}")


def delivered_count(engine):
    return queue_status(engine).delivered


def assert_delivered_exactly_once(engine, fhir):
    """Every entry delivered; each resource and Provenance exactly once; order kept."""
    status = queue_status(engine)
    assert (status.pending, status.leased, status.dead) == (0, 0, 0), status
    with Session(engine) as db:
        enrolments = db.scalars(select(EnrolmentRow)).all()
        wanted = {
            "CarePlan": [e.key for e in enrolments],
            "RequestGroup": [e.request_group_key for e in enrolments],
            "Task": [t.key for t in db.scalars(select(TaskRow))],
            "QuestionnaireResponse": [r.key for r in db.scalars(select(ResponseRow))],
        }
        local_status = {t.key: t.status for t in db.scalars(select(TaskRow))}
        entries = db.scalars(select(OutboxEntry).order_by(OutboxEntry.id)).all()
        keys = [(e.key, e.partition, e.delivered_at) for e in entries]
    for resource_type, expected in wanted.items():
        if not expected:
            continue
        found = Counter(
            r["identifier"][0]["value"] if isinstance(r["identifier"], list)
            else r["identifier"]["value"]
            for r in fhir.search(resource_type, {"identifier": f"{KEY_SYSTEM}|", "_count": "1000"})
        )  # fmt: skip
        counts = {key: found.get(key, 0) for key in expected}
        assert set(counts.values()) == {1}, (resource_type, counts)
    provenances = Counter(
        tag["code"]
        for p in fhir.search("Provenance", {"_tag": f"{ENTRY_TAG}|", "_count": "1000"})
        for tag in p["meta"].get("tag", [])
        if tag.get("system") == ENTRY_TAG
    )
    assert {provenances.get(key, 0) for key, _, _ in keys} == {1}, provenances
    by_partition = defaultdict(list)
    for _, partition, delivered_at in keys:
        by_partition[partition].append(delivered_at.replace(tzinfo=UTC))
    for times in by_partition.values():
        assert times == sorted(times), "a patient's writes were delivered out of order"
    server_status = {
        t["identifier"][0]["value"]: t["status"]
        for t in fhir.search("Task", {"identifier": f"{KEY_SYSTEM}|", "_count": "1000"})
    }
    assert {k: server_status.get(k) for k in local_status} == local_status
