"""Every safety signal is one Task for a named owner in the EHR, with the answer or score
that raised it and when; the client reads the practice's own promise. Through the client's
pages, on SQLite and PostgreSQL, delivered by the worker to the sandbox EHR."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fhir_burnout.fhir import FhirClient
from fhir_burnout.questionnaire import safety_signals
from fhir_burnout.settings import SafetyPromise
from fhir_burnout.sync import KEY_SYSTEM, OutboxEntry, Worker, queue_status
from fhir_burnout.web import create_app
from fhir_burnout.workflow import TaskRow, enrol, finish, submit_response

from .conftest import SAFETY_OWNER, app_settings, hidden_fields, with_ehr
from .launches import launch
from .outbox_load import worker_token_source
from .smart_flow import sign_in_at_ehr

PRACTICE = "Organization/practice-1"
PRACTITIONER = "Practitioner/prac-1"
DATA = Path(__file__).resolve().parent / "data"
NOT_AT_ALL, SEVERAL, NEARLY_EVERY_DAY = "Helemaal niet", "Verscheidene dagen", "Bijna elke dag"


@pytest.fixture
def app(sandbox, tmp_path, database_url):
    settings = app_settings(sandbox.fhir_base, tmp_path, database_url=database_url)
    app = create_app(with_ehr(settings, worker_client_id="fhir-burnout-worker", practice=PRACTICE))
    yield app
    app.extensions["fhir_burnout"]["engine"].dispose()


@pytest.fixture
def deliver(app, sandbox):
    client = FhirClient(sandbox.fhir_base, token_source=worker_token_source(sandbox))
    worker = Worker(app.extensions["fhir_burnout"]["engine"], lambda base: client, owner="s1")

    def run():
        while worker.run_once():
            pass
        assert queue_status(app.extensions["fhir_burnout"]["engine"]).dead == 0

    yield run
    client.close()


def enrolled(app, patient, track):
    """A waiting-list client taken in from a referral (no care professional of their own)
    or a client their care professional enrolled in treatment; the enrolment's key."""
    state = app.extensions["fhir_burnout"]
    author = None if track == "waiting-list" else PRACTITIONER
    with Session(state["engine"]) as db, db.begin():
        enrolment = enrol(
            db, state["definitions"], fhir_base=state["settings"].ehrs[0].fhir_base,
            patient=patient, track=track, author=author, practice=PRACTICE,
        )  # fmt: skip
        return enrolment.key


def measure(app, enrolment, questionnaire):
    """The key of the enrolment's open Task for ``questionnaire``."""
    with Session(app.extensions["fhir_burnout"]["engine"]) as db:
        return db.scalars(
            select(TaskRow.key).where(
                TaskRow.enrolment_key == enrolment,
                TaskRow.definition.like(f"%/Questionnaire/{questionnaire}|%"),
                TaskRow.status == "ready",
            )
        ).first()


def signed_in(app, patient):
    client = app.test_client()
    started = client.get("/login")
    client.get(sign_in_at_ehr(started.headers["Location"] + f"&login_hint=Patient/{patient}"))
    return client


def fill_in(client, task, choices, default):
    """Send the form of ``task`` with the option labelled ``choices[linkId]`` (else
    ``default``) for each required choice; the answer page."""
    url = f"/task/{task}/form"
    page = client.get(url, headers={"Accept-Language": "nl"}).get_data(as_text=True)
    form = hidden_fields(page)
    for link in dict.fromkeys(re.findall(r'name="a\.([\w-]+)" value="\d+"', page)):
        label = choices.get(link, default)
        if label is None:
            continue
        pattern = rf'name="a\.{re.escape(link)}" value="(\d+)"[^>]*> <span>{re.escape(label)}<'
        if found := re.search(pattern, page):  # an optional question with other options
            form[f"a.{link}"] = found[1]
    for link in re.findall(r'name="a\.([\w-]+)" (?:type="number"|inputmode="numeric")', page):
        form[f"a.{link}"] = "5"
    answer = client.post(
        url, data={**form, "action": "submit"}, headers={"Accept-Language": "nl"},
        follow_redirects=True,
    )  # fmt: skip
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return answer.get_data(as_text=True), form


def signal_tasks(app, enrolment):
    with Session(app.extensions["fhir_burnout"]["engine"]) as db:
        return db.scalars(
            select(TaskRow).where(
                TaskRow.enrolment_key == enrolment,
                TaskRow.kind == "practitioner",
                TaskRow.action_id.like("safety:%"),
            )
        ).all()


def in_the_ehr(fhir, enrolment):
    """The EHR's safety Tasks based on the enrolment's CarePlan."""
    [careplan] = fhir.search("CarePlan", {"identifier": f"{KEY_SYSTEM}|{enrolment}"})
    tasks = fhir.search("Task", {"based-on": f"CarePlan/{careplan['id']}"})
    return [
        t for t in tasks if t.get("code", {}).get("text", "").startswith(("Veilig", "Signaal"))
    ]


def assert_one_task(fhir, app, enrolment, *, owner, priority, evidence, patient, since):
    [local] = signal_tasks(app, enrolment)
    [task] = in_the_ehr(fhir, enrolment)
    assert task["identifier"][0]["value"] == local.key
    assert task["owner"] == {"reference": owner}
    assert task["priority"] == priority and task["status"] == "requested"
    assert task["for"] == {"reference": f"Patient/{patient}"}
    assert [i["valueString"] for i in task["input"]] == [evidence]
    assert task["focus"]["reference"].startswith("QuestionnaireResponse/")
    assert task["reasonReference"] == task["focus"]
    authored = datetime.fromisoformat(task["authoredOn"])
    assert since - timedelta(seconds=1) <= authored <= datetime.now(UTC)
    assert "fhir-burnout" in task["description"] and evidence in task["description"]
    return task


CASES = [
    # (patient, track, questionnaire, choices, default, rule priority, evidence)
    ("pat-05", "waiting-list", "phq-9", {"phq9-9": SEVERAL}, NOT_AT_ALL, "urgent", SEVERAL),
    ("pat-06", "standard", "phq-9", {"phq9-9": NOT_AT_ALL}, NEARLY_EVERY_DAY, "routine", "24"),
    ("pat-07", "standard", "gad-7", {}, NEARLY_EVERY_DAY, "routine", "21"),
    ("pat-08", "waiting-list", "who-5", {}, "Op geen enkel moment", "routine", "0"),
    ("pat-09", "waiting-list", "weekly-checkin", {"checkin-safety": "Vaak",
     "checkin-sleep": "Slecht"}, None, "urgent", "Vaak"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("patient", "track", "questionnaire", "choices", "default", "priority", "evidence"), CASES
)
def test_each_kind_of_signal_is_one_task_for_the_right_owner_in_the_ehr(
    app, fhir, deliver, patient, track, questionnaire, choices, default, priority, evidence
):
    enrolment = enrolled(app, patient, track)
    task = measure(app, enrolment, questionnaire)
    client = signed_in(app, patient)
    since = datetime.now(UTC).replace(microsecond=0)
    page, form = fill_in(client, task, choices, default)
    # Crisis help first, then who reads it and when, as the practice promised.
    main = page.split("<main", 1)[1].split("</main>", 1)[0]
    assert main.index("0800-0113") < main.index("op werkdagen binnen één werkdag")
    assert "niet dag en nacht bekeken" in main and "112" in main
    who = "De praktijk" if track == "waiting-list" else "Je behandelaar"
    assert who in main
    if track == "waiting-list":
        assert "behandelaar" not in main
    if priority == "routine":  # gentle: no alarm
        assert 'role="alert"' not in main and "Dank je wel voor het invullen" in main
    # Sent again (a double click, the back button): still one signal, one Task.
    client.post(f"/task/{task}/form", data={**form, "action": "submit"})
    deliver()
    owner = SAFETY_OWNER if track == "waiting-list" else PRACTITIONER
    expected = {"owner": owner, "priority": priority, "evidence": evidence, "patient": patient}
    assert_one_task(fhir, app, enrolment, since=since, **expected)
    # A delivery whose answer was lost is sent again: the EHR still has one Task.
    with Session(app.extensions["fhir_burnout"]["engine"]) as db, db.begin():
        db.execute(update(OutboxEntry).values(state="pending", next_attempt_at=since))
    deliver()
    assert_one_task(fhir, app, enrolment, since=since, **expected)


def test_a_reliable_deterioration_since_the_last_time_is_a_routine_task(app, fhir, deliver):
    patient = "pat-14"
    state = app.extensions["fhir_burnout"]
    first = enrolled(app, patient, "waiting-list")
    client = signed_in(app, patient)
    fill_in(
        client, measure(app, first, "phq-9"), {"phq9-1": SEVERAL, "phq9-2": SEVERAL}, NOT_AT_ALL
    )  # fmt: skip  -- total 2
    with Session(state["engine"]) as db, db.begin():
        finish(db, first, by=PRACTITIONER)
    later = enrolled(app, patient, "standard")
    since = datetime.now(UTC).replace(microsecond=0)
    choices = {f"phq9-{n}": "Meer dan de helft van de dagen" for n in range(1, 8)}
    page, _ = fill_in(client, measure(app, later, "phq-9"), choices, NOT_AT_ALL)  # total 14
    assert "Je behandelaar kijkt op werkdagen binnen één werkdag" in page
    deliver()
    assert signal_tasks(app, first) == []
    task = assert_one_task(
        fhir, app, later, owner=PRACTITIONER, priority="routine", evidence="2 -> 14",
        patient=patient, since=since,
    )  # fmt: skip
    assert "betrouwbaar verslechterd" in task["description"]


def test_hl7s_published_phq9_raises_one_urgent_task_in_the_ehr(app, fhir, deliver):
    """A PHQ-9 that is not ours: HL7's SDC example, with its own example answers (item 9:
    "Several days"), kept as the response of a client's PHQ-9 Task."""
    patient = "pat-15"
    state = app.extensions["fhir_burnout"]
    questionnaire = json.loads((DATA / "hl7-sdc-questionnaire-PHQ9.json").read_text())
    response = json.loads((DATA / "hl7-sdc-questionnaireresponse-PHQ9.json").read_text())
    response.pop("id")
    response["subject"] = response["author"] = {"reference": f"Patient/{patient}"}
    signals = safety_signals(state["safety_rules"], questionnaire, response)
    enrolment = enrolled(app, patient, "waiting-list")
    since = datetime.now(UTC).replace(microsecond=0)
    with Session(state["engine"]) as db, db.begin():
        submit_response(
            db, state["definitions"], measure(app, enrolment, "phq-9"), response,
            who=f"Patient/{patient}", signals=signals,
            safety_owner=state["settings"].safety_owner(state["settings"].ehrs[0].fhir_base),
        )  # fmt: skip
    deliver()
    task = assert_one_task(
        fhir, app, enrolment, owner=SAFETY_OWNER, priority="urgent", evidence="Several days",
        patient=patient, since=since,
    )  # fmt: skip
    assert "H1/T1/Q9" in task["input"][0]["type"]["text"]


def test_the_care_professional_sees_urgent_signals_first_then_routine_ones(app, sandbox):
    patient = "pat-16"
    enrolment = enrolled(app, patient, "standard")
    client = signed_in(app, patient)
    fill_in(client, measure(app, enrolment, "gad-7"), {}, NEARLY_EVERY_DAY)  # routine
    checkin = {"checkin-safety": "Vaak", "checkin-sleep": "Slecht"}
    fill_in(client, measure(app, enrolment, "weekly-checkin"), checkin, None)  # urgent
    professional = app.test_client()
    launch(professional, sandbox, patient=patient, practitioner="prac-1")
    page = professional.get("/practitioner", headers={"Accept-Language": "nl"})
    text = page.get_data(as_text=True)
    urgent = text.index("Dringend:")
    routine = text.index("Routine:")
    assert urgent < routine
    assert "bekijk het vóór of bij het volgende contact" in text[routine:]
    assert "neem vandaag contact op" in text[urgent:routine]
    practice = professional.get("/practice", headers={"Accept-Language": "nl"})
    listed = practice.get_data(as_text=True)
    assert "Dringend: Cliënt" in listed and "veiligheidssignaal sinds" in listed


@pytest.mark.parametrize(
    ("lang", "track", "expected"),
    [
        ("nl", "waiting-list", "Praktijk De Linde leest je antwoord elke dinsdag en vrijdag"),
        ("en", "waiting-list", "Praktijk De Linde reads your answer every Tuesday and Friday"),
        ("nl", "standard", "Je behandelaar leest je antwoord elke dinsdag en vrijdag"),
        ("en", "standard", "Your care professional reads your answer every Tuesday and Friday"),
    ],
)
def test_the_client_reads_the_promise_the_practice_configured(
    sandbox, tmp_path, lang, track, expected
):
    settings = dataclasses.replace(
        app_settings(sandbox.fhir_base, tmp_path),
        safety_promise=SafetyPromise(nl="elke dinsdag en vrijdag", en="every Tuesday and Friday"),
        practice_name="Praktijk De Linde",
    )
    app = create_app(settings)
    try:
        patient = "pat-17"
        enrolment = enrolled(app, patient, track)
        client = signed_in(app, patient)
        task = measure(app, enrolment, "weekly-checkin")
        url = f"/task/{task}/form"
        page = client.get(url, headers={"Accept-Language": lang}).get_data(as_text=True)
        token = hidden_fields(page)
        often = re.search(
            r'name="a\.checkin-safety" value="(\d+)"[^>]*> <span>(Vaak|Often)<', page
        )
        bad = re.search(r'name="a\.checkin-sleep" value="(\d+)"[^>]*> <span>(Slecht|Badly)', page)
        form = {**token, "a.checkin-safety": often[1], "a.checkin-sleep": bad[1],
                "a.checkin-energy": "2", "a.checkin-tension": "8", "action": "submit"}  # fmt: skip
        shown = client.post(
            url, data=form, headers={"Accept-Language": lang}, follow_redirects=True
        )
        main = shown.get_data(as_text=True).split("<main", 1)[1]
        assert shown.status_code == 200 and expected in main
        assert main.index("0800-0113") < main.index(expected)
        assert "op werkdagen" not in main and "working day" not in main
    finally:
        app.extensions["fhir_burnout"]["engine"].dispose()
