"""Endings on purpose and measures that follow the programme (issue 16, items 6 and 8):
stop and finish carry a coded reason to the EHR, and the weekly check-in ends when the
programme does (after-care after its 26 weeks), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from fhir_burnout.cli._worker import _close_measures
from fhir_burnout.fhir import FhirClient
from fhir_burnout.resources import build_resources, load_programme
from fhir_burnout.sync import OutboxEntry, Worker
from fhir_burnout.workflow import (
    Definitions,
    TaskRow,
    UnknownEndingReasonError,
    end_measures,
    ending_reason,
    ending_reasons,
    enrol,
    extend_measures,
    finish,
    measure_views,
    patient_overview,
    programme_views,
    stop,
    submit_response,
)

from .conftest import ROOT
from .outbox_load import worker_token_source
from .practitioners import as_practitioner, enrolments, make_app, page_of, post, server

EHR = "http://ehr.example/fhir"
START = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)
BY = "Practitioner/prac-1"
SYSTEM = "https://fhir-burnout.org/fhir/CodeSystem/ending-reason"
EXTENSION = "https://fhir-burnout.org/fhir/StructureDefinition/ending-reason"
ANSWERED = {"resourceType": "QuestionnaireResponse", "status": "completed"}


@pytest.fixture(scope="module")
def definitions(resources):
    return Definitions.from_resources(resources)


def enrolled(db, definitions, track, patient="pat-01", now=START):
    return enrol(
        db, definitions, fhir_base=EHR, patient=patient, track=track, author=BY,
        practice="Organization/practice-1", today=now.date(), now=now,
    )  # fmt: skip


def operations(db):
    entries = db.scalars(select(OutboxEntry).order_by(OutboxEntry.id)).all()
    return [op for e in entries for op in json.loads(e.payload)["operations"]]


def open_checkins(db, enrolment):
    return db.scalars(
        select(TaskRow).where(
            TaskRow.enrolment_key == enrolment.key,
            TaskRow.action_id == "weekly-checkin.weekly",
            TaskRow.status.in_(("ready", "in-progress")),
        )
    ).all()


def test_the_package_has_the_ending_reasons_and_their_extension(resources):
    [system] = [r for r in resources if r["resourceType"] == "CodeSystem" and r["url"] == SYSTEM]
    codes = {c["code"]: c for c in system["concept"]}
    assert {"goals-reached", "own-choice", "referred-on", "not-suitable", "no-contact",
            "needs-more-care", "other"} <= set(codes)  # fmt: skip
    assert codes["needs-more-care"]["display"] == "Crisis of meer zorg nodig"
    assert codes["needs-more-care"]["designation"] == [
        {"language": "en", "value": "Crisis or in need of more care"}
    ]
    [extension] = [r for r in resources if r.get("url") == EXTENSION]
    assert extension["context"] == [{"type": "element", "expression": "CarePlan"}]
    [after_care] = [r for r in resources if r.get("id") == "after-care" and "action" in r]
    weekly = after_care["action"][-1]["action"][0]
    assert weekly["timingTiming"]["repeat"]["boundsDuration"]["value"] == 26


def test_reasons_fit_the_ending_and_an_unknown_one_is_refused(definitions):
    stops = dict(ending_reasons(definitions, "stop", "nl"))
    finishes = dict(ending_reasons(definitions, "finish", "en"))
    assert "goals-reached" not in stops and finishes["goals-reached"] == "Goals reached"
    assert stops["needs-more-care"] == "Crisis of meer zorg nodig"
    with pytest.raises(UnknownEndingReasonError):
        ending_reason(definitions, "bored")


@pytest.mark.parametrize(
    ("end", "status", "code"),
    [(stop, "revoked", "needs-more-care"), (finish, "completed", "goals-reached")],
)
def test_the_reason_travels_coded_on_the_careplan_and_every_task_that_closes(
    engine, definitions, end, status, code
):
    with Session(engine) as db, db.begin():
        enrolment = enrolled(db, definitions, "standard")
        reason = ending_reason(definitions, code, "  Verwezen naar de huisarts.  ")
        end(db, enrolment.key, by=BY, reason=reason, now=START + timedelta(days=3))
        assert enrolment.status == status and enrolment.ending_reason == code
        ops = operations(db)
        [careplan] = [op for op in ops if op["op"] == "update-careplan"]
        [extension] = careplan["extension"]
        assert extension["url"] == EXTENSION
        concept = extension["valueCodeableConcept"]
        assert concept["coding"][0]["system"] == SYSTEM and concept["coding"][0]["code"] == code
        assert concept["text"] == "Verwezen naar de huisarts."
        cancelled = [op for op in ops if op.get("status") == "cancelled"]
        assert cancelled and all(op["statusReason"] == concept for op in cancelled)
        assert open_checkins(db, enrolment) == []
        [view] = [e for e in patient_overview(db, definitions, fhir_base=EHR, patient="pat-01")
                  .enrolments]  # fmt: skip
        assert view.ending_reason in ("Crisis of meer zorg nodig", "Doelen bereikt")


def test_after_care_check_ins_stop_after_26_weeks_and_the_care_professional_is_asked(
    engine, definitions
):
    """Reproduces the never-ending check-in: each answered check-in used to make the next,
    for ever. Now the last one is in week 26; then the care professional gets a Task."""
    with Session(engine) as db, db.begin():
        enrolment = enrolled(db, definitions, "after-care")
        assert enrolment.measures_until == date(2027, 5, 26)
        answered = 0
        now = START
        while (tasks := open_checkins(db, enrolment)) and answered < 40:
            submit_response(db, definitions, tasks[0].key, ANSWERED, who="Patient/pat-01",
                            now=now)  # fmt: skip
            answered += 1
            now += timedelta(weeks=1)
        assert answered == 26  # weeks 0 to 25: then nothing more comes
        asks = [t for t in enrolment.tasks if t.action_id == "measures-end"]
        assert [(t.kind, t.status, t.owner) for t in asks] == [("practitioner", "requested", BY)]
        [view] = patient_overview(db, definitions, fhir_base=EHR, patient="pat-01").enrolments
        assert view.measures_ended
        # The care professional extends: a new check-in comes a week later, until 26 more weeks.
        extend_measures(db, definitions, enrolment.key, by=BY, now=now)
        assert enrolment.measures_until == now.date() + timedelta(weeks=26) - timedelta(days=1)
        [again] = open_checkins(db, enrolment)
        assert again.ready_from == now.date() + timedelta(weeks=1)
        assert all(t.status == "completed" for t in asks)


def test_an_unanswered_check_in_is_closed_when_the_track_has_run_its_time(engine, definitions):
    with Session(engine) as db, db.begin():
        enrolment = enrolled(db, definitions, "after-care", patient="pat-02")
        standard = enrolled(db, definitions, "standard", patient="pat-02")
        [waiting] = open_checkins(db, enrolment)
        day_26 = START + timedelta(weeks=26)
        views = programme_views(
            db, definitions, fhir_base=EHR, patient="pat-02", today=day_26.date()
        )
        [view] = [v for v in views if v.track == "after-care"]
        assert waiting.key not in {t.key for t in view.due}  # nobody reads it any more
        assert end_measures(db, definitions, now=day_26 - timedelta(days=1)) == []
        assert end_measures(db, definitions, now=day_26) == [enrolment.key]
        assert waiting.status == "cancelled"
        assert [t.status for t in enrolment.tasks if t.action_id == "measures-end"] == [
            "requested"
        ]
        assert end_measures(db, definitions, now=day_26 + timedelta(days=1)) == []  # asked once
        reason = ending_reason(definitions, "goals-reached")
        finish(db, enrolment.key, by=BY, reason=reason, now=day_26 + timedelta(days=2))
        assert [t.status for t in enrolment.tasks if t.action_id == "measures-end"] == [
            "completed"  # decided: finished
        ]
        assert standard.measures_until is None and open_checkins(db, standard)  # runs on


def test_the_care_professional_sees_what_each_track_measures(engine, definitions):
    with Session(engine) as db, db.begin():
        enrolment = enrolled(db, definitions, "after-care", patient="pat-03")
        plan = definitions.by_canonical[enrolment.plan_definition]
        views = measure_views(plan, enrolment, "nl")
    moments = [(v.title, v.moment, v.until) for v in views]
    assert ("Wekelijkse check-in", "weekly", date(2027, 5, 26)) in moments
    assert any(m == "start" for _, m, _ in moments) and any(m == "end" for _, m, _ in moments)


class OneRound(threading.Event):
    """A stop event that ends a worker loop after its first round (no waiting)."""

    def wait(self, timeout=None):
        self.set()
        return True


def test_the_worker_closes_the_measures_of_tracks_that_have_run_their_time(engine):
    definitions = Definitions.from_resources(build_resources(load_programme(ROOT)[0]))
    long_ago = datetime.now(UTC) - timedelta(weeks=27)
    with Session(engine) as db, db.begin():
        key = enrolled(db, definitions, "after-care", patient="pat-04", now=long_ago).key
    _close_measures(OneRound(), engine, ROOT)
    with Session(engine) as db:
        statuses = {
            t.action_id: t.status
            for t in db.scalars(select(TaskRow).where(TaskRow.enrolment_key == key))
        }
    assert statuses["weekly-checkin.weekly"] == "cancelled"
    assert statuses["measures-end"] == "requested"


# --- the care professional's pages, against the sandbox EHR ------------------------------


@pytest.fixture
def app(sandbox, tmp_path, database_url):
    app = make_app(sandbox, tmp_path / "app", database_url)
    yield app
    app.extensions["fhir_burnout"]["engine"].dispose()


def test_stop_asks_first_and_without_a_confirmation_or_a_reason_nothing_changes(
    app, sandbox, fhir
):

    state = app.extensions["fhir_burnout"]
    with Session(state["engine"]) as db, db.begin():
        key = enrol(
            db, state["definitions"], fhir_base=sandbox.fhir_base, patient="pat-15",
            track="standard", author=BY, practice="Organization/practice-1",
        ).key  # fmt: skip
    client = as_practitioner(app, sandbox, "pat-15")
    _, page = page_of(client)
    assert "Metingen in dit traject" in page
    assert "Wekelijkse check-in: elke week, zolang het traject loopt" in page
    status, confirm = page_of(client, f"/practitioner/enrolments/{key}/stop")
    assert status == 200
    assert "Programma stoppen: Herstellen van burn-out: Tijdens de behandeling" in confirm
    assert "De wekelijkse check-in stopt" in confirm and "Reden (verplicht)" in confirm
    assert "Doelen bereikt" not in confirm and "Crisis of meer zorg nodig" in confirm
    # The old one-click form: refused, readable, nothing changes.
    once = post(client, f"/practitioner/enrolments/{key}/stop")
    assert once.status_code == 400
    assert "bevestiging en een reden" in once.get_data(as_text=True)
    unreasoned = post(client, f"/practitioner/enrolments/{key}/stop", confirm="yes", note="x")
    assert unreasoned.status_code == 400
    assert "Kies een reden. Er is niets veranderd." in unreasoned.get_data(as_text=True)
    made_up = post(client, f"/practitioner/enrolments/{key}/stop", confirm="yes", reason="bored")
    assert made_up.status_code == 400
    assert ("standard", "active") in [(t, s) for _, t, s in enrolments(app, "pat-15")]
    stopped = post(
        client, f"/practitioner/enrolments/{key}/stop", confirm="yes",
        reason="referred-on", note="Naar de basis-GGZ.",
    )  # fmt: skip
    assert stopped.status_code == 303
    _, page = page_of(client)
    assert "Het programma is gestopt." in page
    assert "Reden: Behandeling elders of doorverwezen." in page
    with FhirClient(sandbox.fhir_base, token_source=worker_token_source(sandbox)) as ehr:
        worker = Worker(state["engine"], lambda base: ehr, owner="endings")
        while worker.run_once():
            pass
    careplan = server(fhir, key, "CarePlan")
    assert careplan["status"] == "revoked"
    [extension] = careplan["extension"]
    assert extension["url"] == EXTENSION
    assert extension["valueCodeableConcept"]["coding"][0]["code"] == "referred-on"
    assert extension["valueCodeableConcept"]["text"] == "Naar de basis-GGZ."
    with Session(state["engine"]) as db:
        closed = db.scalars(
            select(TaskRow.key).where(TaskRow.enrolment_key == key, TaskRow.status == "cancelled")
        ).all()
    assert closed
    for task_key in closed:
        reason = server(fhir, task_key)["statusReason"]
        assert reason["coding"][0]["system"] == SYSTEM
        assert reason["coding"][0]["code"] == "referred-on"


def test_the_finish_page_says_what_comes_after_in_english_too(app, sandbox):
    state = app.extensions["fhir_burnout"]
    with Session(state["engine"]) as db, db.begin():
        key = enrol(
            db, state["definitions"], fhir_base=sandbox.fhir_base, patient="pat-16",
            track="standard", author=BY, practice="Organization/practice-1",
        ).key  # fmt: skip
        other = enrol(
            db, state["definitions"], fhir_base=sandbox.fhir_base, patient="pat-17",
            track="standard", author=BY, practice="Organization/practice-1",
        ).key  # fmt: skip
    client = as_practitioner(app, sandbox, "pat-16")
    answer = client.get(
        f"/practitioner/enrolments/{key}/finish", headers={"Accept-Language": "en"}
    )
    page = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "Finish the programme" in page
    assert "you can offer the client after-care" in page and "Goals reached" in page
    assert "Crisis or in need of more care" not in page  # that is a reason to stop
    # The clients' crisis footer is not for the care professional (issue 21): base.html
    # shows the practice's own crisis protocol instead, where one is configured.
    assert "0800-0113" not in page
    # Another client's programme, or one that has ended: not asked, readable.
    assert page_of(client, f"/practitioner/enrolments/{other}/finish")[0] == 404
    finished = post(
        client, f"/practitioner/enrolments/{key}/finish", confirm="yes", reason="goals-reached"
    )
    assert finished.status_code == 303
    status, page = page_of(client, f"/practitioner/enrolments/{key}/stop")
    assert status == 409 and "Er is niets veranderd" in page
    assert "Reden: Doelen bereikt." in page


def test_after_care_that_ran_its_time_is_extended_from_the_page(app, sandbox):
    state = app.extensions["fhir_burnout"]
    long_ago = datetime.now(UTC) - timedelta(weeks=27)
    with Session(state["engine"]) as db, db.begin():
        key = enrol(
            db, state["definitions"], fhir_base=sandbox.fhir_base, patient="pat-18",
            track="after-care", author=BY, practice="Organization/practice-1",
            now=long_ago, today=long_ago.date(),
        ).key  # fmt: skip
        assert end_measures(db, state["definitions"]) == [key]
    client = as_practitioner(app, sandbox, "pat-18")
    _, page = page_of(client)
    assert "De looptijd van dit traject is voorbij: er komen geen check-ins meer." in page
    extended = post(client, f"/practitioner/enrolments/{key}/extend")
    assert extended.status_code == 303
    _, page = page_of(client)
    until = (datetime.now(UTC) + timedelta(weeks=26) - timedelta(days=1)).date()
    day = f"{until.day}-{until.month}-{until.year}"
    assert f"De metingen lopen door tot en met {day}." in page
    assert f"Wekelijkse check-in: elke week, tot en met {day}" in page
    assert "De looptijd van dit traject is voorbij" not in page
    # Extending what has no end (the standard track) changes nothing.
    with Session(state["engine"]) as db, db.begin():
        standard = enrol(
            db, state["definitions"], fhir_base=sandbox.fhir_base, patient="pat-18",
            track="standard", author=BY, practice="Organization/practice-1",
        ).key  # fmt: skip
    assert post(client, f"/practitioner/enrolments/{standard}/extend").status_code == 409
