"""A portal's Task taken in (take_task), and what of the outbox goes to a Koppeltaal domain.

On a real database (SQLite and PostgreSQL); the KT2 definitions as publishing builds them.
The sandbox round trips are in test_koppeltaal_notify.py.
"""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fhir_burnout.koppeltaal import (
    KoppeltaalTaskError,
    KoppeltaalTaskRow,
    check_view_rule,
    take_task,
    target_of,
)
from fhir_burnout.koppeltaal._plan import may_move, plan_entry, queue_task_status, with_status
from fhir_burnout.koppeltaal._profiles import kt2_activity_definitions
from fhir_burnout.sync import Create, OutboxEntry, UpdateCarePlan, operation_from_json
from fhir_burnout.workflow import (
    Definitions,
    EnrolmentRow,
    TaskRow,
    change_task,
    pause,
    resume,
    stop,
    switch_track,
)

BASE = "https://kt.example/fhir"
INSTANTIATES = "http://vzvz.nl/fhir/StructureDefinition/instantiates"
KT2_TASK = "http://koppeltaal.nl/fhir/StructureDefinition/KT2Task"


@pytest.fixture(scope="module")
def definitions(resources) -> Definitions:
    return Definitions.from_resources(resources)


@pytest.fixture(scope="module")
def kt_ads(resources) -> dict[str, dict]:
    """Our KT2 ActivityDefinitions by code, each with a server id."""
    built = kt2_activity_definitions(
        resources, endpoint="Endpoint/e1", publisher_id="fhir-burnout"
    )
    found = {}
    for ad in built:
        code = ad["identifier"][0]["value"]
        found[code] = {**ad, "id": f"ad-{code}"}
    return found


def kt_task(ad: dict, patient: str = "pat-1", **extra) -> dict:
    """A KT2_Task as the portal makes it, as the server gives it back."""
    task = {
        "resourceType": "Task",
        "id": str(uuid.uuid4()),
        "meta": {"versionId": "1", "profile": [KT2_TASK]},
        "extension": [{"url": INSTANTIATES,
                       "valueReference": {"reference": f"ActivityDefinition/{ad['id']}"}}],
        "identifier": [{"system": "http://fhir-burnout.example/portal-task",
                        "value": str(uuid.uuid4())}],
        "status": "ready",
        "intent": "order",
        "priority": "routine",
        "for": {"reference": f"Patient/{patient}"},
        "owner": {"reference": f"Patient/{patient}"},
        "requester": {"reference": "Practitioner/prac-1"},
    }  # fmt: skip
    task.update(extra)
    return task


def test_a_module_task_enrols_in_the_standard_track_and_follows_that_module(
    engine, definitions, kt_ads
):
    task = kt_task(kt_ads["perfectionism"])
    with Session(engine) as db, db.begin():
        row = take_task(db, definitions, BASE, task, kt_ads["perfectionism"])
        key = row.enrolment_key
    with Session(engine) as db:
        row = db.get(KoppeltaalTaskRow, (BASE, task["id"]))
        enrolment = db.get(EnrolmentRow, key)
        local = db.get(TaskRow, row.local_task_key)
        assert (enrolment.track, enrolment.patient, enrolment.author) == (
            "standard", "pat-1", "Practitioner/prac-1",
        )  # fmt: skip
        assert local.kind == "module" and "/ActivityDefinition/perfectionism" in local.definition
        # Assigned by the care professional: the module's phase (the second) is open to do.
        assert local.status == "ready"
        assert (row.status, row.version_id, row.patient) == ("ready", "1", "Patient/pat-1")


def test_taking_the_same_task_twice_enrols_once(engine, definitions, kt_ads):
    task = kt_task(kt_ads["standard"], patient="pat-2")
    for version in ("1", "2"):
        task["meta"]["versionId"] = version
        with Session(engine) as db, db.begin():
            take_task(db, definitions, BASE, task, kt_ads["standard"])
    with Session(engine) as db:
        rows = db.scalars(select(KoppeltaalTaskRow)).all()
        enrolments = db.scalar(select(func.count()).select_from(EnrolmentRow))
    assert len(rows) == 1 and enrolments == 1
    assert rows[0].local_task_key is None and rows[0].version_id == "2"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"code": {"coding": [{"system": "http://vzvz.nl/fhir/CodeSystem/koppeltaal-task-code",
                               "code": "view"}]}}, "view"),
        ({"extension": [{"url": INSTANTIATES,
                         "valueReference": {"reference": "ActivityDefinition/other"}}]},
         "definition"),
        ({"for": {"reference": "Group/1"}}, "patient"),
        ({"owner": {"reference": "RelatedPerson/7"}}, "owner"),
        ({"status": "cancelled"}, "status"),
        ({"status": "draft"}, "status"),
    ],
)  # fmt: skip
def test_a_task_we_do_not_take_in_is_refused_and_enrols_no_one(
    engine, definitions, kt_ads, change, reason
):
    task = kt_task(kt_ads["standard"], **change)
    with Session(engine) as db, db.begin(), pytest.raises(KoppeltaalTaskError) as refused:
        take_task(db, definitions, BASE, task, kt_ads["standard"])
    assert refused.value.reason == reason
    with Session(engine) as db:
        assert db.scalar(select(func.count()).select_from(EnrolmentRow)) == 0


def test_a_definition_that_is_not_ours_is_refused(definitions, kt_ads):
    foreign = {**kt_ads["standard"], "identifier": [{"system": "https://other/koppeltaal/track",
                                                      "value": "standard"}],
               "url": "https://other/ActivityDefinition/x"}  # fmt: skip
    with pytest.raises(KoppeltaalTaskError) as refused:
        target_of(definitions, foreign)
    assert refused.value.reason == "not-ours"
    assert target_of(definitions, kt_ads["waiting-list"]).track == "waiting-list"
    assert target_of(definitions, kt_ads["body-signals"]).module.endswith("/body-signals")


def test_the_view_rule(kt_ads):
    main = kt_task(kt_ads["standard"])
    view = kt_task(
        kt_ads["standard"],
        code={"coding": [{"system": "http://vzvz.nl/fhir/CodeSystem/koppeltaal-task-code",
                          "code": "view"}]},
        partOf=[{"reference": f"Task/{main['id']}"}],
        owner={"reference": "RelatedPerson/3"},
    )  # fmt: skip
    check_view_rule(view, main)  # holds
    for parent in (None, {**main, "for": {"reference": "Patient/other"}},
                   {**main, "code": view["code"]}):  # fmt: skip
        with pytest.raises(KoppeltaalTaskError):
            check_view_rule(view, parent)


@pytest.mark.parametrize(
    ("current", "target", "came_from", "moves"),
    [
        ("ready", "in-progress", None, True),
        ("in-progress", "in-progress", None, False),
        ("on-hold", "in-progress", None, False),  # paused in the portal: not restarted by us
        ("in-progress", "on-hold", None, True),
        ("on-hold", "in-progress", "on-hold", True),  # our resume
        ("ready", "in-progress", "on-hold", False),  # resumed in the portal already
        ("in-progress", "completed", None, True),
        ("cancelled", "completed", None, False),  # cancelled in the portal: respected
        ("cancelled", "in-progress", None, False),
        ("completed", "in-progress", "on-hold", False),
        ("failed", "ready", "on-hold", False),
    ],
)
def test_a_kt_task_status_only_moves_forward(current, target, came_from, moves):
    assert may_move(current, target, came_from) is moves


def test_a_status_change_changes_the_status_and_nothing_else():
    task = {"resourceType": "Task", "id": "t", "status": "ready", "meta": {"versionId": "3"},
            "extension": [{"url": "http://koppeltaal.nl/fhir/StructureDefinition/resource-origin",
                           "valueReference": {"reference": "Device/portal"}}]}  # fmt: skip
    new = with_status(task, "in-progress")
    assert new["status"] == "in-progress" and task["status"] == "ready"
    assert new["extension"] == task["extension"]
    assert new["meta"]["profile"] == [KT2_TASK]
    assert {k for k in new if new[k] != task.get(k)} == {"status", "meta"}


def _entries(engine) -> list[list[dict]]:
    with Session(engine) as db:
        payloads = db.scalars(select(OutboxEntry.payload).order_by(OutboxEntry.id)).all()
    return [json.loads(p)["operations"] for p in payloads]


def _plan(engine, operations):
    """The plan of stored operations (as read from an entry's payload)."""
    with Session(engine) as db, db.begin():
        return plan_entry(db, BASE, [operation_from_json(op) for op in operations])


def test_only_the_status_of_the_followed_task_goes_to_the_domain(engine, definitions, kt_ads):
    task = kt_task(kt_ads["body-signals"], patient="pat-3")
    with Session(engine) as db, db.begin():
        row = take_task(db, definitions, BASE, task, kt_ads["body-signals"])
        local = row.local_task_key
    enrolment_ops = _entries(engine)[0]
    plan = _plan(engine, enrolment_ops)
    assert plan.changes == () and plan.audit_events == ()
    assert dict(plan.kept)["CarePlan"] == 1 and dict(plan.kept)["Task"] > 1
    with Session(engine) as db, db.begin():
        change_task(db, definitions, local, "in-progress", actor="client", who="Patient/pat-3")
    started = _plan(engine, _entries(engine)[-1])
    assert [(c.task_id, c.status) for c in started.changes] == [(task["id"], "in-progress")]
    with Session(engine) as db, db.begin():
        change_task(db, definitions, local, "completed", actor="client", who="Patient/pat-3")
    done = _plan(engine, _entries(engine)[-1])
    assert [(c.task_id, c.status) for c in done.changes] == [(task["id"], "completed")]
    # Another module's change is nobody's business on the domain.
    with Session(engine) as db:
        other = db.scalar(
            select(TaskRow.key).where(TaskRow.kind == "module", TaskRow.key != local,
                                      TaskRow.status == "ready")
        )  # fmt: skip
    with Session(engine) as db, db.begin():
        change_task(db, definitions, other, "in-progress", actor="client", who="Patient/pat-3")
    assert _plan(engine, _entries(engine)[-1]).changes == ()


def test_a_track_task_follows_the_enrolment(engine, definitions, kt_ads):
    task = kt_task(kt_ads["waiting-list"], patient="pat-4")
    with Session(engine) as db, db.begin():
        row = take_task(db, definitions, BASE, task, kt_ads["waiting-list"])
        enrolment = row.enrolment_key
        first = db.scalar(
            select(TaskRow.key).where(TaskRow.enrolment_key == enrolment, TaskRow.kind == "module",
                                      TaskRow.status == "ready").order_by(TaskRow.position)
        )  # fmt: skip
    with Session(engine) as db, db.begin():
        change_task(db, definitions, first, "in-progress", actor="client", who="Patient/pat-4")
    assert [c.status for c in _plan(engine, _entries(engine)[-1]).changes] == ["in-progress"]
    with Session(engine) as db, db.begin():
        pause(db, enrolment, by="Practitioner/prac-1")
    assert [c.status for c in _plan(engine, _entries(engine)[-1]).changes] == ["on-hold"]
    with Session(engine) as db, db.begin():
        resume(db, enrolment, by="Practitioner/prac-1")
    back = _plan(engine, _entries(engine)[-1]).changes
    assert [(c.status, c.came_from) for c in back] == [("in-progress", "on-hold")]
    with Session(engine) as db, db.begin():
        stop(db, enrolment, by="Practitioner/prac-1")
    assert [c.status for c in _plan(engine, _entries(engine)[-1]).changes] == ["cancelled"]


def test_audit_events_go_and_our_own_resources_stay(engine):
    operations = [
        Create("k1", {"resourceType": "AuditEvent"}),
        Create("k2", {"resourceType": "QuestionnaireResponse"}),
        Create("k3", {"resourceType": "CarePlan"}),
        UpdateCarePlan("k3", "on-hold"),
    ]
    plan = _plan(engine, [op.to_json() for op in operations])
    assert [op.key for op in plan.audit_events] == ["k1"]
    assert plan.changes == ()
    assert plan.kept_text() == "stays with us: 2 CarePlan, 1 QuestionnaireResponse"


def test_the_launch_queues_a_status_for_the_kt_task(engine, definitions, kt_ads):
    task = kt_task(kt_ads["standard"], patient="pat-5")
    with Session(engine) as db, db.begin():
        row = take_task(db, definitions, BASE, task, kt_ads["standard"])
        queue_task_status(db, row, "in-progress", who="Patient/pat-5")
    plan = _plan(engine, _entries(engine)[-1])
    assert [(c.task_id, c.status) for c in plan.changes] == [(task["id"], "in-progress")]


def test_a_switch_of_track_moves_the_kt_task_along_instead_of_cancelling_it(
    engine, definitions, kt_ads
):
    task = kt_task(kt_ads["body-signals"], patient="pat-6")
    with Session(engine) as db, db.begin():
        row = take_task(db, definitions, BASE, task, kt_ads["body-signals"])
        old_enrolment, old_task = row.enrolment_key, row.local_task_key
    with Session(engine) as db, db.begin():
        new = switch_track(db, definitions, old_enrolment, "waiting-list", by="Practitioner/p")
        new_key = new.key
    switched = next(ops for ops in _entries(engine)
                    if any(op.get("status") == "cancelled" for op in ops))  # fmt: skip
    plan = _plan(engine, switched)
    assert plan.changes == ()  # not cancelled on the domain
    with Session(engine) as db:
        row = db.get(KoppeltaalTaskRow, (BASE, task["id"]))
        moved = db.get(TaskRow, row.local_task_key)
    assert row.enrolment_key == new_key and row.local_task_key != old_task
    assert "/ActivityDefinition/body-signals" in moved.definition


def test_a_module_assigned_twice_moves_both_kt_tasks(engine, definitions, kt_ads):
    first, second = (kt_task(kt_ads["body-signals"], patient="pat-7") for _ in range(2))
    with Session(engine) as db, db.begin():
        rows = [
            take_task(db, definitions, BASE, t, kt_ads["body-signals"]) for t in (first, second)
        ]
        local = {r.local_task_key for r in rows}
    assert len(local) == 1
    with Session(engine) as db, db.begin():
        change_task(
            db, definitions, local.pop(), "in-progress", actor="client", who="Patient/pat-7"
        )
    plan = _plan(engine, _entries(engine)[-1])
    assert sorted(c.task_id for c in plan.changes) == sorted([first["id"], second["id"]])
