"""The care professional's pages in a real browser (Debian's Chromium via Playwright), against
the app on a real port and a sandbox EHR of this module's own: a safety alert from the
client's weekly check-in on top, a write the EHR refused shown with the EHR's message, the
decisions pressed as buttons, and axe-core (WCAG 2.1 A and AA) on both pages."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from fhir_burnout.fhir import FhirClient
from fhir_burnout.sync import KEY_SYSTEM, Worker, queue_status
from fhir_burnout.web._launch import person_name
from fhir_burnout.workflow import EnrolmentRow, TaskRow, enrol, submit_response

from .conftest import PHONE, accessible, home_url, serving, with_ehr
from .outbox_load import deliver_all, worker_token_source
from .practitioners import PHQ9_ITEMS, PRACTICE, submit


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """The app on a real port, writing for practice-1, and a sandbox that trusts it."""

    def writing_for_the_practice(settings):
        return with_ehr(settings, worker_client_id="fhir-burnout-worker", practice=PRACTICE)

    with serving(tmp_path_factory, "live-practitioner", writing_for_the_practice) as running:
        yield running


@pytest.fixture
def desk(browser):
    """The care professional's browser (phone-sized: the pages must work there too)."""
    context = browser.new_context(locale="nl-NL", viewport=PHONE, bypass_csp=True)
    yield context.new_page()
    context.close()


@pytest.fixture(scope="module")
def worker(live):
    client = FhirClient(live.info.fhir_base, token_source=worker_token_source(live.info))
    engine = live.app.extensions["fhir_burnout"]["engine"]
    yield Worker(engine, lambda base: client, owner="browser-practitioner")
    client.close()


def open_as_practitioner(page, live, patient, practitioner="prac-1"):
    page.goto(
        f"{live.info.launcher}?app=fhir-burnout&practitioner={practitioner}&patient={patient}"
    )
    page.wait_for_url(home_url(live.app_url))


def fits_the_width(page):
    """No sideways scrolling: everything fits the phone's width."""
    return page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )


def enrolled(live, patient, track="standard"):
    state = live.app.extensions["fhir_burnout"]
    with Session(state["engine"]) as db, db.begin():
        enrolment = enrol(
            db, state["definitions"], fhir_base=live.info.fhir_base, patient=patient,
            track=track, author="Practitioner/prac-1", practice=PRACTICE,
        )  # fmt: skip
        return enrolment.key, {t.action_id: t.key for t in enrolment.tasks}


def test_a_safety_alert_from_the_check_in_is_on_top_of_both_pages(live, phone, desk, worker):
    _, tasks = enrolled(live, "pat-05")
    state = live.app.extensions["fhir_burnout"]
    with Session(state["engine"]) as db, db.begin():  # a score to show over time
        submit(db, state["definitions"], tasks["phq-9.start"], dict.fromkeys(PHQ9_ITEMS, 2),
               patient="pat-05", now=datetime.now(UTC))  # fmt: skip
    # The client fills in the weekly check-in on their phone and says "often".
    client = phone
    client.goto(f"{live.info.launcher}?app=fhir-burnout&patient=pat-05")
    client.wait_for_url(home_url(live.app_url))
    client.get_by_role("link", name="Wekelijkse check-in").click()
    client.get_by_label("Hoeveel energie had je deze week?").fill("2")
    client.get_by_label("Slecht", exact=True).check()
    client.get_by_label("Hoeveel spanning voelde je deze week?").fill("8")
    client.get_by_label("Vaak", exact=True).check()
    client.get_by_role("button", name="Versturen").click()
    expect(client.get_by_role("heading", level=1)).to_have_text("Fijn dat je het laat weten")

    page = desk
    open_as_practitioner(page, live, "pat-05")
    page.get_by_role("link", name="Overzicht van deze cliënt").click()
    page.wait_for_url(home_url(live.app_url, "/practitioner"))
    expect(page.locator(".banner")).to_contain_text("Cliënt: Eva van der Fictief")
    headings = page.get_by_role("heading", level=2).all_inner_texts()
    assert headings[0] == "Veiligheidssignalen"  # on top, before the programme
    alert = page.locator(".safety-alert")
    expect(alert).to_contain_text("Veiligheidssignaal in Wekelijkse check-in")
    answers = page.locator(".response").first
    expect(answers).to_contain_text("Vaak")
    expect(page.locator(".score").first).to_contain_text("Stemming (PHQ-9)")
    assert fits_the_width(page)
    accessible(page, "practitioner-with-alert")

    page.get_by_role("link", name="Praktijkoverzicht").first.click()
    page.wait_for_url(home_url(live.app_url, "/practice"))
    assert page.get_by_role("heading", level=2).first.inner_text() == "Veiligheidssignalen"
    expect(page.locator(".safety-alert")).to_contain_text("Cliënt Eva van der Fictief (pat-05)")
    first_row = page.locator("table.work-list__table tbody tr").first
    expect(first_row).to_contain_text("pat-05")
    expect(first_row.locator("td").nth(3)).to_contain_text("1, waarvan 1 dringend")
    assert fits_the_width(page)
    accessible(page, "practice-with-alert")

    # Contact taken: the alert closes, here and in the EHR.
    page.goto(f"{live.app_url}/practitioner")
    page.get_by_role("button", name="Contact gehad, afsluiten").click()
    expect(page.get_by_role("status")).to_have_text("Het veiligheidssignaal is afgesloten.")
    assert page.locator(".safety-alert").count() == 0
    deliver_all(worker)
    with Session(state["engine"]) as db:
        review = db.scalars(
            select(TaskRow)
            .join(EnrolmentRow)
            .where(TaskRow.kind == "practitioner", EnrolmentRow.patient == "pat-05")
        ).one()
    assert review.status == "completed"
    with FhirClient(live.info.fhir_base, token_source=worker_token_source(live.info)) as fhir:
        [on_server] = fhir.search("Task", {"identifier": f"{KEY_SYSTEM}|{review.key}"})
    assert on_server["status"] == "completed" and on_server["priority"] == "urgent"


def test_a_write_the_ehr_refused_is_shown_with_the_ehrs_message(live, desk, worker):
    _, tasks = enrolled(live, "pat-20", track="waiting-list")
    state = live.app.extensions["fhir_burnout"]
    with Session(state["engine"]) as db, db.begin():
        submit_response(
            db, state["definitions"], tasks["who-5.start"],
            {"resourceType": "QuestionnaireResponse", "status": "finished"},  # not a status
            who="Patient/pat-20",
        )  # fmt: skip
    deliver_all(worker)
    [(_, _, status, message)] = queue_status(state["engine"]).dead_letters
    assert status == 400 and "QuestionnaireResponse.status" in message
    page = desk
    open_as_practitioner(page, live, "pat-20")
    page.get_by_role("link", name="Praktijkoverzicht").click()
    dead = page.locator(".dead-letter")
    expect(dead).to_contain_text("(pat-20)")
    expect(dead).to_contain_text("HTTP 400")
    expect(dead.locator("code")).to_contain_text("QuestionnaireResponse.status")
    assert fits_the_width(page)
    accessible(page, "practice-with-dead-letter")


def test_pause_resume_and_unlock_are_buttons_that_work(live, desk, worker):
    page = desk
    open_as_practitioner(page, live, "pat-06")
    page.goto(f"{live.app_url}/practitioner")
    page.get_by_label("Aanmelden voor").select_option("standard")
    page.get_by_role("button", name="Aanmelden").click()
    expect(page.get_by_role("status")).to_contain_text("Aangemeld voor")
    state = live.app.extensions["fhir_burnout"]
    with Session(state["engine"]) as db:
        key = db.scalars(select(EnrolmentRow.key).where(EnrolmentRow.patient == "pat-06")).one()

    page.get_by_role("button", name="Openzetten: Fase 2: Inzicht in patronen").click()
    expect(page.get_by_role("status")).to_have_text("De fase staat open.")
    expect(page.locator(".phases").first).to_contain_text("Fase 2: Inzicht in patronen — open")
    page.get_by_role("button", name="Pauzeren").click()
    expect(page.get_by_role("status")).to_have_text("Het programma is gepauzeerd.")
    expect(page.locator(".enrolment h3").first).to_contain_text("gepauzeerd")
    deliver_all(worker)
    with FhirClient(live.info.fhir_base, token_source=worker_token_source(live.info)) as fhir:
        [careplan] = fhir.search("CarePlan", {"identifier": f"{KEY_SYSTEM}|{key}"})
        assert careplan["status"] == "on-hold"
        page.get_by_role("button", name="Hervatten").click()
        expect(page.get_by_role("status")).to_have_text("Het programma loopt weer.")
        deliver_all(worker)
        [careplan] = fhir.search("CarePlan", {"identifier": f"{KEY_SYSTEM}|{key}"})
        assert careplan["status"] == "active"
    accessible(page, "practitioner-actions")


def names(live, *patients):
    """The clients' names as the EHR has them (what the patient banner must show)."""
    with FhirClient(live.info.fhir_base, token_source=worker_token_source(live.info)) as fhir:
        return [person_name(fhir.read("Patient", p)) for p in patients]


def enrolled_tracks(live, patient):
    with Session(live.app.extensions["fhir_burnout"]["engine"]) as db:
        return db.scalars(select(EnrolmentRow.track).where(EnrolmentRow.patient == patient)).all()


def test_two_charts_in_two_tabs_each_act_on_their_own_client(live, browser):
    """Two EHR launches in one browser (two tabs, two clients): each tab's banner names its
    own client, and "Aanmelden" in each enrols that tab's client, whichever was launched
    last. A form whose client was changed is refused and changes nothing."""
    first_name, second_name = names(live, "pat-08", "pat-09")
    context = browser.new_context(locale="nl-NL", viewport=PHONE, bypass_csp=True)
    first, second = context.new_page(), context.new_page()
    open_as_practitioner(first, live, "pat-08")
    open_as_practitioner(second, live, "pat-09")  # the newest launch of this browser
    for tab, name in ((first, first_name), (second, second_name)):
        tab.get_by_role("link", name="Overzicht van deze cliënt").click()
        expect(tab.locator(".banner")).to_contain_text(name)
    # The first tab acts on the first client, although the second was launched later.
    first.get_by_label("Aanmelden voor").select_option("standard")
    first.get_by_role("button", name="Aanmelden").click()
    expect(first.get_by_role("status")).to_contain_text("Aangemeld voor")
    expect(first.locator(".banner")).to_contain_text(first_name)
    assert enrolled_tracks(live, "pat-08") == ["standard"]
    assert enrolled_tracks(live, "pat-09") == []
    second.get_by_label("Aanmelden voor").select_option("waiting-list")
    second.get_by_role("button", name="Aanmelden").click()
    expect(second.get_by_role("status")).to_contain_text("Aangemeld voor")
    assert enrolled_tracks(live, "pat-09") == ["waiting-list"]
    assert enrolled_tracks(live, "pat-08") == ["standard"]
    # A forged client id in a form (the page says pat-08; the form now names pat-09).
    first.evaluate(
        "document.querySelectorAll('input[name=patient]').forEach(i => i.value = 'pat-09')"
    )
    first.get_by_role("button", name="Pauzeren").click()
    expect(first.get_by_role("main")).to_contain_text("hoort bij een andere cliënt")
    with Session(live.app.extensions["fhir_burnout"]["engine"]) as db:
        statuses = db.scalars(select(EnrolmentRow.status).where(EnrolmentRow.patient.in_(
            ["pat-08", "pat-09"]))).all()  # fmt: skip
    assert sorted(statuses) == ["active", "active"]
    accessible(first, "wrong-client")
    context.close()


def test_a_questionnaire_filled_in_with_the_client_names_the_care_professional(live, desk, worker):
    """A care professional fills in the weekly check-in with the client during a session:
    the page says so, and the EHR gets author = the Practitioner, source = the Patient and a
    Provenance naming the Practitioner. A module's "done" stays the client's to say."""
    _, tasks = enrolled(live, "pat-10")
    page = desk
    open_as_practitioner(page, live, "pat-10")
    page.get_by_role("link", name="Wekelijkse check-in").click()
    expect(page.locator(".together")).to_contain_text("Samen met de cliënt invullen")
    page.get_by_label("Hoeveel energie had je deze week?").fill("5")
    page.get_by_label("Goed", exact=True).check()
    page.get_by_label("Hoeveel spanning voelde je deze week?").fill("4")
    page.get_by_label("Nee", exact=True).check()
    page.get_by_role("button", name="Versturen").click()
    page.wait_for_url(home_url(live.app_url))
    deliver_all(worker)
    with FhirClient(live.info.fhir_base, token_source=worker_token_source(live.info)) as fhir:
        [response] = fhir.search("QuestionnaireResponse", {"subject": "Patient/pat-10"})
        assert response["author"] == {"reference": "Practitioner/prac-1"}
        assert response["source"] == {"reference": "Patient/pat-10"}
        assert response["subject"] == {"reference": "Patient/pat-10"}
        provenances = fhir.search(
            "Provenance", {"target": f"QuestionnaireResponse/{response['id']}"}
        )
        assert [p["agent"][0]["who"]["reference"] for p in provenances] == ["Practitioner/prac-1"]
    # The overview says who entered it.
    page.get_by_role("link", name="Overzicht van deze cliënt").click()
    expect(page.locator(".response summary").first).to_contain_text("samen met de cliënt")
    # A module: the care professional may look, not mark it as read.
    page.goto(f"{live.app_url}/task/{tasks['understanding-burnout']}")
    expect(page.get_by_role("main")).to_contain_text("Alleen de cliënt kan hem afronden")
    assert page.get_by_role("button", name="Klaar met deze module").count() == 0
    state = live.app.extensions["fhir_burnout"]
    with Session(state["engine"]) as db:
        assert db.get(TaskRow, tasks["understanding-burnout"]).status == "ready"


def test_stop_needs_a_confirmation_and_a_reason_that_reaches_the_ehr(live, desk, worker):
    page = desk
    key, _ = enrolled(live, "pat-07")
    state = live.app.extensions["fhir_burnout"]
    refused_before = queue_status(state["engine"]).dead  # another test's, on purpose
    open_as_practitioner(page, live, "pat-07")
    page.goto(f"{live.app_url}/practitioner")
    expect(page.locator(".measures").first).to_contain_text(
        "Wekelijkse check-in: elke week, zolang het traject loopt"
    )
    page.get_by_role("button", name="Stoppen").click()
    # A page that asks first: nothing has changed yet.
    expect(page.get_by_role("heading", level=1)).to_contain_text("Programma stoppen")
    expect(page.locator(".end-what")).to_contain_text("De wekelijkse check-in stopt")
    expect(page.locator(".banner")).to_contain_text("pat-07")  # whose programme it is
    with Session(state["engine"]) as db:
        assert db.get(EnrolmentRow, key).status == "active"
    accessible(page, "practitioner-stop-confirm")
    assert fits_the_width(page)
    # Without a reason the browser does not send it (and the server would refuse it too).
    page.get_by_role("button", name="Ja, stop het programma").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Programma stoppen")
    with Session(state["engine"]) as db:
        assert db.get(EnrolmentRow, key).status == "active"
    page.get_by_label("Crisis of meer zorg nodig").check()
    page.get_by_label("Toelichting").fill("Opgenomen; verder in de specialistische GGZ.")
    page.get_by_role("button", name="Ja, stop het programma").click()
    expect(page.get_by_role("status")).to_have_text("Het programma is gestopt.")
    expect(page.locator(".enrolment").first).to_contain_text("Reden: Crisis of meer zorg nodig.")
    deliver_all(worker)
    with FhirClient(live.info.fhir_base, token_source=worker_token_source(live.info)) as fhir:
        [careplan] = fhir.search("CarePlan", {"identifier": f"{KEY_SYSTEM}|{key}"})
        assert careplan["status"] == "revoked"
        [reason] = [e["valueCodeableConcept"] for e in careplan["extension"]]
        assert reason["coding"][0]["code"] == "needs-more-care"
        assert reason["text"] == "Opgenomen; verder in de specialistische GGZ."
        with Session(state["engine"]) as db:
            closed = db.scalars(
                select(TaskRow.key).where(
                    TaskRow.enrolment_key == key, TaskRow.status == "cancelled"
                )
            ).all()
        assert closed
        for task_key in closed:
            [task] = fhir.search("Task", {"identifier": f"{KEY_SYSTEM}|{task_key}"})
            assert task["status"] == "cancelled"
            assert task["statusReason"]["coding"][0]["code"] == "needs-more-care"
    assert queue_status(state["engine"]).dead == refused_before
