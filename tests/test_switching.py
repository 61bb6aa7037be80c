"""Moving a client from the waiting list to treatment keeps what they did; notes for them."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from fhir_burnout.fhir import FhirClient
from fhir_burnout.sync import KEY_SYSTEM, OutboxEntry, Worker
from fhir_burnout.workflow import (
    Definitions,
    DraftRow,
    EnrolmentRow,
    EnrolmentStateError,
    PlanError,
    add_note,
    change_task,
    enrol,
    finish,
    notes_for,
    save_draft,
    submit_response,
    switch_track,
)

from .outbox_load import worker_token_source

EHR = "http://ehr.example/fhir"
BY = "Practitioner/prac-2"


@pytest.fixture(scope="module")
def definitions(resources):
    return Definitions.from_resources(resources)


def waiting(db, definitions, fhir_base=EHR, patient="pat-23"):
    return enrol(
        db, definitions, fhir_base=fhir_base, patient=patient, track="waiting-list",
        practice="Organization/practice-1",
    )  # fmt: skip


def by_action(enrolment):
    return {t.action_id: t for t in enrolment.tasks}


def complete(db, definitions, task, patient="pat-23"):
    change_task(db, definitions, task.key, "completed", actor="client", who=f"Patient/{patient}")


def test_a_switch_to_treatment_keeps_modules_homework_answers_and_drafts(engine, definitions):
    with Session(engine) as db, db.begin():
        old = waiting(db, definitions)
        tasks = by_action(old)
        complete(db, definitions, tasks["understanding-burnout"])
        complete(db, definitions, tasks["body-signals"])
        answered = submit_response(
            db, definitions, tasks["body-signals.tension-log"].key,
            {"resourceType": "QuestionnaireResponse", "status": "completed"}, who="Patient/pat-23",
        )  # fmt: skip
        change_task(db, definitions, tasks["tension-relaxation"].key, "in-progress",
                    actor="client", who="Patient/pat-23")  # fmt: skip
        save_draft(db, tasks["tension-relaxation.tension-log"].key, {"q": "half typed"})
        old_key = old.key
    with Session(engine) as db, db.begin():
        new = switch_track(db, definitions, old_key, "standard", by=BY)
        new_key = new.key
    with Session(engine) as db:
        old, new = db.get(EnrolmentRow, old_key), db.get(EnrolmentRow, new_key)
        assert old.status == "completed" and new.status == "active" and new.follows == old_key
        assert new.track == "standard" and new.author == BY
        kept = by_action(new)
        assert kept["understanding-burnout"].status == "completed"
        assert kept["body-signals"].status == "completed"
        assert kept["body-signals.tension-log"].status == "completed"
        assert kept["body-signals.tension-log"].output_key == answered
        # What was under way is ready again (a module in progress starts over as ready),
        # and what the client typed moved with it.
        assert kept["tension-relaxation"].status == "ready"
        draft = db.get(DraftRow, kept["tension-relaxation.tension-log"].key)
        assert draft is not None and json.loads(draft.answers) == {"q": "half typed"}
        # Treatment starts with its own baseline measures; later modules wait.
        assert kept["phq-9.start"].status == "ready"
        assert kept["perfectionism"].status == "draft"
        assert {t.status for t in old.tasks if t.status not in ("completed",)} == {"cancelled"}
        careplans = [
            op["resource"]
            for entry in db.scalars(select(OutboxEntry).order_by(OutboxEntry.id))
            for op in json.loads(entry.payload)["operations"]
            if op.get("key") == new_key and op["op"] == "create"
        ]
        assert careplans[0]["replaces"] == [{"reference": f"urn:uuid:{old_key}"}]


def test_a_switch_after_the_whole_waiting_list_asks_to_open_the_next_phase(engine, definitions):
    with Session(engine) as db, db.begin():
        old = waiting(db, definitions, patient="pat-24")
        for task in old.tasks:
            if task.kind == "module":
                complete(db, definitions, task, "pat-24")
        new = switch_track(db, definitions, old.key, "standard", by=BY)
        phases = {p.code: p.status for p in new.phases}
        assert phases == {"recovery": "done", "insight": "locked", "change": "locked"}
        asks = [t for t in new.tasks if t.kind == "practitioner"]
        assert [t.action_id for t in asks] == ["unlock:insight"]
        assert asks[0].owner == BY


def test_a_switch_is_refused_when_it_makes_no_sense_and_nothing_changes(engine, definitions):
    with Session(engine) as db, db.begin():
        old = waiting(db, definitions, patient="pat-22")
        key = old.key
    for track, error in (("waiting-list", EnrolmentStateError), ("no-such-track", PlanError)):
        with pytest.raises(error), Session(engine) as db, db.begin():
            switch_track(db, definitions, key, track, by=BY)
    with Session(engine) as db, db.begin():
        enrol(db, definitions, fhir_base=EHR, patient="pat-22", track="standard")
    with pytest.raises(EnrolmentStateError, match="already"), Session(engine) as db, db.begin():
        switch_track(db, definitions, key, "standard", by=BY)
    with Session(engine) as db, db.begin():
        finish(db, key, by=BY)
    with pytest.raises(EnrolmentStateError), Session(engine) as db, db.begin():
        switch_track(db, definitions, key, "after-care", by=BY)
    with Session(engine) as db:
        assert db.get(EnrolmentRow, key).status == "completed"
        assert db.scalar(select(EnrolmentRow.key).where(EnrolmentRow.follows == key)) is None


def test_a_note_is_kept_for_the_client_and_refused_when_empty_or_too_long(engine, definitions):
    with Session(engine) as db, db.begin():
        enrolment = waiting(db, definitions, patient="pat-21")
        add_note(db, enrolment.key, "  Goed dat je bent begonnen!  ", by=BY)
        key = enrolment.key
    for text in ("   ", "x" * 2001):
        with pytest.raises(EnrolmentStateError), Session(engine) as db, db.begin():
            add_note(db, key, text, by=BY)
    with Session(engine) as db:
        [note] = notes_for(db, EHR, "pat-21")
        assert note.text == "Goed dat je bent begonnen!" and note.author == BY


def test_a_switch_and_a_note_reach_the_ehr(sandbox, engine, definitions):
    with Session(engine) as db, db.begin():
        old = waiting(db, definitions, fhir_base=sandbox.fhir_base, patient="pat-20")
        tasks = by_action(old)
        complete(db, definitions, tasks["understanding-burnout"], "pat-20")
        new = switch_track(db, definitions, old.key, "standard", by=BY)
        add_note(db, new.key, "Tot dinsdag.", by=BY)
        old_key, new_key = old.key, new.key
        carried = by_action(new)["understanding-burnout"].key
    with FhirClient(sandbox.fhir_base, token_source=worker_token_source(sandbox)) as client:
        worker = Worker(engine, lambda base: client, owner="test-switch")
        while worker.run_once():
            pass

        def one(resource_type, key):
            [found] = client.search(resource_type, {"identifier": f"{KEY_SYSTEM}|{key}"})
            return found

        before, after = one("CarePlan", old_key), one("CarePlan", new_key)
        assert before["status"] == "completed"
        assert after["status"] == "active"
        assert after["replaces"] == [{"reference": f"CarePlan/{before['id']}"}]
        task = one("Task", carried)
        assert task["status"] == "completed"
        [note] = client.search("Communication", {"based-on": f"CarePlan/{after['id']}"})
        assert note["payload"] == [{"contentString": "Tot dinsdag."}]
        assert note["recipient"] == [{"reference": "Patient/pat-20"}]
        assert note["sender"] == {"reference": BY}
