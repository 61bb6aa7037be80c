"""Bad input in a real browser: tampered fields, a forged form token, an answer to a question
that does not apply, a post that is far too large, the same form sent twice. Each gets a
readable message and loses nothing that was saved. Also: entries of a repeating group added
in the browser, each deciding its own follow-up question."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fhir_burnout.workflow import ResponseRow, change_task, enrol, load_draft

from .conftest import PHONE, accessible, home_url

MODULES = ("understanding-burnout", "body-signals", "tension-relaxation")


def enrolled(live, patient):
    """``patient`` in the waiting-list track with the tension log open; Task keys by action."""
    state = live.app.extensions["fhir_burnout"]
    with Session(state["engine"]) as db, db.begin():
        enrolment = enrol(
            db, state["definitions"], fhir_base=live.info.fhir_base, patient=patient,
            track="waiting-list", author="Practitioner/prac-1",
        )  # fmt: skip
        tasks = {t.action_id: t.key for t in enrolment.tasks}
        for n, module in enumerate(MODULES, 1):
            status = "in-progress" if n == len(MODULES) else "completed"
            change_task(db, state["definitions"], tasks[module], status, actor="client")
        return tasks


def launched(live, page, patient):
    page.goto(f"{live.info.launcher}?app=fhir-burnout&patient={patient}")
    page.wait_for_url(home_url(live.app_url))
    return page


def responses_to(live, task):
    with Session(live.app.extensions["fhir_burnout"]["engine"]) as db:
        return db.scalar(
            select(func.count()).select_from(ResponseRow).where(ResponseRow.task_key == task)
        )


@pytest.fixture
def no_script(browser):
    context = browser.new_context(locale="nl-NL", viewport=PHONE, java_script_enabled=False)
    yield context.new_page()
    context.close()


def test_a_tampered_answer_and_a_forged_form_token_lose_nothing(live, phone):
    tasks = enrolled(live, "pat-18")
    page = launched(live, phone, "pat-18")
    page.goto(f"{live.app_url}/task/{tasks['who-5.start']}/form")
    questions = page.locator("fieldset.question")
    questions.nth(0).locator("input").nth(2).check()
    # An option value the questionnaire does not have, as a tampered page would send it.
    questions.nth(1).locator("input").nth(0).evaluate("radio => { radio.value = '99' }")
    questions.nth(1).locator("input").nth(0).check()
    page.get_by_role("button", name="Versturen").click()
    expect(page.get_by_role("alert").first).to_contain_text("Er is nog iets niet goed")
    assert questions.nth(1).locator("p.error").is_visible()
    assert questions.nth(0).locator("input").nth(2).is_checked()  # the rest is kept
    accessible(page, "bad-input-tampered")
    # A forged form token: nothing changes, and the page says so in plain words.
    questions.nth(2).locator("input").nth(1).check()
    page.locator("form[data-questionnaire] input[name=csrf_token]").evaluate(
        "field => { field.value = 'forged' }"
    )
    page.get_by_role("button", name="Opslaan, later verder").click()
    expect(page.get_by_role("alert")).to_contain_text("Er is niets veranderd")
    page.goto(f"{live.app_url}/task/{tasks['who-5.start']}/form")
    assert questions.nth(0).locator("input").nth(2).is_checked()  # the draft from before
    with Session(live.app.extensions["fhir_burnout"]["engine"]) as db:
        assert "who5-3" not in load_draft(db, tasks["who-5.start"])  # the forged save: no
    # ... while the browser's unsent copy puts back what was typed, and says so.
    assert questions.nth(2).locator("input").nth(1).is_checked()
    expect(page.get_by_role("status")).to_contain_text("teruggezet")
    assert responses_to(live, tasks["who-5.start"]) == 0


def test_without_script_an_answer_that_does_not_apply_is_pointed_out(live, no_script):
    tasks = enrolled(live, "pat-19")
    page = launched(live, no_script, "pat-19")
    page.goto(f"{live.app_url}/task/{tasks['tension-relaxation.tension-log']}/form")
    page.get_by_label("Wanneer was het?").fill("2026-12-01T08:30")
    page.get_by_label("Hoeveel spanning voelde je?").fill("7")
    page.get_by_role("group", name="Heb je een oefening gedaan").get_by_label("Nee").check()
    after = page.get_by_label("Hoeveel spanning voelde je na de oefening?")
    after.fill("3")  # every question shows without the script
    page.get_by_role("button", name="Versturen").click()
    problem = page.locator("p.error", has_text="hoort niet bij je andere antwoorden")
    expect(problem).to_be_visible()
    expect(after).to_have_value("3")  # kept until the client decides
    expect(page.get_by_label("Wanneer was het?")).to_have_value("2026-12-01T08:30")
    after.fill("")
    page.get_by_role("button", name="Versturen").click()
    page.wait_for_url(home_url(live.app_url))
    assert responses_to(live, tasks["tension-relaxation.tension-log"]) == 1


def test_a_post_far_too_large_is_refused_and_the_saved_draft_stays(live, phone):
    tasks = enrolled(live, "pat-20")
    page = launched(live, phone, "pat-20")
    url = f"{live.app_url}/task/{tasks['tension-relaxation.tension-log']}/form"
    page.goto(url)
    situation = page.get_by_label("Wat gebeurde er op dat moment?")
    situation.fill("Een drukke vergadering")
    page.get_by_role("button", name="Opslaan, later verder").click()
    page.wait_for_url(home_url(live.app_url))
    page.goto(url)
    situation.evaluate("area => { area.value = 'x'.repeat(600 * 1024) }")
    page.get_by_role("button", name="Opslaan, later verder").click()
    expect(page.get_by_role("alert")).to_contain_text("te veel tekst in één keer")
    accessible(page, "bad-input-too-large")
    page.goto(url)
    expect(situation).to_have_value("Een drukke vergadering")


def test_the_same_form_sent_twice_is_kept_once(live, phone):
    tasks = enrolled(live, "pat-21")
    page = launched(live, phone, "pat-21")
    task = tasks["who-5.start"]
    url = f"{live.app_url}/task/{task}/form"
    # The same form open in a second tab, as it is after "back" or a restored session.
    other = page.context.new_page()
    for tab in (page, other):
        tab.goto(url)
        questions = tab.locator("fieldset.question")
        for n in range(5):
            questions.nth(n).locator("input").nth(3).check()
    page.get_by_role("button", name="Versturen").dblclick()  # an impatient double tap
    page.wait_for_url(home_url(live.app_url))
    other.get_by_role("button", name="Versturen").click()  # and the old page once more
    other.wait_for_url(home_url(live.app_url))  # no error: it was sent already
    assert responses_to(live, task) == 1
    assert "Welbevinden (WHO-5)" not in other.locator("main").inner_text()  # not due


def test_entries_are_added_in_the_browser_and_each_asks_its_own_follow_up(live, phone):
    tasks = enrolled(live, "pat-22")
    page = launched(live, phone, "pat-22")
    page.goto(f"{live.app_url}/task/{tasks['tension-relaxation.tension-log']}/form")
    first = page.locator("fieldset.entry").nth(0)
    first.get_by_label("Hoeveel spanning voelde je?").fill("8")
    first.get_by_role("group", name="Heb je een oefening gedaan").get_by_label("Ja").check()
    expect(first.get_by_label("Hoeveel spanning voelde je na de oefening?")).to_be_visible()
    page.get_by_role("button", name="Nog een toevoegen: Moment van spanning").click()
    second = page.locator("fieldset.entry").nth(1)
    expect(second).to_be_focused()  # the new entry, announced by its legend
    expect(second.locator("legend").first).to_have_text("Moment van spanning 2")
    follow_up = second.get_by_label("Hoeveel spanning voelde je na de oefening?")
    expect(follow_up).to_be_hidden()  # this moment has no exercise (yet)
    expect(first.get_by_label("Hoeveel spanning voelde je na de oefening?")).to_be_visible()
    expect(first.get_by_label("Hoeveel spanning voelde je?")).to_have_value("8")
    second.get_by_role("group", name="Heb je een oefening gedaan").get_by_label("Ja").check()
    expect(follow_up).to_be_visible()
    accessible(page, "questionnaire-entries")
    page.get_by_role("button", name="Weghalen: Moment van spanning 2").click()
    expect(page.locator("fieldset.entry")).to_have_count(1)
