"""The outbox delivered to the real sandbox EHR: enrolment, conflicts, dead letters, order."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fhir_burnout.fhir import FhirClient
from fhir_burnout.sync import (
    KEY_SYSTEM,
    Agent,
    DeliveredResource,
    OutboxEntry,
    OutboxEvent,
    UpdateCarePlan,
    UpdateTask,
    Worker,
    enqueue,
    queue_status,
    requeue,
)
from fhir_burnout.workflow import (
    Definitions,
    change_task,
    enrol,
    partition,
    pause,
    resume,
    submit_response,
)

from .outbox_load import deliver_all, worker_token_source


@pytest.fixture(scope="module")
def definitions(resources):
    return Definitions.from_resources(resources)


@pytest.fixture
def token_source(sandbox):
    return worker_token_source(sandbox)


@pytest.fixture
def worker(engine, sandbox, token_source):
    client = FhirClient(sandbox.fhir_base, token_source=token_source)
    yield Worker(engine, lambda base: client, owner="test-worker")
    client.close()


def count(fhir, resource_type, key):
    """How many resources the EHR holds under one write key."""
    found = list(fhir.search(resource_type, {"identifier": f"{KEY_SYSTEM}|{key}"}))
    return len(found)


def enrol_patient(engine, sandbox, definitions, patient="pat-03", track="standard"):
    with Session(engine) as db, db.begin():
        enrolment = enrol(
            db,
            definitions,
            fhir_base=sandbox.fhir_base,
            patient=patient,
            track=track,
            author="Practitioner/prac-1",
            practice="Organization/practice-1",
            today=date(2026, 11, 26),
        )
        return enrolment.key, {t.action_id: t.key for t in enrolment.tasks}


def test_an_enrolment_arrives_as_a_care_plan_with_its_request_group_and_tasks(
    engine, sandbox, definitions, worker, fhir
):
    careplan_key, tasks = enrol_patient(engine, sandbox, definitions)
    assert deliver_all(worker) == 1
    [careplan] = fhir.search("CarePlan", {"identifier": f"{KEY_SYSTEM}|{careplan_key}"})
    assert careplan["subject"] == {"reference": "Patient/pat-03"}
    assert careplan["instantiatesCanonical"][0].endswith("/PlanDefinition/standard|0.1.0")
    group_ref = careplan["activity"][0]["reference"]["reference"]
    group = fhir.read(*group_ref.split("/"))
    assert group["basedOn"] == [{"reference": f"CarePlan/{careplan['id']}"}]
    server_tasks = list(fhir.search("Task", {"based-on": f"CarePlan/{careplan['id']}"}))
    assert len(server_tasks) == len(tasks)
    by_key = {t["identifier"][0]["value"]: t for t in server_tasks}
    first = by_key[tasks["understanding-burnout"]]
    assert first["status"] == "ready" and first["for"] == {"reference": "Patient/pat-03"}
    assert first["instantiatesCanonical"].endswith(
        "/ActivityDefinition/understanding-burnout|0.1.0"
    )
    linked = {a["resource"]["reference"] for g in group["action"] for a in g["action"]}
    assert linked == {f"Task/{t['id']}" for t in server_tasks}
    [provenance] = fhir.search("Provenance", {"target": f"CarePlan/{careplan['id']}"})
    assert provenance["agent"][0]["who"] == {"reference": "Practitioner/prac-1"}
    assert provenance["agent"][0]["onBehalfOf"] == {"reference": "Organization/practice-1"}
    assert len(provenance["target"]) == len(tasks) + 2


def test_delivering_the_same_entry_again_creates_nothing_new(
    engine, sandbox, definitions, worker, fhir
):
    careplan_key, tasks = enrol_patient(engine, sandbox, definitions, patient="pat-04")
    deliver_all(worker)
    # As if the answer had been lost: the entry is pending again and we know nothing.
    with Session(engine) as db, db.begin():
        db.execute(update(OutboxEntry).values(state="pending", next_attempt_at=datetime.now(UTC)))
        db.query(DeliveredResource).delete()
    deliver_all(worker)
    assert count(fhir, "CarePlan", careplan_key) == 1
    assert {count(fhir, "Task", key) for key in tasks.values()} == {1}
    entry_key = _entry_keys(engine)[0]
    tag = f"https://fhir-burnout.org/fhir/outbox-entry|{entry_key}"
    assert len(list(fhir.search("Provenance", {"_tag": tag}))) == 1


def _entry_keys(engine):
    with Session(engine) as db:
        return list(db.scalars(select(OutboxEntry.key).order_by(OutboxEntry.id)))


def server_task(fhir, key, resource_type="Task"):
    """The resource the EHR holds under one write key (a Task unless said otherwise)."""
    [found] = fhir.search(resource_type, {"identifier": f"{KEY_SYSTEM}|{key}"})
    return found


def test_a_task_the_practitioner_edited_meanwhile_is_updated_on_top_of_that_edit(
    engine, sandbox, definitions, worker, fhir
):
    _, tasks = enrol_patient(engine, sandbox, definitions, patient="pat-05")
    deliver_all(worker)
    task = server_task(fhir, tasks["understanding-burnout"])
    task["note"] = [{"text": "Besproken in het gesprek van dinsdag."}]
    fhir.update(task, version_id=task["meta"]["versionId"])  # the 412 we will meet
    with Session(engine) as db, db.begin():
        change_task(
            db, definitions, tasks["understanding-burnout"], "completed", actor="client",
            who="Patient/pat-05",
        )  # fmt: skip
    deliver_all(worker)
    after = server_task(fhir, tasks["understanding-burnout"])
    assert after["status"] == "completed" and after["note"] == task["note"]
    assert server_task(fhir, tasks["body-signals"])["status"] == "ready"
    assert any("a Task changed in the EHR meanwhile" in e for e in _events(engine))


def _events(engine):
    with Session(engine) as db:
        return [e.what for e in db.scalars(select(OutboxEvent).order_by(OutboxEvent.id))]


def test_a_task_cancelled_in_the_ehr_is_not_reopened_but_the_answers_arrive(
    engine, sandbox, definitions, worker, fhir
):
    _, tasks = enrol_patient(engine, sandbox, definitions, patient="pat-06")
    deliver_all(worker)
    task = server_task(fhir, tasks["phq-9.start"])
    task["status"] = "cancelled"
    fhir.update(task, version_id=task["meta"]["versionId"])
    with Session(engine) as db, db.begin():
        response_key = submit_response(
            db,
            definitions,
            tasks["phq-9.start"],
            {"resourceType": "QuestionnaireResponse", "status": "completed",
             "questionnaire": "https://fhir-burnout.org/fhir/Questionnaire/phq-9|0.1.0"},
            who="Patient/pat-06",
        )  # fmt: skip
    deliver_all(worker)
    assert server_task(fhir, tasks["phq-9.start"])["status"] == "cancelled"
    [response] = fhir.search(
        "QuestionnaireResponse", {"identifier": f"{KEY_SYSTEM}|{response_key}"}
    )
    assert response["subject"] == {"reference": "Patient/pat-06"}
    assert any("cancelled in the EHR" in e for e in _events(engine))


def test_a_write_the_ehr_refuses_waits_as_a_dead_letter_and_holds_back_the_patient(
    engine, sandbox, definitions, worker, fhir
):
    _, tasks = enrol_patient(engine, sandbox, definitions, patient="pat-07")
    deliver_all(worker)
    with Session(engine) as db, db.begin():
        submit_response(
            db, definitions, tasks["who-5.start"],
            {"resourceType": "QuestionnaireResponse", "status": "finished"},  # not a status
            who="Patient/pat-07",
        )  # fmt: skip
        change_task(
            db, definitions, tasks["understanding-burnout"], "in-progress", actor="client",
            who="Patient/pat-07",
        )  # fmt: skip
    deliver_all(worker)
    status = queue_status(engine)
    assert (status.dead, status.pending) == (1, 1)
    [(dead_id, _partition, http_status, error)] = status.dead_letters
    assert http_status == 400 and "QuestionnaireResponse.status" in error
    # The later change waits behind the dead letter: order per patient is kept.
    assert server_task(fhir, tasks["understanding-burnout"])["status"] == "ready"
    with Session(engine) as db, db.begin():
        entry = db.get(OutboxEntry, dead_id)
        payload = json.loads(entry.payload)
        payload["operations"][0]["resource"]["status"] = "completed"  # the fix
        entry.payload = json.dumps(payload)
        requeue(db, dead_id, by="test")
    deliver_all(worker)
    assert queue_status(engine).dead == 0
    assert server_task(fhir, tasks["understanding-burnout"])["status"] == "in-progress"
    assert server_task(fhir, tasks["who-5.start"])["status"] == "completed"


def test_an_ehr_that_does_not_answer_is_tried_again_later(engine, sandbox, definitions):
    enrol_patient(engine, sandbox, definitions, patient="pat-08")
    unreachable = FhirClient("http://127.0.0.1:9/fhir", timeout=2)
    worker = Worker(engine, lambda base: unreachable, owner="cut-off")
    before = datetime.now(UTC)
    assert worker.run_once() == 1
    with Session(engine) as db:
        entry = db.scalars(select(OutboxEntry)).one()
        assert entry.state == "pending" and entry.attempts == 1
        due = entry.next_attempt_at.replace(tzinfo=UTC)
    assert before + timedelta(seconds=0.9) <= due <= before + timedelta(seconds=5)
    assert worker.run_once() == 0  # not due yet
    unreachable.close()


def _queue(engine, sandbox, patient, *operations):
    with Session(engine) as db, db.begin():
        enqueue(
            db, fhir_base=sandbox.fhir_base, partition=partition(sandbox.fhir_base, patient),
            kind="test", operations=list(operations), agent=Agent(who="Practitioner/prac-1"),
        )  # fmt: skip


def _server_careplan(fhir, key):
    return server_task(fhir, key, "CarePlan")


def test_a_paused_and_resumed_care_plan_reaches_the_ehr_but_never_reopens_once_ended(
    engine, sandbox, definitions, worker, fhir
):
    careplan_key, _ = enrol_patient(engine, sandbox, definitions, patient="pat-09")
    deliver_all(worker)
    pause = UpdateCarePlan(careplan_key, "on-hold")
    _queue(engine, sandbox, "pat-09", pause)
    deliver_all(worker)
    assert _server_careplan(fhir, careplan_key)["status"] == "on-hold"
    resume = UpdateCarePlan(careplan_key, "active", came_from="on-hold")
    _queue(engine, sandbox, "pat-09", resume)
    deliver_all(worker)
    assert _server_careplan(fhir, careplan_key)["status"] == "active"
    # Ended in the EHR meanwhile: a later pause and resume of ours leave it ended.
    careplan = _server_careplan(fhir, careplan_key)
    fhir.update({**careplan, "status": "revoked"}, version_id=careplan["meta"]["versionId"])
    _queue(engine, sandbox, "pat-09", pause, resume)
    deliver_all(worker)
    assert _server_careplan(fhir, careplan_key)["status"] == "revoked"
    assert any("CarePlan" in e and "revoked in the EHR" in e for e in _events(engine))
    assert queue_status(engine).dead == 0


def test_a_task_goes_back_from_on_hold_only_when_it_is_a_resume_of_our_own_pause(
    engine, sandbox, definitions, worker, fhir
):
    _, tasks = enrol_patient(engine, sandbox, definitions, patient="pat-10")
    deliver_all(worker)
    key = tasks["understanding-burnout"]
    _queue(engine, sandbox, "pat-10", UpdateTask(key, "on-hold"))
    deliver_all(worker)
    assert server_task(fhir, key)["status"] == "on-hold"
    # A plain "ready" (the rules, say) never takes a Task back out of a hold ...
    _queue(engine, sandbox, "pat-10", UpdateTask(key, "ready"))
    deliver_all(worker)
    assert server_task(fhir, key)["status"] == "on-hold"
    # ... a resume of the hold does.
    resume = UpdateTask(key, "ready", came_from="on-hold")
    _queue(engine, sandbox, "pat-10", resume)
    deliver_all(worker)
    assert server_task(fhir, key)["status"] == "ready"


def test_a_pause_and_a_resume_reach_the_ehr_as_the_care_professional_made_them(
    engine, sandbox, definitions, worker, fhir
):
    careplan_key, tasks = enrol_patient(engine, sandbox, definitions, patient="pat-11")
    deliver_all(worker)
    before = {key: server_task(fhir, key)["status"] for key in tasks.values()}
    with Session(engine) as db, db.begin():
        pause(db, careplan_key, by="Practitioner/prac-1", reason="Opname")
    deliver_all(worker)
    assert _server_careplan(fhir, careplan_key)["status"] == "on-hold"
    held = {key: server_task(fhir, key) for key in tasks.values()}
    for key, status in before.items():
        if status in ("requested", "ready", "in-progress"):
            assert held[key]["status"] == "on-hold"
            assert held[key]["statusReason"] == {"text": "Opname"}
        else:
            assert held[key]["status"] == status
    with Session(engine) as db, db.begin():
        resume(db, careplan_key, by="Practitioner/prac-1")
    deliver_all(worker)
    assert _server_careplan(fhir, careplan_key)["status"] == "active"
    assert {key: server_task(fhir, key)["status"] for key in tasks.values()} == before
    assert queue_status(engine).dead == 0
