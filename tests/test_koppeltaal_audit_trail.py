"""The status-change AuditEvent against the Koppeltaal sandbox: one per fact however often
its delivery is retried, with the destination as its second agent, and within the trace the
status was queued in (a launch's), the same trace at every retry.

A retry here is the real one a worker makes after dying between sending and recording that
it sent: the entries are put back to pending, as an expired lease leaves them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fhir_burnout.fhir import FhirClient
from fhir_burnout.koppeltaal._plan import queue_task_status
from fhir_burnout.koppeltaal._trace import traced
from fhir_burnout.sync import OutboxEntry
from fhir_burnout.workflow import change_task

from .conftest import kt_token_source
from .koppeltaal_domain import _deliver, _row

KT = "http://koppeltaal.nl/fhir/StructureDefinition/"


def _all_again(engine) -> None:
    """Every entry back to pending: the worker died before it recorded what it sent."""
    with Session(engine) as db, db.begin():
        db.execute(
            update(OutboxEntry).values(
                state="pending", next_attempt_at=datetime.now(UTC), lease_owner=None,
                lease_until=None,
            )
        )  # fmt: skip


def _status_events(domain, task_id):
    """The status-change AuditEvents about ``task_id`` on the domain's server."""
    with FhirClient(domain.fhir_base, token_source=kt_token_source(domain.info)) as client:
        found = client.search("AuditEvent", {"_count": "200", "type": "rest"})
        return [
            e for e in found
            if e.get("outcomeDesc", "").startswith("Task.status")
            and any(str(x.get("what", {}).get("reference", "")).startswith(f"Task/{task_id}/")
                    for x in e.get("entity", []))
        ]  # fmt: skip


def _ids(event) -> dict[str, str]:
    found = event.get("extension", [])
    return {e["url"].removeprefix(KT): e["valueId"] for e in found if "valueId" in e}


def test_a_status_change_is_audited_once_within_the_launch_trace_however_often_retried(
    domain, tools
):
    engine, recorded, worker, poller, _ = tools
    task = domain.assign("pat-21", "body-signals")
    poller.run_once()
    row = _row(engine, domain.fhir_base, task["id"])
    # The client's launch queues in-progress, in the launch's trace (the HTI jti).
    with traced("launch-jti-21", "launch-request-21"), Session(engine) as db, db.begin():
        queue_task_status(db, row, "in-progress", who="Patient/pat-21")
    _deliver(worker)
    first = len(recorded.requests)
    _all_again(engine)  # the status entry and the AuditEvent's both delivered again
    _deliver(worker)
    again = recorded.requests[first:]

    [event] = _status_events(domain, task["id"])
    assert event["outcomeDesc"] == "Task.status ready -> in-progress"
    ids = _ids(event)
    assert ids["trace-id"] == "launch-jti-21" and ids["correlation-id"] == "launch-request-21"
    # Its request-id is the PUT it records.
    [put] = [r for r in recorded.requests if r.method == "PUT"]
    assert ids["request-id"] == put.headers["X-Request-Id"]
    assert put.headers["X-Trace-Id"] == "launch-jti-21"
    # Two agents (IG KT2_AuditEvent notes): us the source, the portal whose Task it is.
    assert [(a["who"]["reference"], a["type"]["coding"][0]["code"], a["requestor"])
            for a in event["agent"]] == [
        ("Device/fhir-burnout", "110153", True), ("Device/portal", "110152", False),
    ]  # fmt: skip
    # The retries went out in the same trace, never a new one, and sent no second PUT.
    assert again and {r.headers["X-Trace-Id"] for r in again} == {"launch-jti-21"}
    assert not any(r.method == "PUT" for r in again)


def test_a_status_queued_outside_any_trace_keeps_one_trace_across_its_retries(domain, tools):
    engine, recorded, worker, poller, definitions = tools
    task = domain.assign("pat-22", "body-signals")
    poller.run_once()
    row = _row(engine, domain.fhir_base, task["id"])
    _deliver(worker)  # the enrolment's own writes: they stay with us
    with Session(engine) as db, db.begin():
        change_task(db, definitions, row.local_task_key, "in-progress", actor="client",
                    who="Patient/pat-22")  # fmt: skip
    with Session(engine) as db:
        entry = db.scalars(
            select(OutboxEntry).where(OutboxEntry.kind != "koppeltaal-audit")
            .order_by(OutboxEntry.id.desc())
        ).first()  # fmt: skip
        assert "trace_id" not in json.loads(entry.payload)
    first = len(recorded.requests)
    _deliver(worker)
    sent = recorded.requests[first:]
    _all_again(engine)
    second = len(recorded.requests)
    _deliver(worker)
    resent = [r for r in recorded.requests[second:] if "/Task/" in r.url]
    [event] = _status_events(domain, task["id"])
    trace = _ids(event)["trace-id"]
    task_requests = [r for r in sent if "/Task/" in r.url]
    assert task_requests and {r.headers["X-Trace-Id"] for r in task_requests} == {trace}
    assert resent and {r.headers["X-Trace-Id"] for r in resent} == {trace}
