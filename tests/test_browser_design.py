"""The look of the pages in a real browser (issue 20, points 1 and 7): the practice's
theme (name, logo, colours), questionnaires a tired person can fill in on a phone (every
choice a 44 x 44 px row with its label beside it, the description shown, optional questions
marked, no calculated score as an input, an error summary that is focused and links to its
questions), and every client page type free of WCAG 2.2 A/AA violations at phone and
desktop size. Each saves its screenshots in dist/screenshots/ (``<page>-phone.png``,
``<page>-desktop.png``)."""

from __future__ import annotations

import dataclasses

import pytest
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from fhir_burnout._theme import Theme
from fhir_burnout.workflow import enrol

from .browser_checks import tap_targets_and_rows
from .conftest import PHONE, SCREENSHOTS, WCAG22, accessible, home_url, serving

DESKTOP = {"width": 1280, "height": 900}
LOGO = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="120" height="40" viewBox="0 0 120 40">'
    '<circle cx="20" cy="20" r="16" fill="#7a3b69"/></svg>'
)


def enrolled(live, patient, track="waiting-list"):
    state = live.app.extensions["fhir_burnout"]
    with Session(state["engine"]) as db, db.begin():
        enrolment = enrol(
            db, state["definitions"], fhir_base=live.info.fhir_base, patient=patient,
            track=track, author="Practitioner/prac-1",
        )  # fmt: skip
        return {t.action_id: t.key for t in enrolment.tasks}


def launched(live, page, patient, practitioner=None):
    who = f"&practitioner={practitioner}" if practitioner else ""
    page.goto(f"{live.info.launcher}?app=fhir-burnout&patient={patient}{who}")
    page.wait_for_url(home_url(live.app_url))
    return page


def shoot(page, name):
    """``<name>-phone.png`` and ``<name>-desktop.png``: the whole page at both sizes."""
    for size, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
        page.set_viewport_size(viewport)
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{size}.png"), full_page=True)
    page.set_viewport_size(PHONE)


def accessible_at_both_sizes(page, name):
    for viewport in (PHONE, DESKTOP):
        page.set_viewport_size(viewport)
        accessible(page, name, tags=WCAG22)
    page.set_viewport_size(PHONE)


@pytest.fixture(scope="module")
def themed(tmp_path_factory):
    """The app of a practice with its own name, logo and colours."""
    logo = tmp_path_factory.mktemp("logo") / "linde.svg"
    logo.write_text(LOGO)
    theme = Theme(name="Praktijk De Linde", logo=logo, primary="#7a3b69", background="#f3f7fb")
    with serving(
        tmp_path_factory, "themed", lambda s: dataclasses.replace(s, theme=theme)
    ) as running:
        yield running


def test_the_practice_name_logo_and_colours_are_on_every_page(themed, phone):
    tasks = enrolled(themed, "pat-03")
    page = launched(themed, phone, "pat-03")
    header = page.locator("header")
    expect(header).to_contain_text("Praktijk De Linde")
    expect(header).to_contain_text("Herstellen van burn-out")  # the programme, smaller
    logo = header.locator("img.fb-brand__logo")
    assert logo.evaluate("img => img.complete && img.naturalWidth > 0")  # served, not blocked
    assert logo.bounding_box()["height"] == pytest.approx(40, abs=1)
    body = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert body == "rgb(243, 247, 251)"  # #f3f7fb
    page.goto(f"{themed.app_url}/task/{tasks['weekly-checkin.weekly']}/form")
    send = page.get_by_role("button", name="Versturen")
    assert send.evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(122, 59, 105)"
    link = page.get_by_role("link", name="Terug naar je overzicht")
    assert link.evaluate("a => getComputedStyle(a).color") == "rgb(122, 59, 105)"
    accessible(page, "theme", tags=WCAG22)
    shoot(page, "theme")


def test_a_questionnaire_on_a_phone_is_made_for_people(live, phone):
    tasks = enrolled(live, "pat-04")
    page = launched(live, phone, "pat-04")
    page.goto(f"{live.app_url}/task/{tasks['weekly-checkin.weekly']}/form")
    main = page.locator("main")
    expect(main.locator(".fb-form-intro").first).to_contain_text("Het duurt ongeveer")
    assert "verplicht" not in main.inner_text()
    expect(page.get_by_label("Wat ging er deze week goed?")).to_be_visible()
    expect(main.locator("label", has_text="Wat ging er deze week goed?")).to_contain_text(
        "(optioneel)"
    )
    assert "(optioneel)" not in main.locator("label", has_text="Hoeveel energie").inner_text()
    tap_targets_and_rows(page)
    shoot(page, "questionnaire")
    # Sent with answers missing: the summary at the top has the focus, each problem a link.
    page.get_by_label("Hoeveel energie had je deze week?").fill("4")
    page.get_by_role("button", name="Versturen").click()
    summary = page.locator(".fb-error-summary")
    expect(summary).to_be_focused()
    assert summary.get_attribute("role") == "alert"
    assert (
        summary.bounding_box()["y"] < page.locator("form[data-questionnaire]").bounding_box()["y"]
    )
    links = summary.get_by_role("link")
    assert links.count() == 3  # sleep, tension, the weekly safety question
    expect(links.first).to_contain_text("Hoe heb je deze week geslapen?")
    for n in range(links.count()):
        target = links.nth(n).get_attribute("href")[1:]
        assert page.locator(f"[id='{target}']").count() == 1, target
    links.nth(1).click()
    assert page.evaluate("location.hash") == "#a.checkin-tension"
    expect(page.get_by_label("Hoeveel spanning voelde je deze week?")).to_be_in_viewport()
    tap_targets_and_rows(page)
    accessible_at_both_sizes(page, "questionnaire-errors")
    shoot(page, "questionnaire-errors")


def test_a_calculated_score_is_never_an_input_for_the_client(live, phone):
    tasks = enrolled(live, "pat-05", track="standard")
    page = launched(live, phone, "pat-05")
    page.goto(f"{live.app_url}/task/{tasks['phq-9.start']}/form")
    main = page.locator("main")
    expect(main.locator(".fb-form-intro").first).to_contain_text("PHQ-9")
    assert "Totaalscore" not in main.inner_text()
    assert main.locator("[name='a.phq9-total'], [readonly]").count() == 0
    assert main.locator("fieldset.question").count() == 10  # nine items and the difficulty
    tap_targets_and_rows(page)
    accessible(page, "phq9", tags=WCAG22)
    shoot(page, "questionnaire-phq9")


def test_every_client_page_type_is_accessible_at_phone_and_desktop_size(live, phone):
    tasks = enrolled(live, "pat-06")
    page = launched(live, phone, "pat-06")
    pages = {
        "home": "/",
        "module": f"/task/{tasks['understanding-burnout']}",
        "progress": "/progress",
        "crisis-help": "/hulp",
    }
    for name, path in pages.items():
        page.goto(f"{live.app_url}{path}")
        help_link = page.get_by_role("link", name="Hulp nodig?")
        box = help_link.bounding_box()
        assert box["y"] < 150 and box["height"] >= 44, name  # crisis help: one tap away
        assert page.locator("aside.crisis").is_visible()
        accessible_at_both_sizes(page, name)
        shoot(page, name)


@pytest.fixture
def desktop(browser):
    # bypass_csp only lets the test inject axe-core; the app's own policy stays in force.
    context = browser.new_context(locale="nl-NL", viewport=DESKTOP, bypass_csp=True)
    yield context.new_page()
    context.close()


def test_the_care_professionals_pages_use_the_width_of_a_desktop(live, desktop, browser):
    enrolled(live, "pat-07", track="standard")
    client_page = launched(live, desktop, "pat-07", practitioner="prac-1")
    client_page.goto(f"{live.app_url}/practitioner")
    assert client_page.locator("main").bounding_box()["width"] > 900
    accessible(client_page, "practitioner-desktop", tags=WCAG22)
    shoot(client_page, "practitioner")
    client_page.set_viewport_size(DESKTOP)
    client_page.goto(f"{live.app_url}/")
    reading = client_page.locator("main").bounding_box()["width"]
    assert 600 < reading < 800  # a client's page keeps a calm reading column
    # The clients' crisis help is not beside a care professional's pages (issue 21) ...
    assert client_page.locator("aside.crisis").count() == 0
    # ... and is beside the client's own, not under their reading column.
    context = browser.new_context(locale="nl-NL", viewport=DESKTOP)
    own = launched(live, context.new_page(), "pat-07")
    reading = own.locator("main").bounding_box()["width"]
    assert 600 < reading < 800
    assert own.locator("aside.crisis").bounding_box()["x"] > reading
    context.close()
