"""The client's first page as one next step and a week, "Mijn programma" (the map and the
exercise library), read-only while paused and after the end, and the confirmation after a
save, a send and "klaar" (issue 20, points 2 and 3), in a real browser at phone and desktop
size, with axe-core on WCAG 2.2 A/AA."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from fhir_burnout.demo import enrol_demo_patients
from fhir_burnout.workflow import (
    EnrolmentRow,
    change_task,
    client_programme,
    enrol,
    finish,
    pause,
    unlock_phase,
)

from .conftest import PHONE, SCREENSHOTS, WCAG22, accessible, home_url

DESKTOP = {"width": 1280, "height": 900}
#: A client halfway whose questionnaires wait, some of them twice (see ``seeded``).
HALFWAY = "pat-12"
#: "maandag 14 december": a weekday, a day and a month, in Dutch.
DUTCH_DAY = re.compile(
    r"(maandag|dinsdag|woensdag|donderdag|vrijdag|zaterdag|zondag) \d{1,2} "
    r"(januari|februari|maart|april|mei|juni|juli|augustus|september|oktober|november|december)"
)


@pytest.fixture(scope="module")
def seeded(live):
    """The demo's enrolments (``fhir-burnout demo``), and pat-12 halfway as the demo had
    Daan before he had a history: phase 1's five modules done, phase 2 opened, no
    questionnaire answered, so several Tasks of one questionnaire are open at once (the
    first page listed PHQ-9, GAD-7 and the tension log twice)."""
    state = live.app.extensions["fhir_burnout"]
    enrol_demo_patients(state["engine"], state["definitions"], live.info.fhir_base)
    with Session(state["engine"]) as db, db.begin():
        enrolment = enrol(
            db, state["definitions"], fhir_base=live.info.fhir_base, patient=HALFWAY,
            track="standard", author="Practitioner/prac-1",
        )  # fmt: skip
        modules = [t for t in enrolment.tasks if t.kind == "module"]
        for _ in range(5):
            ready = next(t for t in modules if t.status == "ready")
            change_task(
                db, state["definitions"], ready.key, "completed", actor="client",
                who=f"Patient/{HALFWAY}",
            )  # fmt: skip
        unlock_phase(db, state["definitions"], enrolment.key, "insight", by="Practitioner/prac-1")
    return live


#: A client who fell behind (``behind``): many things open, some of them for days.
BEHIND = "pat-13"
#: Words that shame a client who is behind: never on their pages.
SHAMING = re.compile(r"achterstand|te laat|vergeten|verlopen|overdue|behind|too late|late\b", re.I)


@pytest.fixture(scope="module")
def behind(seeded):
    """pat-13 enrolled three weeks ago and behind: phase 1's modules done today and phase 2
    opened, but none of its questionnaires sent (the weekly check-in of week 1 and those
    for the start of phase 1 open for three weeks), the energy diary open for ten days,
    the tension log since today."""
    state = seeded.app.extensions["fhir_burnout"]
    start = datetime.now(UTC) - timedelta(weeks=3)
    with Session(state["engine"]) as db, db.begin():
        enrolment = enrol(
            db, state["definitions"], fhir_base=seeded.info.fhir_base, patient=BEHIND,
            track="standard", author="Practitioner/prac-1", now=start,
        )  # fmt: skip
        for _ in range(5):
            ready = next(t for t in enrolment.tasks if t.kind == "module" and t.status == "ready")
            change_task(
                db, state["definitions"], ready.key, "completed", actor="client",
                who=f"Patient/{BEHIND}",
            )  # fmt: skip
        unlock_phase(db, state["definitions"], enrolment.key, "insight", by="Practitioner/prac-1")
        for task in enrolment.tasks:
            if "/Questionnaire/energy-diary" in task.definition:
                task.ready_from = date.today() - timedelta(days=10)
    return seeded


@pytest.fixture
def desktop(browser):
    # bypass_csp only lets the test inject axe-core; the app's own policy stays in force.
    context = browser.new_context(locale="nl-NL", viewport=DESKTOP, bypass_csp=True)
    page = context.new_page()
    yield page
    context.close()


def launch(live, page, patient):
    page.goto(f"{live.info.launcher}?app=fhir-burnout&patient={patient}")
    page.wait_for_url(home_url(live.app_url))


def enrolment_of(live, patient):
    with Session(live.app.extensions["fhir_burnout"]["engine"]) as db:
        return db.scalar(select(EnrolmentRow.key).where(EnrolmentRow.patient == patient))


def shot(page, name):
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.mark.parametrize("size", ["phone", "desktop"])
def week_titles(page):
    return [t.strip() for t in page.locator(".fb-week__title").all_inner_texts()]


@pytest.mark.parametrize(
    ("locale", "more", "everything", "waiting"),
    [
        ("nl-NL", "Er staan nog 4 andere dingen voor je klaar.", "Bekijk alles in Mijn programma",
         "Dit staat voor je klaar"),
        ("en-GB", "There are 4 more things waiting for you.", "See everything in My programme",
         "Waiting for you"),
    ],
)  # fmt: skip
def test_a_client_who_is_behind_sees_three_things_this_week_and_the_rest_one_tap_away(
    behind, browser, locale, more, everything, waiting
):
    context = browser.new_context(locale=locale, viewport=PHONE, bypass_csp=True)
    page = context.new_page()
    launch(behind, page, BEHIND)
    main = page.locator("main")
    # The one next step stays on top: the programme moves on.
    step = main.locator(".fb-next-step")
    expect(step).to_have_count(1)
    week = main.locator(".fb-week")
    assert step.bounding_box()["y"] < week.bounding_box()["y"]
    # Then three things, the most important first: the questionnaires whose moment has
    # passed (the care professional reads them), oldest first; no homework among them.
    shown = week_titles(page)
    english = locale.startswith("en")
    assert shown == (
        ["Weekly check-in", "Mood (PHQ-9)", "Anxiety and worry (GAD-7)"]
        if english
        else ["Wekelijkse check-in", "Stemming (PHQ-9)", "Angst en piekeren (GAD-7)"]
    ), shown
    expect(week).to_contain_text(more)
    assert week.bounding_box()["height"] < PHONE["height"] * 0.75, "a short list, not a pile"
    assert not SHAMING.search(main.inner_text()), SHAMING.search(main.inner_text())
    accessible(page, f"home-behind-{locale}", WCAG22, screenshot=f"home-behind-{locale}-phone.png")

    # One tap: everything, in the same order, each a tap away.
    week.get_by_role("link", name=everything).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "My programme" if english else "Mijn programma"
    )
    waiting_list = page.locator(".fb-waiting")
    expect(waiting_list.get_by_role("heading")).to_have_text(waiting)
    expect(waiting_list).to_be_in_viewport()
    titles = [t.strip() for t in waiting_list.locator(".fb-waiting__title").all_inner_texts()]
    with Session(behind.app.extensions["fhir_burnout"]["engine"]) as db:
        [found] = client_programme(
            db, behind.app.extensions["fhir_burnout"]["definitions"],
            fhir_base=behind.info.fhir_base, patient=BEHIND, lang=locale[:2],
        ).maps  # fmt: skip
    assert titles == [found.next_step.title, *(t.title for t in found.this_week)]
    assert titles[1:4] == shown
    assert len(titles) == 1 + 3 + 4
    for title in titles:
        expect(waiting_list.get_by_role("link", name=title, exact=True)).to_have_count(1)
    # Homework comes after the questionnaires: the energy diary, open longer, first.
    homework = (
        ["Energy diary", "Tension log"] if english else ["Energiedagboek", "Spanningsdagboek"]
    )
    assert titles[-2:] == homework, titles
    assert not SHAMING.search(page.locator("main").inner_text())
    accessible(
        page, f"programme-behind-{locale}", WCAG22,
        screenshot=f"programme-behind-{locale}-phone.png",
    )  # fmt: skip
    context.close()


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_home_shows_one_next_step_and_each_questionnaire_once(seeded, request, size):
    page = request.getfixturevalue(size)
    launch(seeded, page, HALFWAY)
    main = page.locator("main")
    step = main.locator(".fb-next-step")
    expect(step).to_have_count(1)
    # The programme moves on: the next module, with how long it takes and why.
    expect(step.get_by_role("link")).to_have_text("Perfectionisme")
    expect(step).to_contain_text("ongeveer 30 minuten")
    expect(step).to_contain_text("Dit hoort bij fase 2: Inzicht in patronen")
    # This week: the first three, the questionnaires for the start of phase 1 (its moment
    # has passed), each with when, how long and why; the rest on Mijn programma.
    week = main.locator(".fb-week__item")
    titles = week_titles(page)
    assert titles == ["Stemming (PHQ-9)", "Angst en piekeren (GAD-7)", "Welbevinden (WHO-5)"]
    phq = week.filter(has_text="Stemming (PHQ-9)")
    expect(phq).to_contain_text("Voor het begin van fase 1")  # the earliest of the two
    expect(phq).to_contain_text("ongeveer 3 minuten")
    assert DUTCH_DAY.search(phq.inner_text()), phq.inner_text()
    expect(main.locator(".fb-week")).to_contain_text("Er staan nog 4 andere dingen voor je klaar.")
    expect(page.get_by_role("navigation", name="Jouw pagina's")).to_be_visible()
    accessible(page, f"home-{size}", WCAG22)
    shot(page, f"home-{size}")
    # Everything, each questionnaire once: PHQ-9, GAD-7, WHO-5 and the tension log are open
    # twice; the second time comes back once the first is sent, and the page says so.
    page.get_by_role("link", name="Bekijk alles in Mijn programma").click()
    waiting = page.locator(".fb-waiting")
    everything = [t.strip() for t in waiting.locator(".fb-waiting__title").all_inner_texts()]
    assert everything[0] == "Perfectionisme" and everything[1:4] == titles
    assert len(everything) == len(set(everything)), f"duplicates: {everything}"
    for title in ("Stemming (PHQ-9)", "Angst en piekeren (GAD-7)", "Spanningsdagboek"):
        expect(waiting.get_by_role("link", name=title, exact=True)).to_have_count(1)
    expect(waiting.locator(".fb-week__item", has_text="Spanningsdagboek")).to_contain_text(
        "Huiswerk bij Signalen van je lichaam"
    )
    expect(waiting.get_by_text("komen later nog een keer terug")).to_be_visible()


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_the_map_shows_a_client_halfway_and_a_finished_module_can_be_reread(seeded, request, size):
    page = request.getfixturevalue(size)
    launch(seeded, page, "pat-04")
    page.get_by_role("navigation", name="Jouw pagina's").get_by_role(
        "link", name="Mijn programma"
    ).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Mijn programma")
    phases = page.locator(".fb-map__phase")
    expect(phases).to_have_count(3)  # the phases in order
    expect(phases.nth(0).locator("h3")).to_contain_text("Fase 1")
    expect(phases.nth(2).locator("h3")).to_contain_text("Fase 3")

    def state(title):
        return page.locator(".fb-module", has_text=title).locator(".fb-state").inner_text()

    assert state("Wat is burn-out?") == "klaar"
    assert state("Ritme en zelfzorg") == "klaar"
    opened = state("Perfectionisme") == "bezig"  # the phone run below opens it
    assert opened or state("Perfectionisme") == "te doen"
    assert state("Oververantwoordelijkheid") == "nog niet open"
    assert state("Terugval voorkomen") == "nog niet open"
    # Not open yet: no link; open or done: a link to (re)read it.
    expect(page.get_by_role("link", name="Oververantwoordelijkheid")).to_have_count(0)
    library = page.locator(".fb-library")
    expect(library.get_by_role("link", name="De bodyscan")).to_be_visible()
    # Its exercises join the library once the module is opened.
    expect(library.get_by_role("link", name="Goed genoeg")).to_have_count(int(opened))
    accessible(page, f"programme-{size}", WCAG22)
    shot(page, f"programme-{size}")

    page.get_by_role("link", name="Wat is burn-out?").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Wat is burn-out?")
    expect(page.get_by_text("Deze module heb je gedaan.")).to_be_visible()
    # Opening the next module makes it "bezig" on the map.
    page.goto(f"{seeded.app_url}/programme")
    page.locator(".fb-map__phases").get_by_role("link", name="Perfectionisme").click()
    page.goto(f"{seeded.app_url}/programme")
    assert state("Perfectionisme") == "bezig"
    expect(library.get_by_role("link", name="Goed genoeg")).to_be_visible()


def test_an_exercise_is_done_again_from_the_library(seeded, phone):
    page = phone
    launch(seeded, page, "pat-04")
    page.goto(f"{seeded.app_url}/programme")
    page.locator(".fb-library").get_by_role("link", name="Rustig ademen").click()
    expect(page.get_by_role("heading", name="Oefening: Rustig ademen")).to_be_visible()
    page.get_by_label("Hoe gespannen voelde je je vóór de oefening?").fill("7")
    page.get_by_label("En hoe gespannen voel je je nu?").fill("4")
    page.get_by_role("button", name="Bewaren").click()
    # Back on the module, which was done long ago: the look back is kept all the same.
    expect(page.get_by_role("status").first).to_have_text(
        "Dank je. Je antwoorden na de oefening zijn bewaard."
    )
    expect(page.get_by_text("Deze module heb je gedaan.")).to_be_visible()


def test_paused_and_after_the_end_the_programme_stays_readable(seeded, phone):
    page = phone
    state = seeded.app.extensions["fhir_burnout"]
    key = enrolment_of(seeded, "pat-01")
    with Session(state["engine"]) as db, db.begin():
        pause(db, key, by="Practitioner/prac-1")
    launch(seeded, page, "pat-01")
    expect(page.locator(".fb-next-step")).to_have_count(0)  # nothing is asked meanwhile
    page.goto(f"{seeded.app_url}/programme")
    expect(page.get_by_text("Je programma staat even stil.")).to_be_visible()
    assert page.locator(".fb-module", has_text="Wat is burn-out?").inner_text().endswith("klaar")
    page.locator(".fb-library").get_by_role("link", name="Mijn signalen").click()
    expect(page.get_by_role("button", name="Bewaren")).to_be_visible()  # a look back: yes
    shot(page, "programme-paused-phone")
    page.goto(f"{seeded.app_url}/programme")
    page.get_by_role("link", name="Signalen van je lichaam").click()  # open, not started
    expect(page.get_by_role("button", name="Klaar met deze module")).to_have_count(0)
    expect(page.get_by_text("Je programma staat even stil.")).to_be_visible()

    with Session(state["engine"]) as db, db.begin():
        finish(db, key, by="Practitioner/prac-1")
    page.goto(f"{seeded.app_url}/")
    expect(page.get_by_text("Je programma is afgesloten.")).to_be_visible()
    expect(page.locator(".fb-week")).to_have_count(0)
    page.goto(f"{seeded.app_url}/programme")
    expect(page.get_by_text("Huiswerk en vragenlijsten versturen kan niet meer.")).to_be_visible()
    expect(page.locator(".fb-module", has_text="Wat is burn-out?")).to_contain_text("klaar")
    expect(page.locator(".fb-module", has_text="Signalen van je lichaam")).to_contain_text(
        "niet afgerond"
    )
    accessible(page, "programme-ended-phone", WCAG22)
    shot(page, "programme-ended-phone")
    page.get_by_role("link", name="Wat is burn-out?").click()  # reread after the end
    expect(page.get_by_role("heading", level=1)).to_have_text("Wat is burn-out?")
    page.goto(f"{seeded.app_url}/programme")
    page.locator(".fb-library").get_by_role("link", name="Mijn signalen").click()
    expect(page.get_by_role("heading", name="Oefening: Mijn signalen")).to_be_visible()
    expect(page.get_by_role("button", name="Bewaren")).to_have_count(0)  # nothing is sent
    expect(page.get_by_text("Je programma is afgesloten.")).to_be_visible()


def test_save_send_and_klaar_are_confirmed_on_the_next_page(seeded, phone):
    state = seeded.app.extensions["fhir_burnout"]
    with Session(state["engine"]) as db, db.begin():
        enrol(
            db, state["definitions"], fhir_base=seeded.info.fhir_base, patient="pat-10",
            track="waiting-list", author="Practitioner/prac-1",
        )  # fmt: skip
    page = phone
    launch(seeded, page, "pat-10")
    expect(page.get_by_role("status")).to_have_count(0)  # nothing done yet: nothing said
    page.locator(".fb-next-step").get_by_role("link", name="Wat is burn-out?").click()
    while page.get_by_role("link", name="Verder", exact=True).count():  # to its last screen
        page.get_by_role("link", name="Verder", exact=True).click()
    page.get_by_role("button", name="Klaar met deze module").click()
    page.wait_for_url(home_url(seeded.app_url))
    expect(page.get_by_role("status")).to_have_text(
        "Module afgerond. Je kunt hem altijd teruglezen in Mijn programma."
    )
    page.get_by_role("link", name="Welbevinden (WHO-5)").click()
    questions = page.locator("fieldset.question")
    questions.nth(0).locator("input").nth(1).check()
    page.get_by_role("button", name="Opslaan, later verder").click()
    page.wait_for_url(home_url(seeded.app_url))
    expect(page.get_by_role("status")).to_have_text(
        "Je antwoorden zijn bewaard. Je kunt later verder."
    )
    draft = page.locator(".fb-week__item", has_text="Welbevinden (WHO-5)")
    expect(draft).to_contain_text("concept bewaard")
    shot(page, "home-confirmation-phone")
    page.reload()
    expect(page.get_by_role("status")).to_have_count(0)  # said once
    page.get_by_role("link", name="Welbevinden (WHO-5)").click()
    for n in range(5):
        questions.nth(n).locator("input").nth(1).check()
    page.get_by_role("button", name="Versturen").click()
    page.wait_for_url(home_url(seeded.app_url))
    # On the waiting list the practice reads it: no care professional of their own yet.
    expect(page.get_by_role("status")).to_have_text(
        "Verstuurd. De praktijk kan je antwoorden nu zien."
    )
    expect(page.get_by_role("link", name="Welbevinden (WHO-5)")).to_have_count(0)
    accessible(page, "home-after-send", WCAG22)


def test_the_week_keeps_the_earliest_of_each_questionnaire_for_later(seeded):
    state = seeded.app.extensions["fhir_burnout"]
    with Session(state["engine"]) as db:
        found = client_programme(
            db, state["definitions"], fhir_base=seeded.info.fhir_base, patient=HALFWAY
        )
    [halfway] = found.maps
    week = [t for t in halfway.this_week if t.kind != "module"]
    definitions = [t.definition for t in week]
    assert len(definitions) == len(set(definitions))
    phq = next(t for t in week if "/phq-9" in t.definition)
    assert (phq.moment.kind, phq.moment.number) == ("phase-start", 1)
    # Two each of PHQ-9, GAD-7, WHO-5 and the tension log open: one of each waits for later.
    assert halfway.later == 4
