"""The care professional's view: the chart's patient at a glance with the decisions about
their programme, the practice's list, and the read model behind both, on SQLite and
PostgreSQL, against the sandbox EHR (the worker delivers every decision to it)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from fhir_burnout.fhir import FhirClient
from fhir_burnout.referral import ReferralRow, status_key, take_referral
from fhir_burnout.sync import Worker, queue_status
from fhir_burnout.workflow import (
    STUCK_AFTER,
    Definitions,
    NoteRow,
    TaskRow,
    change_task,
    enrol,
    invite,
    patient_overview,
    pause,
    practice_overview,
    switch_track,
    unlock_phase,
)

from .conftest import path_of
from .launches import as_patient
from .outbox_load import deliver_all, worker_token_source
from .practitioners import (
    PHQ9_ITEMS,
    PRACTICE,
    as_practitioner,
    enrolments,
    make_app,
    page_of,
    post,
    server,
    submit,
)


@pytest.fixture
def app(sandbox, tmp_path, database_url):
    app = make_app(sandbox, tmp_path / "app", database_url)
    yield app
    app.extensions["fhir_burnout"]["engine"].dispose()


@pytest.fixture
def worker(app, sandbox):
    client = FhirClient(sandbox.fhir_base, token_source=worker_token_source(sandbox))
    yield Worker(app.extensions["fhir_burnout"]["engine"], lambda base: client, owner="h3")
    client.close()


def local_tasks(app, enrolment_key):
    with Session(app.extensions["fhir_burnout"]["engine"]) as db:
        rows = db.scalars(select(TaskRow).where(TaskRow.enrolment_key == enrolment_key))
        return {t.key: t.status for t in rows}


def assert_ehr_agrees(fhir, app, enrolment_key, careplan_status):
    assert server(fhir, enrolment_key, "CarePlan")["status"] == careplan_status
    for key, status in local_tasks(app, enrolment_key).items():
        assert server(fhir, key)["status"] == status, key


def test_enrol_unlock_pause_resume_and_finish_from_the_view_reach_the_ehr(
    app, sandbox, worker, fhir
):
    client = as_practitioner(app, sandbox, "pat-12")
    status, page = page_of(client)
    assert status == 200 and "Deze cliënt doet nog niet mee" in page
    enrolled = post(client, "/practitioner/enrol", track="standard")
    assert enrolled.status_code == 303 and path_of(enrolled.headers["Location"]) == "/practitioner"
    _, page = page_of(client)
    assert "Aangemeld voor Herstellen van burn-out: Tijdens de behandeling." in page
    [(key, _, _)] = enrolments(app, "pat-12")
    deliver_all(worker)
    assert_ehr_agrees(fhir, app, key, "active")
    careplan = server(fhir, key, "CarePlan")
    [provenance] = fhir.search("Provenance", {"target": f"CarePlan/{careplan['id']}"})
    assert provenance["agent"][0]["who"] == {"reference": "Practitioner/prac-1"}
    assert provenance["agent"][0]["onBehalfOf"] == {"reference": PRACTICE}
    # Enrolling again in the same track is not offered, and refused when forced.
    again = post(client, "/practitioner/enrol", track="standard")
    assert again.status_code == 409 and "Er is niets veranderd" in again.get_data(as_text=True)
    assert len(enrolments(app, "pat-12")) == 1

    assert "Openzetten: Fase 2: Inzicht in patronen" in page
    opened = post(client, f"/practitioner/enrolments/{key}/unlock", phase="insight")
    assert opened.status_code == 303
    _, page = page_of(client)
    assert "De fase staat open." in page and "Fase 2: Inzicht in patronen — open" in page
    deliver_all(worker)
    assert_ehr_agrees(fhir, app, key, "active")

    paused = post(client, f"/practitioner/enrolments/{key}/pause")
    assert paused.status_code == 303
    deliver_all(worker)
    assert_ehr_agrees(fhir, app, key, "on-hold")
    assert "on-hold" in local_tasks(app, key).values()
    # A second pause of what is paused: a readable refusal, nothing changes.
    twice = post(client, f"/practitioner/enrolments/{key}/pause")
    assert twice.status_code == 409
    assert "huidige stand van het programma" in twice.get_data(as_text=True)
    assert enrolments(app, "pat-12")[0][2] == "on-hold"

    resumed = post(client, f"/practitioner/enrolments/{key}/resume")
    assert resumed.status_code == 303
    deliver_all(worker)
    assert_ehr_agrees(fhir, app, key, "active")
    assert "on-hold" not in local_tasks(app, key).values()

    # Without the form's token nothing changes.
    forged = client.post(
        f"/practitioner/enrolments/{key}/finish",
        data={"csrf_token": "x", "confirm": "yes", "reason": "goals-reached"},
    )
    assert forged.status_code == 400 and enrolments(app, "pat-12")[0][2] == "active"
    finished = post(
        client, f"/practitioner/enrolments/{key}/finish", confirm="yes", reason="goals-reached"
    )
    assert finished.status_code == 303
    deliver_all(worker)
    assert_ehr_agrees(fhir, app, key, "completed")
    assert not {"ready", "in-progress", "draft"} & set(local_tasks(app, key).values())
    assert queue_status(app.extensions["fhir_burnout"]["engine"]).dead == 0
    _, page = page_of(client)
    assert "Tijdens de behandeling — afgerond" in page


def test_switching_keeps_modules_done_and_a_note_reaches_the_client(app, sandbox, worker, fhir):
    state = app.extensions["fhir_burnout"]
    with Session(state["engine"]) as db, db.begin():
        waiting = enrol(
            db, state["definitions"], fhir_base=sandbox.fhir_base, patient="pat-13",
            track="waiting-list", author="Practitioner/prac-1", practice=PRACTICE,
        )  # fmt: skip
        first = next(t.key for t in waiting.tasks if t.action_id == "understanding-burnout")
        change_task(db, state["definitions"], first, "completed", actor="client",
                    who="Patient/pat-13")  # fmt: skip
        old = waiting.key
        code = invite(db, waiting).code  # a referral's invitation, for the practice to send
    client = as_practitioner(app, sandbox, "pat-13")
    _, page = page_of(client)
    assert f"Uitnodigingscode: {code}." in page
    assert "Overstappen naar: Herstellen van burn-out: Tijdens de behandeling" in page
    assert "1 van de 5 modules gedaan." in page and "Wat is burn-out?" in page
    switched = post(client, f"/practitioner/enrolments/{old}/switch", track="standard")
    assert switched.status_code == 303
    [before, (new, track, status)] = enrolments(app, "pat-13")
    assert before == (old, "waiting-list", "completed") and (track, status) == (
        "standard",
        "active",
    )
    with Session(state["engine"]) as db:
        overview = patient_overview(
            db, state["definitions"], fhir_base=sandbox.fhir_base, patient="pat-13"
        )
    [current] = overview.current
    assert current.key == new and current.follows == old
    assert [m.title for m in current.modules_done] == ["Wat is burn-out?"]
    assert overview.enrolments[1].followed_by == new
    _, page = page_of(client)
    assert "Overgestapt vanuit een ander traject" in page
    assert "Overstappen naar" not in page  # in the standard track now

    sent = post(client, f"/practitioner/enrolments/{new}/note", text="Tot dinsdag, sterkte!")
    assert sent.status_code == 303
    empty = post(client, f"/practitioner/enrolments/{new}/note", text="   ")
    assert empty.status_code == 409
    with Session(state["engine"]) as db:
        [note] = db.scalars(select(NoteRow)).all()
        assert note.author == "Practitioner/prac-1" and note.enrolment_key == new
    _, page = page_of(client)
    assert "Verstuurde berichten" in page and "Tot dinsdag, sterkte!" in page
    home = as_patient(app, "pat-13").get("/", headers={"Accept-Language": "nl"})
    assert "Tot dinsdag, sterkte!" in home.get_data(as_text=True)
    deliver_all(worker)
    assert server(fhir, note.key, "Communication")["payload"] == [
        {"contentString": "Tot dinsdag, sterkte!"}
    ]
    assert_ehr_agrees(fhir, app, new, "active")
    stopped = post(
        client, f"/practitioner/enrolments/{new}/stop", confirm="yes", reason="own-choice"
    )
    assert stopped.status_code == 303
    deliver_all(worker)
    assert_ehr_agrees(fhir, app, new, "revoked")
    assert "Tijdens de behandeling — gestopt" in page_of(client)[1]


def test_a_patient_session_is_refused_with_a_readable_page(app, sandbox):
    state = app.extensions["fhir_burnout"]
    with Session(state["engine"]) as db, db.begin():
        key = enrol(
            db, state["definitions"], fhir_base=sandbox.fhir_base, patient="pat-14",
            track="waiting-list",
        ).key  # fmt: skip
    client = as_patient(app, "pat-14")
    for path in ("/practitioner", "/practice"):
        status, page = page_of(client, path)
        assert status == 403 and "alleen voor behandelaars" in page
    client.get("/")
    with client.session_transaction() as cookie:
        token = cookie["csrf_token"]
    refused = client.post(
        f"/practitioner/enrolments/{key}/stop",
        data={"csrf_token": token, "confirm": "yes", "reason": "own-choice"},
    )
    assert refused.status_code == 403
    assert enrolments(app, "pat-14") == [(key, "waiting-list", "active")]
    nobody = app.test_client()
    assert nobody.get("/practitioner").status_code == 401


def test_a_practitioner_cannot_change_another_patients_programme(app, sandbox):
    state = app.extensions["fhir_burnout"]
    with Session(state["engine"]) as db, db.begin():
        key = enrol(
            db, state["definitions"], fhir_base=sandbox.fhir_base, patient="pat-15",
            track="waiting-list",
        ).key  # fmt: skip
    client = as_practitioner(app, sandbox, "pat-16")  # the chart of another patient
    refused = post(client, f"/practitioner/enrolments/{key}/pause")
    assert refused.status_code == 409
    assert "hoort niet (meer) bij het programma" in refused.get_data(as_text=True)
    assert enrolments(app, "pat-15") == [(key, "waiting-list", "active")]


def test_the_practice_list_is_for_the_practice_own_care_professionals(
    app, sandbox, tmp_path, database_url
):
    state = app.extensions["fhir_burnout"]
    with Session(state["engine"]) as db, db.begin():
        enrol(db, state["definitions"], fhir_base=sandbox.fhir_base, patient="pat-16",
              track="waiting-list", practice=PRACTICE)  # fmt: skip
    status, page = page_of(as_practitioner(app, sandbox, "pat-16"), "/practice")
    assert status == 200 and "<h1>Praktijkoverzicht</h1>" in page
    # named, read with the user's own token; the name opens the client
    assert re.search(r'<a href="/practice/clients/[^"]+">Puck Zandbak</a> <span class="muted">'
                     r"\(pat-16\)</span>", page)  # fmt: skip
    # An app serving another practice: prac-1's role is at practice-1, not there.
    other = f"Organization/{uuid.uuid4()}"
    elsewhere = make_app(sandbox, tmp_path / "elsewhere", database_url, practice=other)
    try:
        client = as_practitioner(elsewhere, sandbox, "pat-16")
        status, page = page_of(client, "/practice")
        assert status == 403 and "alleen voor behandelaars van deze praktijk" in page
        assert page_of(client, "/practice")[0] == 403  # kept for the session: same answer
        assert page_of(client)[0] == 200  # the chart's own patient is still theirs to see
        # Nor can they read or decide that practice's referrals waiting for triage.
        there = elsewhere.extensions["fhir_burnout"]
        with Session(there["engine"]) as db, db.begin():
            referral = {"resourceType": "ServiceRequest", "id": "sr-x", "status": "active",
                        "identifier": [{"system": "https://verwijs.example", "value": "x"}],
                        "intent": "order", "subject": {"reference": "Patient/pat-17"}}  # fmt: skip
            key = take_referral(db, there["definitions"], fhir_base=sandbox.fhir_base,
                                service_request=referral, seen_by="subscription",
                                practice=other).referral.key  # fmt: skip
        assert page_of(client, f"/practice/referrals/{key}")[0] == 403
        assert post(client, f"/practice/referrals/{key}/accept").status_code == 403
        with Session(there["engine"]) as db:
            assert db.get(ReferralRow, key).state == "triage"
    finally:
        elsewhere.extensions["fhir_burnout"]["engine"].dispose()


# --- answers, scores and safety -----------------------------------------------------------


@pytest.fixture(scope="module")
def definitions(resources):
    return Definitions.from_resources(resources)


def test_scores_over_time_get_a_band_and_the_reliable_change(engine, definitions):
    start = datetime(2026, 9, 1, 9, tzinfo=UTC)
    with Session(engine) as db, db.begin():
        waiting = enrol(
            db, definitions, fhir_base="https://ehr.example/fhir", patient="p1",
            track="waiting-list", now=start,
        )  # fmt: skip
        tasks = {t.action_id: t.key for t in waiting.tasks}
        # Nearly every day on every item: 3 * 8 + 2 = 26.
        submit(db, definitions, tasks["phq-9.start"], {**dict.fromkeys(PHQ9_ITEMS, 3),
               "phq9-9": 2}, patient="p1", now=start)  # fmt: skip
        standard = switch_track(
            db, definitions, waiting.key, "standard", by="Practitioner/x",
            now=start + timedelta(days=30),
        )  # fmt: skip
        again = next(t.key for t in standard.tasks if t.action_id == "phq-9.start")
        submit(db, definitions, again, {**dict.fromkeys(PHQ9_ITEMS, 0), "phq9-1": 1},
               patient="p1", now=start + timedelta(days=31))  # fmt: skip
    with Session(engine) as db:
        overview = patient_overview(
            db, definitions, fhir_base="https://ehr.example/fhir", patient="p1"
        )
        english = patient_overview(
            db, definitions, fhir_base="https://ehr.example/fhir", patient="p1", lang="en"
        )
    [phq9] = [s for s in overview.scores if s.link_id == "phq9-total"]
    assert [p.value for p in phq9.points] == [26.0, 1.0]
    assert phq9.points[0].band != phq9.points[1].band and phq9.points[0].label
    assert phq9.change is not None and phq9.change.verdict == "improved"
    assert phq9.change.index < -1.96
    # The answers, readable, newest first, in the care professional's language.
    latest = overview.responses[0]
    assert "PHQ-9" in latest.title
    assert "Verscheidene dagen" in [a.answer for a in latest.answers]
    assert "Several days" in [a.answer for a in english.responses[0].answers]
    assert overview.responses[1].authored < latest.authored


def test_no_reliable_change_for_a_small_difference(engine, definitions):
    start = datetime(2026, 9, 1, 9, tzinfo=UTC)
    with Session(engine) as db, db.begin():
        waiting = enrol(
            db, definitions, fhir_base="https://ehr.example/fhir", patient="p2",
            track="waiting-list", now=start,
        )  # fmt: skip
        tasks = {t.action_id: t.key for t in waiting.tasks}
        submit(db, definitions, tasks["phq-9.start"], dict.fromkeys(PHQ9_ITEMS, 1),
               patient="p2", now=start)  # fmt: skip
        standard = switch_track(db, definitions, waiting.key, "standard", by="Practitioner/x")
        again = next(t.key for t in standard.tasks if t.action_id == "phq-9.start")
        submit(db, definitions, again, {**dict.fromkeys(PHQ9_ITEMS, 1), "phq9-1": 2},
               patient="p2", now=start + timedelta(days=10))  # fmt: skip
    with Session(engine) as db:
        overview = patient_overview(
            db, definitions, fhir_base="https://ehr.example/fhir", patient="p2"
        )
    [phq9] = [s for s in overview.scores if s.link_id == "phq9-total"]
    assert [p.value for p in phq9.points] == [9.0, 10.0]
    assert phq9.change.verdict == "no-change"


def test_the_practice_list_puts_safety_alerts_then_the_stuck_on_top(engine, definitions):
    base = "https://ehr.example/fhir"
    now = datetime(2026, 10, 1, 12, tzinfo=UTC)
    long_ago = now - STUCK_AFTER - timedelta(days=1)
    with Session(engine) as db, db.begin():

        def enrolled(patient, when, track="waiting-list"):
            row = enrol(db, definitions, fhir_base=base, patient=patient, track=track,
                        practice=PRACTICE, now=when, today=when.date())  # fmt: skip
            return row, {t.action_id: t.key for t in row.tasks}

        enrolled("quiet", long_ago)  # nothing done for 15 days, a module ready: stuck
        _, busy = enrolled("busy", long_ago)
        change_task(db, definitions, busy["understanding-burnout"], "completed",
                    actor="client", now=now - timedelta(days=3))  # fmt: skip
        paused, _ = enrolled("paused", long_ago)
        pause(db, paused.key, by="Practitioner/x", now=long_ago)
        enrolled("new", now - timedelta(days=1))
        _, worried = enrolled("worried", now - timedelta(days=2))
        submit(db, definitions, worried["weekly-checkin.weekly"],
               {"checkin-sleep": 2, "checkin-safety": 2}, patient="worried",
               now=now - timedelta(hours=5),
               extra={"checkin-energy": [{"valueInteger": 2}],
                      "checkin-tension": [{"valueInteger": 8}]})  # fmt: skip
        enrolled("also-quiet", long_ago)
        other = enrol(
            db, definitions, fhir_base=base, patient="other-practice", track="waiting-list",
            practice="Organization/other", now=long_ago,
        )  # fmt: skip
        assert other.practice == "Organization/other"
    with Session(engine) as db:
        overview = practice_overview(db, definitions, fhir_base=base, practice=PRACTICE, now=now)
        worried_view = patient_overview(db, definitions, fhir_base=base, patient="worried")
    patients = [r.patient for r in overview.rows]
    assert patients[0] == "worried" and overview.rows[0].safety_alerts == 1
    assert overview.rows[0].alert_since == now - timedelta(hours=5)
    assert {r.patient for r in overview.stuck} == {"quiet", "also-quiet"}
    assert set(patients[1:3]) == {"quiet", "also-quiet"}
    assert "other-practice" not in patients
    by_patient = {r.patient: r for r in overview.rows}
    assert not by_patient["busy"].stuck and not by_patient["paused"].stuck
    assert not by_patient["new"].stuck
    assert by_patient["busy"].last_activity == now - timedelta(days=3)
    [alert] = worried_view.safety_alerts
    assert alert.text == "Wekelijkse check-in" and alert.response is not None
    answers = {a.question: a.answer for a in worried_view.responses[0].answers}
    assert "Vaak" in answers.values() and "Slecht" in answers.values()
    assert overview.dead_letters == ()


def test_the_page_shows_scores_with_bands_the_reliable_change_and_the_answers(app, sandbox):
    state, definitions = (
        app.extensions["fhir_burnout"],
        app.extensions["fhir_burnout"]["definitions"],
    )
    start = datetime.now(UTC) - timedelta(days=40)
    with Session(state["engine"]) as db, db.begin():
        waiting = enrol(
            db, definitions, fhir_base=sandbox.fhir_base, patient="pat-17",
            track="waiting-list", author="Practitioner/prac-1", now=start,
        )  # fmt: skip
        first = next(t.key for t in waiting.tasks if t.action_id == "phq-9.start")
        submit(db, definitions, first, dict.fromkeys(PHQ9_ITEMS, 3), patient="pat-17",
               now=start)  # fmt: skip
        standard = switch_track(db, definitions, waiting.key, "standard", by="Practitioner/prac-1")
        again = next(t.key for t in standard.tasks if t.action_id == "phq-9.start")
        submit(db, definitions, again, dict.fromkeys(PHQ9_ITEMS, 0), patient="pat-17",
               now=datetime.now(UTC))  # fmt: skip
    client = as_practitioner(app, sandbox, "pat-17")
    status, page = page_of(client)
    assert status == 200
    assert '<h3 id="score-1">Stemming (PHQ-9)</h3>' in page
    # The band of each point, as clinicians name it (not the client's "Zware klachten").
    assert "<td>27</td><td>ernstig (20\N{EN DASH}27)</td>" in page
    assert "<td>0</td><td>minimaal (0\N{EN DASH}4)</td>" in page
    assert "Zware klachten" not in page
    # 27 -> 0: past the 6 points of reliable change, and from a case (>= 10) to none.
    assert "Betrouwbaar verbeterd" in page and "-27 punten; betrouwbaar vanaf 6" in page
    assert "Betrouwbaar hersteld" in page
    assert "Bijna elke dag" in page and "Helemaal niet" in page  # the answers, readable
    assert page.index("Helemaal niet") < page.index("Bijna elke dag")  # newest first
    english = client.get("/practitioner", headers={"Accept-Language": "en"})
    text = english.get_data(as_text=True)
    assert "Client overview" in text and "Reliably improved" in text
    assert "Reliably recovered" in text and "Nearly every day" in text


def test_a_finished_phase_asks_the_care_professional_to_open_the_next(engine, definitions):
    base = "https://ehr.example/fhir"
    with Session(engine) as db, db.begin():
        enrolment = enrol(db, definitions, fhir_base=base, patient="p3", track="standard")
        modules = [t.key for t in enrolment.tasks if t.kind == "module" and t.phase == "recovery"]
        for key in modules:
            change_task(db, definitions, key, "completed", actor="client")
        key = enrolment.key
    with Session(engine) as db:
        overview = patient_overview(db, definitions, fhir_base=base, patient="p3")
    [request] = overview.unlock_requests
    assert (request.phase, request.text) == ("insight", "Fase 2: Inzicht in patronen")
    [current] = overview.current
    assert len(current.modules_done) == len(modules) and current.next_phase.code == "insight"
    with Session(engine) as db, db.begin():
        unlock_phase(db, definitions, key, "insight", by="Practitioner/x")
    with Session(engine) as db:
        overview = patient_overview(db, definitions, fhir_base=base, patient="p3")
    assert overview.unlock_requests == ()
    assert overview.current[0].phases[1].unlocked_by == "Practitioner/x"


def test_the_referrer_hears_when_treatment_starts_and_after_care_is_offered_at_the_end(
    app, sandbox, worker, fhir
):
    state = app.extensions["fhir_burnout"]
    patient = "pat-24"
    request = fhir.create(  # a referral of its own: its write keys derive from the identifier
        {
            "resourceType": "ServiceRequest",
            "identifier": [
                {"system": "https://verwijs.example/referral", "value": uuid.uuid4().hex}
            ],
            "status": "active",
            "intent": "order",
            "subject": {"reference": f"Patient/{patient}"},
            "performer": [{"reference": PRACTICE}],
        }
    )
    with Session(state["engine"]) as db, db.begin():
        intake = take_referral(db, state["definitions"], fhir_base=sandbox.fhir_base,
                               service_request=request, seen_by="reconciliation",
                               practice=PRACTICE, triage=False)  # fmt: skip
        waiting, key = intake.referral.enrolment_key, intake.referral.key
    deliver_all(worker)
    assert server(fhir, status_key(key))["status"] == "accepted"
    client = as_practitioner(app, sandbox, patient)
    assert (
        post(client, f"/practitioner/enrolments/{waiting}/switch", track="standard").status_code
        == 303
    )
    deliver_all(worker)
    started = server(fhir, status_key(key))
    assert started["status"] == "in-progress"
    assert started["statusReason"] == {"text": "Behandeling gestart"}
    [(_, _, _), (treatment, _, _)] = enrolments(app, patient)[-2:]
    done = post(
        client, f"/practitioner/enrolments/{treatment}/finish", confirm="yes", reason="other"
    )
    assert done.status_code == 303
    _, page = page_of(client)
    assert "Nazorg is nu mogelijk" in page
    assert '<option value="after-care">' in page  # offered first, after treatment
    assert page.index('<option value="after-care">') < page.index('<option value="standard">')
    deliver_all(worker)
    assert server(fhir, status_key(key))["status"] == "completed"
    assert queue_status(state["engine"]).dead == 0
