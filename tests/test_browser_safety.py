"""Safety signals in a real browser, on a phone: crisis help first, then the practice's
own promise; a waiting-list client reads the practice's name, not a behandelaar; a severe
band and a reliable deterioration give a calm page and one routine Task in the EHR.
axe-core on the pages, and screenshots for review."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from fhir_burnout.fhir import FhirClient
from fhir_burnout.sync import Worker
from fhir_burnout.workflow import enrol, finish

from .conftest import accessible, home_url
from .outbox_load import worker_token_source

PRACTITIONER = "Practitioner/prac-1"


def test_a_waiting_list_client_with_a_worrying_answer_reads_help_and_the_promise(live, phone):
    state = live.app.extensions["fhir_burnout"]
    with Session(state["engine"]) as db, db.begin():
        enrol(
            db, state["definitions"], fhir_base=live.info.fhir_base, patient="pat-18",
            track="waiting-list", practice="Organization/practice-1",
        )  # fmt: skip
    page = phone
    page.goto(f"{live.info.launcher}?app=fhir-burnout&patient=pat-18")
    page.wait_for_url(home_url(live.app_url))
    page.get_by_role("link", name="Stemming (PHQ-9)").click()
    questions = page.locator("fieldset.question")
    for n in range(8):
        questions.nth(n).locator("input").nth(0).check()  # "Helemaal niet"
    questions.nth(8).get_by_label("Verscheidene dagen").check()  # item 9
    page.get_by_role("button", name="Versturen").click()
    main = page.locator("main")
    expect(page.get_by_role("heading", level=1)).to_have_text("Fijn dat je het laat weten")
    text = main.inner_text()
    promise = "De praktijk leest je antwoord op werkdagen binnen één werkdag"
    assert text.index("0800-0113") < text.index(promise)
    assert "niet dag en nacht bekeken" in text and "behandelaar" not in text
    assert main.locator('a[href="tel:08000113"]').is_visible()
    assert main.locator('a[href="tel:112"]').is_visible()
    accessible(page, "safety-waiting-list")


@pytest.fixture(scope="module")
def worker(live):
    client = FhirClient(live.info.fhir_base, token_source=worker_token_source(live.info))
    engine = live.app.extensions["fhir_burnout"]["engine"]
    yield Worker(engine, lambda base: client, owner="browser-safety")
    client.close()


def signal_tasks_in_the_ehr(live, worker, patient):
    """The safety-signal Tasks the EHR holds for ``patient``, after every write arrived."""
    while worker.run_once():
        pass
    with FhirClient(live.info.fhir_base, token_source=worker_token_source(live.info)) as fhir:
        tasks = fhir.search("Task", {"patient": f"Patient/{patient}"})
    # A signal's Task has the response that raised it as its reason.
    reason = "QuestionnaireResponse/"
    return [
        t for t in tasks if t.get("reasonReference", {}).get("reference", "").startswith(reason)
    ]


def enrolled(live, patient, track, author=PRACTITIONER):
    state = live.app.extensions["fhir_burnout"]
    with Session(state["engine"]) as db, db.begin():
        return enrol(
            db, state["definitions"], fhir_base=live.info.fhir_base, patient=patient,
            track=track, author=author, practice="Organization/practice-1",
        ).key  # fmt: skip


def answer_all(page, link, labels):
    """Open the questionnaire ``link`` from the first page and pick ``labels[n]`` (else the
    last label) for question n; then send."""
    page.goto(f"{page.url.split('?')[0].rsplit('/task', 1)[0]}/")
    page.get_by_role("link", name=link).click()
    questions = page.locator("fieldset.question")
    for n in range(questions.count()):
        label = labels[n] if n < len(labels) else labels[-1]
        option = questions.nth(n).get_by_label(label, exact=True)
        if option.count():
            option.check()
    page.get_by_role("button", name="Versturen").click()


def test_a_severe_band_gives_a_calm_page_and_one_routine_task_for_the_practitioner(
    live, phone, worker
):
    """GAD-7 at 21 (severe) in Chromium: the client reads a calm page with crisis help and
    the practice's promise; the EHR gets one routine Task for the care professional who
    enrolled them, with the score."""
    enrolled(live, "pat-21", "standard")
    page = phone
    page.goto(f"{live.info.launcher}?app=fhir-burnout&patient=pat-21")
    page.wait_for_url(home_url(live.app_url))
    answer_all(page, "Angst en piekeren (GAD-7)", ["Bijna elke dag"])
    expect(page.get_by_role("heading", level=1)).to_have_text("Dank je wel voor het invullen")
    main = page.locator("main")
    assert main.locator('a[href="tel:08000113"]').is_visible()
    assert "op werkdagen binnen één werkdag" in main.inner_text()
    [task] = signal_tasks_in_the_ehr(live, worker, "pat-21")
    assert task["priority"] == "routine" and task["owner"] == {"reference": PRACTITIONER}
    assert [i["valueString"] for i in task["input"]] == ["21"]
    accessible(page, "safety-routine")


def test_a_reliable_deterioration_in_the_browser_is_one_routine_task(live, phone, worker):
    """PHQ-9 at 0 on the waiting list, then at 14 in treatment: a reliable deterioration,
    one routine Task with "0 -> 14"; the first, harmless PHQ-9 raised nothing."""
    first = enrolled(live, "pat-22", "waiting-list", author=None)
    page = phone
    page.goto(f"{live.info.launcher}?app=fhir-burnout&patient=pat-22")
    page.wait_for_url(home_url(live.app_url))
    answer_all(page, "Stemming (PHQ-9)", ["Helemaal niet"])
    page.wait_for_url(home_url(live.app_url))
    assert signal_tasks_in_the_ehr(live, worker, "pat-22") == []
    state = live.app.extensions["fhir_burnout"]
    with Session(state["engine"]) as db, db.begin():
        finish(db, first, by=PRACTITIONER)
    enrolled(live, "pat-22", "standard")
    answer_all(
        page, "Stemming (PHQ-9)", ["Meer dan de helft van de dagen"] * 7 + ["Helemaal niet"]
    )
    expect(page.get_by_role("heading", level=1)).to_have_text("Dank je wel voor het invullen")
    [task] = signal_tasks_in_the_ehr(live, worker, "pat-22")
    assert task["priority"] == "routine" and task["owner"] == {"reference": PRACTITIONER}
    assert [i["valueString"] for i in task["input"]] == ["0 -> 14"]
