"""A small, realistic outbox load and the checks every fault test ends with.

The load: a few patients enrolled in the waiting-list track, each then finishing modules
one by one, so every patient has an enrolment entry followed by Task updates that must
arrive in order. The check: everything delivered, each resource exactly once on the EHR
(counted by its write key), one Provenance per entry, order per patient kept, and the
EHR's Task statuses equal to ours.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections import Counter, defaultdict
from contextlib import contextmanager
from datetime import UTC, date
from pathlib import Path

import requests
from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.orm import Session

from fhir_burnout.db import Base, create_db_engine, current_revision, head_revision, upgrade
from fhir_burnout.sandbox import SandboxInfo
from fhir_burnout.smart_launch import BackendTokenSource
from fhir_burnout.sync import (
    KEY_SYSTEM,
    Agent,
    Backoff,
    Create,
    OutboxEntry,
    Worker,
    enqueue,
    key_identifier,
    queue_status,
)
from fhir_burnout.workflow import EnrolmentRow, ResponseRow, TaskRow, change_task, enrol

PATIENTS = ("pat-11", "pat-12", "pat-13", "pat-14")
#: The PostgreSQL the ``postgres`` tests use; the README's "Running the tests" says how to
#: provide it or point elsewhere.
POSTGRES = os.environ.get(
    "FHIR_BURNOUT_TEST_DATABASE_URL", "postgresql+psycopg://root@127.0.0.1:5432/test"
)


@contextmanager
def postgres_schema():
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{POSTGRES}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


#: Migrated schemas emptied after their test, for the next test that wants a migrated
#: database (``migrated_postgres_schema``): making one costs a schema and every migration's
#: DDL (about 0.6 s), emptying one a TRUNCATE.
_MIGRATED: list[str] = []


@contextmanager
def migrated_postgres_schema():
    """A PostgreSQL URL whose search_path is a schema migrated to head with empty tables:
    one a previous test left (emptied) or a fresh one. Afterwards it is emptied for the next
    test, or dropped when the test left it other than at head with exactly our tables."""
    admin = create_engine(POSTGRES)
    schema = _MIGRATED.pop() if _MIGRATED else _new_schema(admin)
    url = f"{POSTGRES}?options=-csearch_path%3D{schema}"
    engine = create_db_engine(url)
    try:
        upgrade(engine)  # at head already when it was used before: one query
        yield url
        tables = set(inspect(engine).get_table_names()) - {"alembic_version"}
        if current_revision(engine) != head_revision() or tables != set(Base.metadata.tables):
            raise _UnfitError
        with engine.begin() as connection:
            connection.execute(text("SET LOCAL lock_timeout = '5s'"))
            names = ", ".join(f'"{schema}"."{t}"' for t in sorted(tables))
            connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        _MIGRATED.append(schema)
    except _UnfitError:
        _drop_schema(admin, schema)
    finally:
        engine.dispose()
        admin.dispose()


class _UnfitError(Exception):
    """A schema a test changed beyond its rows: not handed to another test."""


def _new_schema(admin) -> str:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    return schema


def _drop_schema(admin, schema: str) -> None:
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


def drop_migrated_schemas() -> None:
    """Drop the schemas kept for reuse (at the end of the session)."""
    if not _MIGRATED:
        return
    admin = create_engine(POSTGRES)
    try:
        while _MIGRATED:
            _drop_schema(admin, _MIGRATED.pop())
    finally:
        admin.dispose()


def worker_token_source(info: SandboxInfo, **options) -> BackendTokenSource:
    """Backend-services tokens for the sandbox's worker client (system/*.cruds)."""
    smart = requests.get(f"{info.fhir_base}/.well-known/smart-configuration", timeout=30)
    worker = info.client("fhir-burnout-worker")
    return BackendTokenSource(
        smart.json()["token_endpoint"], "fhir-burnout-worker", worker["private_keys"][0],
        "system/*.cruds", **options,
    )  # fmt: skip


def worker_config(folder: Path, info: SandboxInfo, database_url: str, *extra: str) -> Path:
    """A fhir-burnout.toml for a worker process that delivers to the sandbox."""
    key = folder / "worker.jwk"
    key.write_text(json.dumps(info.client("fhir-burnout-worker")["private_keys"][0]))
    config = folder / f"fhir-burnout-{uuid.uuid4().hex[:6]}.toml"
    lines = [
        'base_url = "http://127.0.0.1:8000"',
        f"database_url = {json.dumps(database_url)}",
        'secret_key = "outbox-tests"',
        'token_key = "' + "A" * 43 + '="',
        "[safety]",  # the worker refuses to start without a promise and an owner
        'promise_nl = "op werkdagen binnen één werkdag"',
        'promise_en = "within one working day, on working days"',
        "[[ehr]]",
        f"fhir_base = {json.dumps(info.fhir_base)}",
        'client_id = "fhir-burnout"',
        'safety_owner = "PractitionerRole/role-prac-3"',
        'backend_client_id = "fhir-burnout-worker"',
        f"backend_private_key = {json.dumps(str(key))}",
        *extra,
    ]
    config.write_text("\n".join(lines))
    return config


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


def light_response(key: str, marker: str, queue: int, seq: int) -> dict:
    """A small QuestionnaireResponse that says which queue it came from, and when in it."""
    return {
        "resourceType": "QuestionnaireResponse",
        "identifier": key_identifier(key),
        "questionnaire": marker,
        "status": "completed",
        "subject": {"reference": f"Patient/pat-{queue % 24 + 1:02d}"},
        "authored": "2026-11-26T10:00:00+01:00",
        "item": [
            {"linkId": "queue", "answer": [{"valueInteger": queue}]},
            {"linkId": "seq", "answer": [{"valueInteger": seq}]},
        ],
    }


def light_entries(engine, fhir_base, *, count, partitions, marker):
    """``count`` small entries (a QuestionnaireResponse each) spread over ``partitions``
    patients' queues; each response carries its sequence number within its partition."""
    seq = Counter()
    with Session(engine) as db, db.begin():
        for n in range(count):
            part = n % partitions
            seq[part] += 1
            key = str(uuid.uuid4())
            response = light_response(key, marker, part, seq[part])
            enqueue(
                db, fhir_base=fhir_base, partition=f"{marker}#{part}", kind="response",
                operations=[Create(key, response)],
                agent=Agent(who=f"Patient/pat-{part % 24 + 1:02d}"),
            )  # fmt: skip


def deliver_all(worker):
    """Run ``worker`` until nothing is due; how many entries it handled."""
    total = 0
    while handled := worker.run_once():
        total += handled
    return total
