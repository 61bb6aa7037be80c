"""Referral triage in a real browser (Debian's Chromium via Playwright), against the app on a
real port and a sandbox EHR of this module's own: the referrals waiting on top of
/practice, one referral beside the exclusion criteria, accepted with one button and
another declined with a reason, a stale second decision refused, and what the referrer's
Tasks say in the EHR afterwards."""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fhir_burnout.fhir import FhirClient
from fhir_burnout.referral import accept_referral, status_key, take_referral
from fhir_burnout.sync import KEY_SYSTEM, Worker, queue_status
from fhir_burnout.workflow import EnrolmentRow

from .conftest import PHONE, SCREENSHOTS, accessible, home_url, serving, with_ehr
from .outbox_load import worker_token_source

PRACTICE = "Organization/practice-1"


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """The app on a real port, writing for practice-1 (triage: the default), and a sandbox
    that trusts it."""

    def writing_for_the_practice(settings):
        return with_ehr(
            settings,
            worker_client_id="fhir-burnout-worker",
            practice=PRACTICE,
            practice_name="Praktijk De Linde",
            practice_phone="030 123 45 67",
        )

    with serving(tmp_path_factory, "live-triage", writing_for_the_practice) as running:
        yield running


@pytest.fixture(scope="module")
def fhir(live):
    with FhirClient(live.info.fhir_base, token_source=worker_token_source(live.info)) as client:
        yield client


@pytest.fixture
def desk(browser):
    """The care professional's browser (phone-sized: the pages must work there too)."""
    context = browser.new_context(locale="nl-NL", viewport=PHONE, bypass_csp=True)
    yield context
    context.close()


def deliver_all(live, fhir):
    engine = live.app.extensions["fhir_burnout"]["engine"]
    worker = Worker(engine, lambda base: fhir, owner="browser-triage")
    while worker.run_once():
        pass
    assert queue_status(engine).dead == 0


def refer(live, fhir, patient, reason, **changes):
    """A referral by the GP in the EHR, taken in by the app (as the poll would)."""
    request = fhir.create(
        {
            "resourceType": "ServiceRequest",
            "identifier": [
                {"system": "https://verwijs.example/referral", "value": uuid.uuid4().hex}
            ],
            "status": "active",
            "intent": "order",
            "subject": {"reference": f"Patient/{patient}"},
            "authoredOn": "2026-12-01",
            "requester": {"reference": "Practitioner/prac-4", "display": "Dr. P. de Huisarts"},
            "performer": [{"reference": PRACTICE}],
            "reasonCode": [{"text": reason}],
            "note": [{"text": "Graag beoordelen of zelfhulp past."}],
            **changes,
        }
    )
    state = live.app.extensions["fhir_burnout"]
    with Session(state["engine"]) as db, db.begin():
        intake = take_referral(
            db, state["definitions"], fhir_base=live.info.fhir_base, service_request=request,
            seen_by="reconciliation", practice=PRACTICE,
        )  # fmt: skip
        return intake.referral.key


def referrer_task(fhir, key):
    [task] = fhir.search("Task", {"identifier": f"{KEY_SYSTEM}|{status_key(key)}"})
    return task


def test_a_care_professional_accepts_one_referral_and_declines_another(live, fhir, desk):
    accepted = refer(live, fhir, "pat-10", "Uitgeput, slaapt slecht, drie maanden thuis")
    declined = refer(live, fhir, "pat-13", "Somber, denkt soms aan de dood", priority="urgent")
    deliver_all(live, fhir)
    assert referrer_task(fhir, accepted)["status"] == "received"

    page = desk.new_page()
    page.goto(f"{live.info.launcher}?app=fhir-burnout&practitioner=prac-1&patient=pat-01")
    page.wait_for_url(home_url(live.app_url))
    page.get_by_role("link", name="Praktijkoverzicht").click()
    page.wait_for_url(home_url(live.app_url, "/practice"))
    # Waiting for triage comes first, with how long each referral waits.
    first = page.locator("main h2").first
    expect(first).to_have_text("Aanmeldingen om te beoordelen (2)")
    waiting = page.locator(".triage-referral")
    expect(waiting).to_have_count(2)
    expect(waiting.first).to_contain_text("wacht sinds vandaag")
    expect(waiting.first).to_contain_text("pat-13")  # asked urgently: on top
    expect(waiting.first).to_contain_text("spoed gevraagd")
    accessible(page, "triage-list")

    # A decision without the form's CSRF token (from another site, say) changes nothing.
    forged = page.request.post(f"{live.app_url}/practice/referrals/{accepted}/accept",
                               form={"csrf_token": "not-the-token"})  # fmt: skip
    assert forged.status == 400 and "Het formulier was verlopen" in forged.text()
    page.reload()
    expect(page.locator(".triage-referral")).to_have_count(2)

    # One referral: what it says, the exclusion criteria with their source, the question.
    waiting.filter(has_text="pat-10").get_by_role("link").click()
    main = page.locator("main")
    expect(main).to_contain_text("Aangemeld, nog niet beoordeeld")
    expect(main).to_contain_text("Uitgeput, slaapt slecht, drie maanden thuis")
    expect(main).to_contain_text("Dr. P. de Huisarts")
    expect(main).to_contain_text("Graag beoordelen of zelfhulp past.")
    for criterion in ("Acute suïcidaliteit", "Psychotische klachten", "Ernstige depressie",
                      "Een actieve crisis", "Verslaving op de voorgrond"):  # fmt: skip
        expect(main).to_contain_text(criterion)
    expect(main).to_contain_text("NHG-Standaard Overspanning en burn-out")
    expect(page.get_by_role("heading", name="Past zelfhulp bij deze persoon")).to_be_visible()
    expect(page.locator(".crisis")).to_have_count(0)  # clients' crisis help: not here (issue 21)
    accessible(page, "triage-referral")
    page.get_by_role("button", name="English").click()
    expect(main).to_contain_text("Acute suicidality")
    expect(page.get_by_role("heading", name="Does self-help suit this person")).to_be_visible()
    page.get_by_role("button", name="Nederlands").click()
    page.get_by_role("button", name="Aannemen en uitnodigen").click()
    page.wait_for_url(home_url(live.app_url, "/practice"))
    expect(page.get_by_role("status")).to_contain_text("De aanmelding is aangenomen")
    expect(page.locator(".triage-referral")).to_have_count(1)

    # The other one is open in a second tab too (a colleague, or a forgotten tab).
    page.locator(".triage-referral").get_by_role("link").click()
    stale = desk.new_page()
    stale.goto(page.url)
    # "Another reason" without an explanation: nothing changes, and the page says why.
    page.get_by_label("Andere reden (zie toelichting)").check()
    page.get_by_role("button", name="Afwijzen").click()
    expect(page.get_by_role("alert")).to_contain_text("hoort een toelichting")
    page.get_by_label("Acuut risico").check()
    page.get_by_label("Toelichting voor de verwijzer").fill(
        "Wij bellen vandaag met de huisarts over een crisisbeoordeling."
    )
    page.get_by_role("button", name="Afwijzen").click()
    page.wait_for_url(home_url(live.app_url, "/practice"))
    expect(page.get_by_role("status")).to_contain_text("De aanmelding is afgewezen")
    expect(page.locator(".triage")).to_have_count(0)  # nobody waits any more

    # The stale tab's decision comes too late: it changes nothing and says so.
    stale.get_by_role("button", name="Aannemen en uitnodigen").click()
    expect(stale.get_by_role("alert")).to_have_text(
        "Deze aanmelding was al beoordeeld. Er is niets veranderd."
    )
    expect(stale.locator("main")).to_contain_text("afgewezen: Acuut risico")
    expect(stale.get_by_role("button", name="Aannemen en uitnodigen")).to_have_count(0)
    stale.screenshot(path=str(SCREENSHOTS / "triage-decided.png"), full_page=True)

    deliver_all(live, fhir)
    task = referrer_task(fhir, accepted)
    assert task["status"] == "accepted" and task["output"][0]["valueReference"]["reference"]
    task = referrer_task(fhir, declined)
    assert task["status"] == "rejected"
    assert task["statusReason"]["coding"][0]["code"] == "acute-risk"
    assert "crisisbeoordeling" in task["statusReason"]["text"]
    with Session(live.app.extensions["fhir_burnout"]["engine"]) as db:
        enrolled = db.scalars(select(EnrolmentRow.patient)).all()
        assert enrolled == ["pat-10"]
        assert db.scalar(select(func.count()).select_from(EnrolmentRow)) == 1


def test_someone_outside_the_practice_cannot_open_a_referral(live, fhir, browser):
    key = refer(live, fhir, "pat-16", "Overspannen")
    context = browser.new_context(locale="nl-NL")
    page = context.new_page()
    page.goto(f"{live.info.launcher}?app=fhir-burnout&patient=pat-16")  # the client themselves
    page.wait_for_url(home_url(live.app_url))
    response = page.goto(f"{live.app_url}/practice/referrals/{key}")
    assert response.status == 403
    expect(page.locator("main")).to_contain_text("alleen voor behandelaars")
    context.close()


def test_a_waiting_list_client_reads_whom_to_call_while_waiting(live, fhir, phone):
    """No care professional yet: the practice by name, and 113, 112, GP and huisartsenpost,
    on the first page and on a module's page."""
    key = refer(live, fhir, "pat-19", "Overspannen, wacht op behandeling")
    state = live.app.extensions["fhir_burnout"]
    with Session(state["engine"]) as db, db.begin():
        accept_referral(db, state["definitions"], key, fhir_base=live.info.fhir_base,
                        practice=PRACTICE, by="Practitioner/prac-1")  # fmt: skip
    page = phone
    page.goto(f"{live.info.launcher}?app=fhir-burnout&patient=pat-19")
    page.wait_for_url(home_url(live.app_url))
    help_ = page.locator(".waiting-help")
    expect(help_).to_contain_text("Je staat op de wachtlijst bij Praktijk De Linde")
    expect(help_).to_contain_text("nog geen eigen behandelaar")
    for said in ("113 Zelfmoordpreventie", "0800-0113", "112", "huisartsenpost",
                 "Bel Praktijk De Linde (030 123 45 67) op werkdagen"):  # fmt: skip
        expect(help_).to_contain_text(said)
    expect(help_.get_by_role("link", name="0800-0113")).to_have_attribute("href", "tel:08000113")
    accessible(page, "waiting-list-home")
    page.locator(".programme a[href^='/task/']:not([href$='/form'])").first.click()
    expect(page.locator("article.module")).to_be_visible()
    expect(page.locator(".waiting-help")).to_contain_text("Praktijk De Linde")
    page.get_by_role("button", name="English").click()
    expect(page.locator(".waiting-help")).to_contain_text(
        "You are on the waiting list at Praktijk De Linde"
    )
    expect(page.locator(".waiting-help")).to_contain_text("out-of-hours GP service")
