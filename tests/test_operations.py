"""Typed outbox operations: stored payloads read back as the same objects; an entry this
version cannot read becomes a dead letter with a clear message, not a failed round."""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fhir_burnout.fhir import FhirClient
from fhir_burnout.koppeltaal import KoppeltaalOutbox
from fhir_burnout.sync import (
    Agent,
    Create,
    KoppeltaalResults,
    KoppeltaalTaskStatus,
    OperationError,
    OutboxEntry,
    UpdateCarePlan,
    UpdateTask,
    Worker,
    enqueue,
    operation_from_json,
    operations_of,
)
from fhir_burnout.workflow import Definitions, change_task, enrol, pause, resume, stop

BASE = "http://ehr.invalid/fhir"
CAREPLAN_OUTPUT = {"type": {"text": "CarePlan"}, "valueReference": {"reference": "urn:uuid:e1"}}
DECLINED = {
    "coding": [{"system": "https://example.org/triage", "code": "other", "display": "Anders"}],
    "text": "Anders. Past niet",
}
ENDED = {"url": "https://fhir-burnout.org/fhir/ending", "valueCodeableConcept": {"text": "x"}}

#: Every shape the code wrote before the classes (workflow, referral, koppeltaal), as stored.
STORED = [
    (
        {"op": "create", "key": "k1", "resource": {"resourceType": "AuditEvent"}},
        Create("k1", {"resourceType": "AuditEvent"}),
    ),
    ({"op": "update-task", "key": "t1", "status": "completed"}, UpdateTask("t1", "completed")),
    (
        {"op": "update-task", "key": "t1", "status": "on-hold", "statusReason": "Opname"},
        UpdateTask("t1", "on-hold", status_reason="Opname"),
    ),
    (
        {"op": "update-task", "key": "t1", "status": "ready", "from": "on-hold"},
        UpdateTask("t1", "ready", came_from="on-hold"),
    ),
    (
        {"op": "update-task", "key": "t1", "status": "completed", "output": [CAREPLAN_OUTPUT]},
        UpdateTask("t1", "completed", output=(CAREPLAN_OUTPUT,)),
    ),
    (  # triage: accepted onto the waiting list
        {
            "op": "update-task",
            "key": "s1",
            "status": "accepted",
            "businessStatus": "Op de wachtlijst",
            "output": [CAREPLAN_OUTPUT],
        },
        UpdateTask(
            "s1", "accepted", output=(CAREPLAN_OUTPUT,), business_status="Op de wachtlijst"
        ),
    ),
    (  # triage: declined, with a coded reason
        {
            "op": "update-task",
            "key": "s1",
            "status": "rejected",
            "statusReason": DECLINED,
            "businessStatus": "Afgewezen",
        },
        UpdateTask("s1", "rejected", status_reason=DECLINED, business_status="Afgewezen"),
    ),
    (
        {"op": "update-careplan", "key": "e1", "status": "on-hold"},
        UpdateCarePlan("e1", "on-hold"),
    ),
    (
        {"op": "update-careplan", "key": "e1", "status": "active", "from": "on-hold"},
        UpdateCarePlan("e1", "active", came_from="on-hold"),
    ),
    (
        {"op": "update-careplan", "key": "e1", "status": "revoked", "extension": [ENDED]},
        UpdateCarePlan("e1", "revoked", extension=(ENDED,)),
    ),
    (
        {"op": "koppeltaal-task", "key": "kt1", "task_id": "kt1", "status": "in-progress"},
        KoppeltaalTaskStatus("kt1", "kt1", "in-progress"),
    ),
    (
        {"op": "koppeltaal-results", "key": "kt1", "task_id": "kt1", "patient": "Patient/p1"},
        KoppeltaalResults("kt1", "kt1", "Patient/p1"),
    ),
]


@pytest.mark.parametrize(("stored", "expected"), STORED)
def test_a_stored_operation_reads_back_as_the_same_object_and_is_written_the_same(
    stored, expected
):
    assert operation_from_json(json.loads(json.dumps(stored))) == expected
    assert expected.to_json() == stored


def test_an_unreadable_operation_says_which_and_why_without_quoting_its_content():
    with pytest.raises(OperationError, match=r"operation 2 of the entry: unknown op 'frobnicate'"):
        operations_of({"operations": [STORED[0][0], {"op": "frobnicate", "key": "k"}]})
    with pytest.raises(OperationError, match="without status"):
        operations_of({"operations": [{"op": "update-task", "key": "t1"}]})
    with pytest.raises(OperationError, match="no resourceType") as refused:
        operations_of({"operations": [{"op": "create", "key": "k", "resource": {"a": "BSN"}}]})
    assert "BSN" not in str(refused.value)
    with pytest.raises(OperationError, match="no list of operations"):
        operations_of({})


def _payloads(engine) -> list[dict]:
    with Session(engine) as db:
        stored = db.scalars(select(OutboxEntry.payload).order_by(OutboxEntry.id)).all()
    return [json.loads(p) for p in stored]


def test_what_the_workflow_queues_reads_back_unchanged(engine, resources):
    definitions = Definitions.from_resources(resources)
    with Session(engine) as db, db.begin():
        enrolment = enrol(
            db, definitions, fhir_base=BASE, patient="pat-1", track="standard",
            author="Practitioner/prac-1", practice="Organization/practice-1",
            today=date(2026, 11, 26),
        )  # fmt: skip
        key, first = enrolment.key, enrolment.tasks[0].key
    with Session(engine) as db, db.begin():
        change_task(db, definitions, first, "in-progress", actor="client", who="Patient/pat-1")
        pause(db, key, by="Practitioner/prac-1", reason="Opname")
    with Session(engine) as db, db.begin():
        resume(db, key, by="Practitioner/prac-1")
        stop(db, key, by="Practitioner/prac-1", reason="Verhuisd")
    payloads = _payloads(engine)
    kinds = {type(op) for p in payloads for op in operations_of(p)}
    assert kinds == {Create, UpdateTask, UpdateCarePlan}
    for payload in payloads:
        assert [op.to_json() for op in operations_of(payload)] == payload["operations"]


def _store(engine, partition: str, operations: list[dict]) -> str:
    """An entry as a stored payload (another version of the app, or a hand-edited row)."""
    with Session(engine) as db, db.begin():
        key = enqueue(
            db, fhir_base=BASE, partition=partition, kind="test",
            operations=[UpdateTask("placeholder", "ready")], agent=Agent(),
        )  # fmt: skip
        payload = {"operations": operations, "agent": {}, "recorded": "2026-11-26T10:00:00"}
        db.execute(
            update(OutboxEntry).where(OutboxEntry.key == key).values(payload=json.dumps(payload))
        )
    return key


def _dead(engine) -> dict[str, str]:
    with Session(engine) as db:
        rows = db.execute(select(OutboxEntry.key, OutboxEntry.state, OutboxEntry.last_error))
        return {key: error for key, state, error in rows if state == "dead"}


def test_an_entry_the_smart_delivery_cannot_read_is_a_dead_letter_and_the_round_goes_on(engine):
    # Before: an unknown op waited forever for "the resource written under" its key, and a
    # create without its resource raised KeyError out of run_once (the whole batch failed).
    unknown = _store(engine, "p1", [{"op": "frobnicate", "key": "k1"}])
    broken = _store(engine, "p2", [{"op": "create", "key": "k2"}])
    elsewhere = _store(engine, "p3", [KoppeltaalTaskStatus("t", "t", "in-progress").to_json()])
    nowhere = FhirClient("http://127.0.0.1:9/fhir", timeout=2)  # never reached
    try:
        assert Worker(engine, lambda base: nowhere).run_once() == 3
    finally:
        nowhere.close()
    dead = _dead(engine)
    assert set(dead) == {unknown, broken, elsewhere}
    assert "operation 1 of the entry: unknown op 'frobnicate'" in dead[unknown]
    assert "a create without a resource" in dead[broken]
    assert "koppeltaal-task goes only to a Koppeltaal domain" in dead[elsewhere]


def test_an_entry_the_koppeltaal_delivery_cannot_read_is_a_dead_letter(engine):
    # Before: an unknown op "stayed with us" and the entry counted as delivered.
    unknown = _store(engine, "p1", [{"op": "frobnicate", "key": "k1"}])

    def no_client(base: str) -> FhirClient:
        raise AssertionError("nothing is sent for an entry that cannot be read")

    outbox = KoppeltaalOutbox(engine, no_client)
    worker = Worker(engine, no_client, deliver_for=lambda base: outbox.deliver)
    assert worker.run_once() == 1
    assert "unknown op 'frobnicate'" in _dead(engine)[unknown]
