"""A client's journey in a real browser, on a phone: launch, read a module, do a timed
exercise and look back on it, fill in a questionnaire with a reload in the middle, send it,
see the score, switch to English; and
axe-core (WCAG 2.1 A and AA rules) on every page type on the way."""

from __future__ import annotations

from playwright.sync_api import expect
from sqlalchemy.orm import Session

from fhir_burnout.workflow import change_task, enrol

from .conftest import accessible, home_url


def test_a_client_goes_through_the_first_steps_of_the_programme(live, phone):
    state = live.app.extensions["fhir_burnout"]
    with Session(state["engine"]) as db, db.begin():
        enrol(
            db, state["definitions"], fhir_base=live.info.fhir_base, patient="pat-14",
            track="waiting-list", author="Practitioner/prac-1",
        )  # fmt: skip
    page = phone
    page.goto(f"{live.info.launcher}?app=fhir-burnout&patient=pat-14")
    page.wait_for_url(home_url(live.app_url))
    assert "Je zit nu in" in page.content()
    accessible(page, "home")

    page.get_by_role("link", name="Wat is burn-out?").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Wat is burn-out?"
    accessible(page, "module")
    # A few short screens, Verder to the last one, where the module is done.
    steps = int(page.locator("#module-step").inner_text().rsplit(" ", 1)[1])
    for n in range(2, steps + 1):
        page.get_by_role("link", name="Verder", exact=True).click()
        expect(page.locator("#module-step")).to_have_text(f"Stap {n} van {steps}")
    page.get_by_role("button", name="Klaar met deze module").click()
    page.wait_for_url(home_url(live.app_url))
    expect(page.locator("main")).to_contain_text("1 van de 5 modules gedaan.")

    # The next module has a timed exercise: the body scan, guided step by step.
    page.get_by_role("link", name="Signalen van je lichaam").click()
    page.get_by_role("link", name="oefening 1").click()
    expect(page.get_by_role("timer")).to_have_text("10:00")  # filled in by the script
    page.get_by_role("button", name="Start de oefening").click()
    page.wait_for_function("document.querySelector('.timer-clock').textContent !== '10:00'")
    assert page.locator(".timer-status").inner_text() == "De oefening loopt."
    page.get_by_role("button", name="Pauze").click()
    assert page.locator(".timer-status").inner_text() == "De oefening staat op pauze."
    accessible(page, "exercise")
    # Afterwards a short look back: tension before and after, kept with the module.
    page.get_by_label("Hoe gespannen voelde je je vóór de oefening?").fill("7")
    page.get_by_label("En hoe gespannen voel je je nu?").fill("4")
    page.get_by_role("button", name="Bewaren").click()
    expect(page.get_by_role("status")).to_have_text(
        "Dank je. Je antwoorden na de oefening zijn bewaard."
    )
    page.goto(f"{live.app_url}/")

    page.get_by_role("link", name="Welbevinden (WHO-5)").click()
    questions = page.locator("fieldset.question")
    assert questions.count() == 5
    questions.nth(0).locator("input").nth(1).check()
    questions.nth(1).locator("input").nth(1).check()
    page.get_by_role("button", name="Opslaan, later verder").click()
    page.wait_for_url(home_url(live.app_url))
    page.go_back()
    page.reload()  # a closed tab, a lost connection: what was saved is there
    assert questions.nth(0).locator("input").nth(1).is_checked()
    assert questions.nth(1).locator("input").nth(1).is_checked()
    page.get_by_role("button", name="Versturen").click()  # three still missing
    assert page.get_by_role("alert").first.is_visible()
    accessible(page, "questionnaire-with-errors")
    for n in range(2, 5):
        questions.nth(n).locator("input").nth(1).check()
    page.get_by_role("button", name="Versturen").click()
    page.wait_for_url(home_url(live.app_url))

    page.get_by_role("link", name="Bekijk hoe het gaat").click()
    assert page.locator("svg[role=img]").count() == 2 and page.locator("table").count() == 2
    accessible(page, "progress")
    page.get_by_role("button", name="English").click()
    assert page.get_by_role("heading", level=1).inner_text() == "How you are doing"
    assert "Call 113" in page.locator(".crisis").inner_text()
    accessible(page, "progress-english")


def test_the_timer_says_the_minutes_left_with_the_plural_of_each_count(live, phone):
    state = live.app.extensions["fhir_burnout"]
    definitions = state["definitions"]
    how = {
        "fhir_base": live.info.fhir_base,
        "track": "waiting-list",
        "author": "Practitioner/prac-1",
    }
    with Session(state["engine"]) as db, db.begin():  # the body scan's module open
        tasks = {t.action_id: t.key for t in enrol(db, definitions, patient="pat-15", **how).tasks}
        change_task(db, definitions, tasks["understanding-burnout"], "completed", actor="client")
    page = phone
    page.clock.install()  # the page's setInterval on a clock the test moves on
    page.goto(f"{live.info.launcher}?app=fhir-burnout&patient=pat-15")
    page.wait_for_url(home_url(live.app_url))
    page.goto(f"{live.app_url}/task/{tasks['body-signals']}/exercise/1")
    page.get_by_role("button", name="Start de oefening").click()
    status = page.locator(".timer-status")
    page.clock.run_for(60_000)
    expect(status).to_have_text("Nog 9 minuten.")
    page.clock.run_for(8 * 60_000)
    expect(status).to_have_text("Nog 1 minuut.")  # not "Nog 1 minuten."


def test_a_message_page_is_accessible_too(live, phone):
    phone.goto(f"{live.app_url}/task/no-such-task")
    assert phone.get_by_role("alert").is_visible()
    accessible(phone, "not-found")


def test_questions_that_do_not_apply_hide_as_the_client_answers(live, phone):
    state = live.app.extensions["fhir_burnout"]
    with Session(state["engine"]) as db, db.begin():
        enrolment = enrol(
            db, state["definitions"], fhir_base=live.info.fhir_base, patient="pat-16",
            track="standard", author="Practitioner/prac-1",
        )  # fmt: skip
        cbi = next(t.key for t in enrolment.tasks if t.action_id == "cbi.start")
    page = phone
    page.goto(f"{live.info.launcher}?app=fhir-burnout&patient=pat-16")
    page.wait_for_url(home_url(live.app_url))
    page.goto(f"{live.app_url}/task/{cbi}/form")
    clients_part = page.get_by_text("Deel 3: burn-out door het werken met cliënten")
    assert not clients_part.is_visible()  # no answer yet to "do you work with clients?"
    question = page.locator("fieldset.question", has_text="Werk je met cliënten")
    question.get_by_label("Ja").check()
    assert clients_part.is_visible()
    question.get_by_label("Nee").check()
    assert not clients_part.is_visible()
    accessible(page, "questionnaire-enable-when")


def test_keyboard_only_and_text_at_twice_the_size(live, phone):
    state = live.app.extensions["fhir_burnout"]
    with Session(state["engine"]) as db, db.begin():
        enrol(
            db, state["definitions"], fhir_base=live.info.fhir_base, patient="pat-17",
            track="waiting-list", author="Practitioner/prac-1",
        )  # fmt: skip
    page = phone
    page.goto(f"{live.info.launcher}?app=fhir-burnout&patient=pat-17")
    page.wait_for_url(home_url(live.app_url))
    # Keyboard only: tab to the next module and open it, tab to "finished" and press it.
    for _ in range(20):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent.trim()") == "Wat is burn-out?":
            break
    page.keyboard.press("Enter")
    page.wait_for_url("**/task/*?ctx=*")
    module = page.url.split("?", 1)[0]
    # Screen after screen with Verder, then Klaar on the last one.
    pressed = ""
    for _ in range(10):
        for _ in range(40):
            page.keyboard.press("Tab")
            pressed = page.evaluate("document.activeElement.textContent.trim()")
            if pressed in ("Verder", "Klaar met deze module"):
                break
        before = page.locator("#module-step").inner_text()
        page.keyboard.press("Enter")
        if pressed == "Klaar met deze module":
            break
        expect(page.locator("#module-step")).not_to_have_text(before)
    page.wait_for_url(home_url(live.app_url))
    expect(page.locator("main")).to_contain_text("1 van de 5 modules gedaan.")
    # Text at 200 %: everything still fits the phone's width (no sideways scrolling).
    for path in ("/", "/progress", module.removeprefix(live.app_url)):
        page.goto(f"{live.app_url}{path}")
        page.add_style_tag(content="html { font-size: 200% !important; }")
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{path} scrolls sideways at 200 % text"
