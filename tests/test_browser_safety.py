"""A worrying answer in a real browser, on a phone: crisis help first, then the practice's
own promise; a waiting-list client reads the practice's name, not a behandelaar. axe-core
on the page, and a screenshot for review."""

from __future__ import annotations

from playwright.sync_api import expect
from sqlalchemy.orm import Session

from fhir_burnout.workflow import enrol

from .conftest import accessible, home_url


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
