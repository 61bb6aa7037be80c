"""The client's new pages in English (issue 20: "the same care in English"): a client whose
browser asks for English reads home, Mijn programma, a module's screens, a guided exercise
and their progress in English only, with English numbers, axe-clean at WCAG 2.2 AA on a
phone. The client is the demo's Daan (pat-04), seven weeks in."""

from __future__ import annotations

import re
from datetime import date

from playwright.sync_api import expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from fhir_burnout.demo import enrol_demo_patients
from fhir_burnout.workflow import EnrolmentRow, TaskRow

from .conftest import PHONE, WCAG22, accessible, home_url

#: Words of the Dutch pages' own interface that an English page must not show.
DUTCH = re.compile(
    r"\b(Vandaag|Mijn programma|Hoe het gaat|Deze week|Nu te doen|Verder|Stap \d)\b"
)


def tasks_of(live, patient):
    """The client's Tasks by action id."""
    with Session(live.app.extensions["fhir_burnout"]["engine"]) as db:
        enrolment = db.scalar(select(EnrolmentRow.key).where(EnrolmentRow.patient == patient))
        rows = db.scalars(select(TaskRow).where(TaskRow.enrolment_key == enrolment))
        return {t.action_id: t.key for t in rows}


def english(page, name):
    """The page is English: its language, no Dutch interface words, axe-clean."""
    assert page.locator("html").get_attribute("lang") == "en"
    main = page.locator("main").inner_text()
    assert not DUTCH.search(main), DUTCH.search(main)
    accessible(page, name, WCAG22, screenshot=f"{name}.png")


def test_a_client_whose_browser_asks_for_english_reads_the_new_pages_in_english(live, browser):
    state = live.app.extensions["fhir_burnout"]
    enrol_demo_patients(
        state["engine"], state["definitions"], live.info.fhir_base, today=date.today()
    )
    tasks = tasks_of(live, "pat-04")
    context = browser.new_context(locale="en-GB", viewport=PHONE, bypass_csp=True)
    page = context.new_page()
    page.goto(f"{live.info.launcher}?app=fhir-burnout&patient=pat-04&portal=1")
    page.wait_for_url(home_url(live.app_url))

    nav = page.get_by_role("navigation", name=re.compile("your pages", re.I))
    for label in ("Today", "My programme", "How you are doing"):
        expect(nav.get_by_role("link", name=label)).to_be_visible()
    expect(page.locator("main")).to_contain_text("To do now")
    expect(page.locator("main")).to_contain_text("This week")
    english(page, "home-en-phone")

    page.goto(f"{live.app_url}/programme")
    expect(page.get_by_role("heading", level=1)).to_have_text("My programme")
    english(page, "programme-en-phone")

    page.goto(f"{live.app_url}/task/{tasks['body-signals']}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your body's signals")
    steps = int(page.locator("#module-step").inner_text().rsplit(" ", 1)[1])
    expect(page.locator("#module-step")).to_have_text(f"Step 1 of {steps}")
    english(page, "module-en-phone")
    for n in range(2, steps + 1):
        page.get_by_role("link", name="Next", exact=True).click()
        expect(page.locator("#module-step")).to_have_text(f"Step {n} of {steps}")

    page.goto(f"{live.app_url}/task/{tasks['body-signals']}/exercise/1")
    expect(page.get_by_role("button", name="Start the exercise")).to_be_visible()
    english(page, "exercise-en-phone")

    page.goto(f"{live.app_url}/progress")
    expect(page.get_by_role("heading", level=1)).to_have_text("How you are doing")
    main = page.locator("main").inner_text()
    assert re.search(r"\b\d+\.\d\b", main), "English numbers have a decimal point"
    assert not re.search(r"\b\d+,\d\b", main), "no Dutch decimal comma on an English page"
    english(page, "progress-en-phone")
    context.close()
