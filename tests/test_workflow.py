"""Enrolment, the Task lifecycle and the programme's rules, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from fhir_burnout.sync import OutboxEntry
from fhir_burnout.workflow import (
    Definitions,
    EnrolmentRow,
    EnrolmentStateError,
    PhaseState,
    PlanError,
    Progress,
    ResponseRow,
    TaskChangedError,
    TaskRow,
    TaskState,
    TaskTransitionError,
    advance,
    change_task,
    enrol,
    expect,
    finish,
    load_draft,
    pause,
    programme_views,
    resume,
    save_draft,
    stop,
    submit_response,
    unlock_phase,
)

EHR = "http://ehr.example/fhir"
NOW = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def definitions(resources):
    return Definitions.from_resources(resources)


def statuses(enrolment):
    return {t.action_id: t.status for t in enrolment.tasks}


def operations(db):
    entries = db.scalars(select(OutboxEntry).order_by(OutboxEntry.id)).all()
    return [json.loads(e.payload)["operations"] for e in entries]


def enrolled(db, definitions, track="standard", patient="pat-01"):
    return enrol(
        db,
        definitions,
        fhir_base=EHR,
        patient=patient,
        track=track,
        author="Practitioner/prac-1",
        practice="Organization/practice-1",
        today=date(2026, 11, 26),
        now=NOW,
    )


def test_enrolment_plans_the_first_phase_and_queues_one_transaction(engine, definitions):
    with Session(engine) as db, db.begin():
        enrolment = enrolled(db, definitions)
        phases = {p.code: p.status for p in enrolment.phases}
        assert phases == {"recovery": "open", "insight": "locked", "change": "locked"}
        now = statuses(enrolment)
        assert now["understanding-burnout"] == "ready"  # the first module
        assert now["body-signals"] == "requested"  # after the end of the first
        assert now["body-signals.tension-log"] == "requested"  # after its module started
        assert now["perfectionism"] == "draft"  # phase 2 is locked
        assert now["phq-9.start"] == "ready" and now["weekly-checkin.weekly"] == "ready"
        assert now["phq-9.end-recovery"] == "requested"
        [ops] = operations(db)
    kinds = [op["resource"]["resourceType"] for op in ops]
    assert kinds[:2] == ["CarePlan", "RequestGroup"] and set(kinds[2:]) == {"Task"}
    careplan, group = ops[0]["resource"], ops[1]["resource"]
    assert careplan["instantiatesCanonical"] == [definitions.plan("standard")["url"] + "|0.1.0"]
    assert careplan["subject"] == {"reference": "Patient/pat-01"}
    assert careplan["activity"] == [{"reference": {"reference": f"urn:uuid:{ops[1]['key']}"}}]
    tasks = {op["key"]: op["resource"] for op in ops[2:]}
    assert {t["status"] for t in tasks.values()} == {"ready", "requested", "draft"}
    homework = next(t for t in tasks.values() if t["description"] == "Spanningsdagboek")
    assert homework["input"][0]["valueCanonical"].endswith("/Questionnaire/tension-log|0.1.0")
    assert homework["basedOn"] == [{"reference": f"urn:uuid:{ops[0]['key']}"}]
    linked = {a["resource"]["reference"][9:] for g in group["action"] for a in g["action"]}
    assert linked == set(tasks)


def test_enrolling_again_gives_back_the_same_plan(engine, definitions):
    with Session(engine) as db, db.begin():
        first = enrolled(db, definitions).key
    with Session(engine) as db, db.begin():
        assert enrolled(db, definitions).key == first
        assert db.scalar(select(func.count()).select_from(OutboxEntry)) == 1
        other = enrolled(db, definitions, track="waiting-list").key
        assert other != first


def test_two_enrolments_at_the_same_moment_make_one_plan(engine, definitions):
    keys, barrier = [], threading.Barrier(2)

    def enrol_now():
        with Session(engine) as db, db.begin():
            barrier.wait()
            keys.append(enrolled(db, definitions, patient="pat-02").key)

    threads = [threading.Thread(target=enrol_now) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with Session(engine) as db:
        count = db.scalar(select(func.count()).select_from(EnrolmentRow))
    assert count == 1 and len(set(keys)) == 1


def test_an_unknown_track_is_refused(engine, definitions):
    with Session(engine) as db, db.begin(), pytest.raises(PlanError, match="no track 'x'"):
        enrolled(db, definitions, track="x")


def key_of(enrolment, action_id):
    return next(t.key for t in enrolment.tasks if t.action_id == action_id)


@pytest.mark.parametrize(
    ("status", "actor", "message"),
    [
        ("cancelled", "client", "a client may not move a Task from ready to cancelled"),
        ("draft", "practitioner", "a Task cannot go from ready to draft"),
        ("done", "client", "'done' is not a Task status"),
    ],
)
def test_a_transition_the_lifecycle_does_not_allow_is_refused(
    engine, definitions, status, actor, message
):
    with Session(engine) as db, db.begin():
        enrolment = enrolled(db, definitions)
        first = key_of(enrolment, "understanding-burnout")
        with pytest.raises(TaskTransitionError) as refused:
            change_task(db, definitions, first, status, actor=actor, who="Patient/pat-01")
    outcome = refused.value.outcome()
    assert outcome["issue"][0]["code"] == "business-rule"
    assert message in outcome["issue"][0]["diagnostics"]


def test_finishing_a_module_readies_the_next_and_queues_both_changes(engine, definitions):
    with Session(engine) as db, db.begin():
        enrolment = enrolled(db, definitions)
        first = key_of(enrolment, "understanding-burnout")
        change_task(db, definitions, first, "in-progress", actor="client", who="Patient/pat-01")
        change_task(db, definitions, first, "completed", actor="client", who="Patient/pat-01")
        assert statuses(enrolment)["body-signals"] == "ready"
        last = operations(db)[-1]
    assert [(op["op"], op["status"]) for op in last] == [
        ("update-task", "completed"),
        ("update-task", "ready"),
    ]


def _rules_would_move(definitions, enrolment):
    """What the plan's rules would change, run on the whole enrolment as it stands."""
    plan = definitions.by_canonical[enrolment.plan_definition]
    depends = {}

    def walk(actions):
        for action in actions:
            depends[action["id"]] = tuple(
                (r["actionId"], r["relationship"]) for r in action.get("relatedAction", [])
            )
            walk(action.get("action", []))

    walk(plan["action"])
    return advance(
        [PhaseState(p.code, p.position, p.unlock, p.status) for p in enrolment.phases],
        [
            TaskState(t.key, t.action_id, t.kind, t.phase, t.status, depends[t.action_id])
            for t in enrolment.tasks
            if t.kind != "practitioner"
        ],
    )


@pytest.mark.parametrize("track", ["standard", "waiting-list", "after-care"])
def test_completing_what_nothing_waits_for_leaves_nothing_for_the_rules_to_move(
    engine, definitions, track
):
    """A submit of homework, a diary day or a check-in skips the rules (nothing waits for
    them and they close no phase). Walk each track to its end, finishing whatever is open
    in plan order and opening phases as the care professional would, and check after every
    such change that the full rules, run on everything, would indeed move nothing."""
    skipped = 0
    with Session(engine) as db, db.begin():
        enrolment = enrolled(db, definitions, track=track, patient=f"walk-{track}")
        waited_on = definitions.waited_on(enrolment.plan_definition)
        for _step in range(300):
            open_tasks = sorted(
                (t for t in enrolment.tasks if t.kind != "practitioner"
                 and t.status in ("ready", "in-progress") and t.ready_from is None),
                key=lambda t: t.position,
            )  # fmt: skip
            if not open_tasks:
                locked = [p for p in enrolment.phases if p.status == "locked"]
                if not locked:
                    break
                unlock_phase(db, definitions, enrolment.key, locked[0].code, by="Practitioner/p")
                continue
            task = open_tasks[0]
            change_task(db, definitions, task.key, "completed", actor="client", now=NOW)
            if task.kind != "module" and task.action_id not in waited_on:
                skipped += 1
                moved = _rules_would_move(definitions, enrolment)
                assert moved == Progress({}, {}), task.action_id
        assert all(p.status == "done" for p in enrolment.phases)
    assert skipped >= 5  # the walk did reach the short cut


def finish_phase(db, definitions, enrolment, phase):
    for task in list(enrolment.tasks):
        if task.phase == phase and task.kind == "module":
            change_task(db, definitions, task.key, "completed", actor="client", who="Patient/x")


def test_a_practitioner_opens_the_next_phase_in_the_standard_track(engine, definitions):
    with Session(engine) as db, db.begin():
        enrolment = enrolled(db, definitions)
        finish_phase(db, definitions, enrolment, "recovery")
        phases = {p.code: p.status for p in enrolment.phases}
        assert phases == {"recovery": "done", "insight": "locked", "change": "locked"}
        assert statuses(enrolment)["phq-9.end-recovery"] == "ready"
        assert statuses(enrolment)["perfectionism"] == "draft"
        phase = unlock_phase(db, definitions, enrolment.key, "insight", by="Practitioner/prac-1")
        assert (phase.status, phase.unlocked_by) == ("open", "Practitioner/prac-1")
        assert statuses(enrolment)["perfectionism"] == "ready"
        assert statuses(enrolment)["boundaries"] == "requested"
        assert json.loads(db.scalars(select(OutboxEntry.payload)).all()[-1])["agent"] == {
            "who": "Practitioner/prac-1",
            "onBehalfOf": "Organization/practice-1",
        }


def test_the_after_care_track_opens_its_next_phase_by_itself(engine, definitions):
    with Session(engine) as db, db.begin():
        enrolment = enrolled(db, definitions, track="after-care")
        finish_phase(db, definitions, enrolment, "recovery")
        assert {p.code: p.status for p in enrolment.phases} == {
            "recovery": "done",
            "change": "open",
        }
        assert statuses(enrolment)["small-steps"] == "ready"


def test_a_submitted_response_completes_its_task_in_one_transaction(engine, definitions):
    with Session(engine) as db, db.begin():
        enrolment = enrolled(db, definitions)
        task = key_of(enrolment, "phq-9.start")
        save_draft(db, task, {"phq9-1": [{"valueCoding": {"code": "LA6568-5"}}]})
        assert load_draft(db, task) == {"phq9-1": [{"valueCoding": {"code": "LA6568-5"}}]}
        response = {
            "resourceType": "QuestionnaireResponse",
            "questionnaire": "https://fhir-burnout.org/fhir/Questionnaire/phq-9|0.1.0",
            "status": "completed",
        }
        key = submit_response(db, definitions, task, response, who="Patient/pat-01", now=NOW)
        assert load_draft(db, task) is None
        assert statuses(enrolment)["phq-9.start"] == "completed"
        create, update = operations(db)[-1][:2]
    assert create["key"] == key and create["resource"]["identifier"]["value"] == key
    assert create["resource"]["author"] == {"reference": "Patient/pat-01"}
    assert update["output"][0]["valueReference"] == {"reference": f"urn:uuid:{key}"}


def test_of_two_submits_that_read_the_task_before_either_wrote_only_the_first_is_kept(
    engine, definitions
):
    """Two tabs read the same open Task, check their forms without a lock, then write:
    the second finds the Task completed and keeps nothing (no response, no outbox entry)."""
    with Session(engine) as db, db.begin():
        task = key_of(enrolled(db, definitions), "phq-9.start")
    read = []
    for _tab in range(2):
        with Session(engine) as db:  # the page's read: no transaction kept, no lock
            read.append(db.get(TaskRow, task, options=[joinedload(TaskRow.enrolment)]))
    response = {"resourceType": "QuestionnaireResponse", "status": "completed"}
    with Session(engine) as db, db.begin():
        expect(db, read[0])
        kept = submit_response(db, definitions, task, response, who="Patient/pat-01")
    with pytest.raises(TaskChangedError), Session(engine) as db, db.begin():
        expect(db, read[1])
        submit_response(db, definitions, task, response, who="Patient/pat-01")
    with Session(engine) as db:
        assert db.scalars(select(ResponseRow.key)).all() == [kept]
        assert db.get(TaskRow, task).status == "completed"
        assert operations(db)[-1][0]["key"] == kept  # the outbox has the first one's only


def test_a_task_read_earlier_still_changes_when_nobody_touched_it(engine, definitions):
    with Session(engine) as db, db.begin():
        enrolment = enrolled(db, definitions)
        module, enrolment_key = key_of(enrolment, "understanding-burnout"), enrolment.key
    with Session(engine) as db:
        read = db.get(TaskRow, module, options=[joinedload(TaskRow.enrolment)])
    with Session(engine) as db, db.begin():
        expect(db, read)
        change_task(db, definitions, module, "in-progress", actor="client")
        change_task(db, definitions, module, "completed", actor="client")  # from in-progress
    with Session(engine) as db:
        enrolment = db.get(EnrolmentRow, enrolment_key)
        assert statuses(enrolment)["understanding-burnout"] == "completed"
        assert statuses(enrolment)["body-signals"] == "ready"  # the rules ran too


def test_the_weekly_check_in_comes_back_next_week(engine, definitions):
    with Session(engine) as db, db.begin():
        enrolment = enrolled(db, definitions)
        weekly = key_of(enrolment, "weekly-checkin.weekly")
        change_task(
            db, definitions, weekly, "completed", actor="client", who="Patient/pat-01", now=NOW
        )
        again = [t for t in enrolment.tasks if t.action_id == "weekly-checkin.weekly"]
        assert [t.status for t in again] == ["completed", "ready"]
        created = operations(db)[-1][1]
    assert created["op"] == "create"
    assert created["resource"]["restriction"]["period"]["start"] == "2026-12-03"  # a week on
    # Until then the client is not asked for it again.
    with Session(engine) as db:

        def due(today):
            [view] = programme_views(db, definitions, fhir_base=EHR, patient="pat-01", today=today)
            return [t.title for t in view.due if t.title.startswith("Wekelijks")]

        assert due(date(2026, 12, 2)) == []
        assert len(due(date(2026, 12, 3))) == 1


def test_the_energy_diary_is_offered_each_day_for_seven_days(engine, definitions):
    with Session(engine) as db, db.begin():
        enrolment = enrolled(db, definitions, track="waiting-list")
        for module in ("understanding-burnout", "body-signals", "tension-relaxation"):
            change_task(db, definitions, key_of(enrolment, module), "completed", actor="client")
        change_task(
            db, definitions, key_of(enrolment, "effort-recovery"), "in-progress", actor="client"
        )
        for _day in range(7):
            [open_one] = [
                t for t in enrolment.tasks
                if t.action_id == "effort-recovery.energy-diary" and t.status == "ready"
            ]  # fmt: skip
            assert open_one.ready_from is None  # a missed day can be filled in later
            change_task(db, definitions, open_one.key, "completed", actor="client", now=NOW)
        diaries = [
            t.status for t in enrolment.tasks if t.action_id == "effort-recovery.energy-diary"
        ]
    assert diaries == ["completed"] * 7  # and no eighth day


def test_the_care_professional_is_asked_to_open_the_next_phase_and_it_is_done_by_opening(
    engine, definitions
):
    with Session(engine) as db, db.begin():
        enrolment = enrolled(db, definitions)
        finish_phase(db, definitions, enrolment, "recovery")
        [request] = [t for t in enrolment.tasks if t.kind == "practitioner"]
        assert (request.action_id, request.status, request.owner) == (
            "unlock:insight", "requested", "Practitioner/prac-1",
        )  # fmt: skip
        created = next(op for op in operations(db)[-1] if op["key"] == request.key)
        assert created["resource"]["code"]["text"] == (
            "Volgende fase openzetten: Fase 2: Inzicht in patronen"
        )
        assert created["resource"]["owner"] == {"reference": "Practitioner/prac-1"}
        unlock_phase(db, definitions, enrolment.key, "insight", by="Practitioner/prac-1")
        assert request.status == "completed"
        assert {"op": "update-task", "key": request.key, "status": "completed"} in (
            operations(db)[-1]
        )


def test_a_safety_signal_gives_the_care_professional_an_urgent_task(engine, definitions):
    with Session(engine) as db, db.begin():
        enrolment = enrolled(db, definitions)
        task = key_of(enrolment, "weekly-checkin.weekly")
        response = {"resourceType": "QuestionnaireResponse", "status": "completed"}
        response_key = submit_response(
            db, definitions, task, response, who="Patient/pat-01", safety_signal=True, now=NOW
        )
        [review] = [t.key for t in enrolment.tasks if t.kind == "practitioner"]
        ops = operations(db)[-1]
    created = next(op["resource"] for op in ops if op["key"] == review)
    assert created["priority"] == "urgent"
    assert created["reasonReference"] == {"reference": f"urn:uuid:{response_key}"}
    assert created["code"]["text"].startswith("Veiligheidssignaal in Wekelijkse check-in")


def test_a_paused_programme_holds_the_clients_open_tasks_and_resumes_where_it_was(
    engine, definitions
):
    with Session(engine) as db, db.begin():
        enrolment = enrolled(db, definitions)
        module = key_of(enrolment, "understanding-burnout")
        change_task(db, definitions, module, "in-progress", actor="client")
        before = statuses(enrolment)
        pause(db, enrolment.key, by="Practitioner/prac-1", reason="Opname", now=NOW)
        held = statuses(enrolment)
        assert enrolment.status == "on-hold"
        assert held["understanding-burnout"] == "on-hold"  # was in progress
        assert held["phq-9.start"] == "on-hold"  # was ready
        assert held["body-signals"] == "on-hold"  # was requested
        assert held["perfectionism"] == "draft"  # not the client's yet: untouched
        # The client can do nothing meanwhile, and no phase opens.
        with pytest.raises(TaskTransitionError):
            change_task(db, definitions, module, "completed", actor="client")
        with pytest.raises(EnrolmentStateError):
            unlock_phase(db, definitions, enrolment.key, "insight", by="Practitioner/prac-1")
        paused_ops = operations(db)[-1]
        resume(db, enrolment.key, by="Practitioner/prac-1", now=NOW)
        assert enrolment.status == "active" and statuses(enrolment) == before
        resumed_ops = operations(db)[-1]
        [view] = programme_views(db, definitions, fhir_base=EHR, patient="pat-01")
        assert not view.paused
        careplan = enrolment.key
    assert paused_ops[0] == {"op": "update-careplan", "key": careplan, "status": "on-hold"}
    assert {op["status"] for op in paused_ops[1:]} == {"on-hold"}
    assert all(op.get("statusReason") == "Opname" for op in paused_ops[1:])
    assert resumed_ops[0]["status"] == "active" and resumed_ops[0]["from"] == "on-hold"
    assert {op["from"] for op in resumed_ops} == {"on-hold"}
    assert {op["key"] for op in resumed_ops[1:]} == {op["key"] for op in paused_ops[1:]}


def test_the_client_sees_that_the_programme_is_paused_and_nothing_due(engine, definitions):
    with Session(engine) as db, db.begin():
        enrolment = enrolled(db, definitions)
        pause(db, enrolment.key, by="Practitioner/prac-1")
        [view] = programme_views(db, definitions, fhir_base=EHR, patient="pat-01")
        # Enrolling again in the same track finds the paused plan, not a second one.
        assert enrolled(db, definitions).key == enrolment.key
    assert view.paused and view.due == () and view.next_module is None


@pytest.mark.parametrize(("end", "careplan_status"), [(stop, "revoked"), (finish, "completed")])
def test_ending_a_programme_cancels_what_is_open_but_not_the_care_professionals_to_dos(
    engine, definitions, end, careplan_status
):
    with Session(engine) as db, db.begin():
        enrolment = enrolled(db, definitions, track="waiting-list")
        response = {"resourceType": "QuestionnaireResponse", "status": "completed"}
        first = next(t for t in enrolment.tasks if t.kind == "measure" and t.status == "ready")
        submit_response(
            db, definitions, first.key, response, who="Patient/pat-01", safety_signal=True
        )
        pause(db, enrolment.key, by="Practitioner/prac-1")
        end(db, enrolment.key, by="Practitioner/prac-1", reason="Behandeling gestart")
        kinds = {(t.kind, t.status) for t in enrolment.tasks}
        assert enrolment.status == careplan_status
        assert ("practitioner", "requested") in kinds  # the safety review still needs doing
        assert {s for k, s in kinds if k != "practitioner"} <= {"completed", "cancelled"}
        assert operations(db)[-1][0]["status"] == careplan_status
        with pytest.raises(EnrolmentStateError):
            resume(db, enrolment.key, by="Practitioner/prac-1")
