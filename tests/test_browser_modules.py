"""A module in short screens in a real browser, on a phone and on a desktop (issue 20,
point 4): Stap n van m with Verder and Terug, the place kept after leaving and coming back,
a link to another module that works (and plain text for one the client does not have), axe
(WCAG 2.2 A/AA) clean; and a crawl of every module page of a client that finds no link of
ours answering 4xx or 5xx."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlparse

import pytest
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from fhir_burnout.workflow import TaskRow, change_task, enrol

from .conftest import PHONE, WCAG22, accessible, home_url

DESKTOP = {"width": 1280, "height": 900}


def enrolled(live, patient, track, opened=()):
    """``patient`` enrolled in ``track``, with the modules ``opened`` open (the care
    professional may open one early): the Task keys by action id."""
    state = live.app.extensions["fhir_burnout"]
    with Session(state["engine"]) as db, db.begin():
        enrolment = enrol(
            db, state["definitions"], fhir_base=live.info.fhir_base, patient=patient,
            track=track, author="Practitioner/prac-1",
        )  # fmt: skip
        tasks = {t.action_id: t.key for t in enrolment.tasks}
        for code in opened:
            change_task(db, state["definitions"], tasks[code], "ready", actor="practitioner")
    return tasks


@pytest.fixture(params=["phone", "desktop"])
def screen(browser, request):
    """A browser page at a phone's or a desktop's size (``request.param``)."""
    viewport = PHONE if request.param == "phone" else DESKTOP
    # bypass_csp only lets the test inject axe-core; the app's own policy stays in force.
    context = browser.new_context(locale="nl-NL", viewport=viewport, bypass_csp=True)
    yield context.new_page(), request.param
    context.close()


def test_a_client_reads_a_module_in_steps_and_comes_back_to_where_they_were(live, screen):
    page, size = screen
    patient = {"phone": "pat-20", "desktop": "pat-21"}[size]
    opened = ("body-signals", "tension-relaxation", "rhythm-self-care")
    tasks = enrolled(live, patient, "waiting-list", opened)
    page.goto(f"{live.info.launcher}?app=fhir-burnout&patient={patient}")
    page.wait_for_url(home_url(live.app_url))
    module = f"{live.app_url}/task/{tasks['tension-relaxation']}"
    page.goto(module)
    expect(page.get_by_role("heading", level=1)).to_have_text("Spanning loslaten")
    expect(page.locator("#module-step")).to_have_text("Stap 1 van 6")
    assert page.get_by_role("button", name="Klaar met deze module").count() == 0
    accessible(page, f"module-{size}", tags=WCAG22, screenshot=f"module-{size}.png")

    page.get_by_role("link", name="Verder", exact=True).click()
    expect(page.locator("#module-step")).to_have_text("Stap 2 van 6")
    # A link to a module of the client's own track, open: it goes there.
    other = page.get_by_role("link", name="Signalen van je lichaam")
    other.scroll_into_view_if_needed()
    accessible(page, f"module-link-{size}", tags=WCAG22, screenshot=f"module-link-{size}.png")
    other.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Signalen van je lichaam")
    page.go_back()
    page.get_by_role("link", name="Terug", exact=True).click()
    expect(page.locator("#module-step")).to_have_text("Stap 1 van 6")
    page.get_by_role("link", name="Verder", exact=True).click()
    page.get_by_role("link", name="Verder", exact=True).click()
    expect(page.locator("#module-step")).to_have_text("Stap 3 van 6")
    expect(page.get_by_role("link", name="Doe de oefening, stap voor stap")).to_be_visible()

    # Away, and back later (a new page load, as from the home page): where they were.
    page.goto(f"{live.app_url}/")
    page.goto(module)
    expect(page.locator("#module-step")).to_have_text("Stap 3 van 6")
    expect(page.locator(".module-resumed")).to_contain_text("verder waar je de vorige keer was")
    accessible(
        page, f"module-resumed-{size}", tags=WCAG22, screenshot=f"module-resumed-{size}.png"
    )
    page.get_by_role("link", name="Liever bij het begin beginnen?").click()
    expect(page.locator("#module-step")).to_have_text("Stap 1 van 6")

    # The last screen: Klaar, and home.
    page.goto(f"{module}?step=6")
    expect(page.get_by_role("link", name="Verder", exact=True)).to_have_count(0)
    accessible(page, f"module-last-{size}", tags=WCAG22, screenshot=f"module-last-{size}.png")
    page.get_by_role("button", name="Klaar met deze module").click()
    page.wait_for_url(home_url(live.app_url))

    # A module that is not in the waiting-list track: its name as plain text, no link.
    page.goto(f"{live.app_url}/task/{tasks['rhythm-self-care']}?step=3")
    expect(page.locator(".module-screen")).to_contain_text("modules over perfectionisme en")
    assert page.locator(".module-screen a").count() == 0
    assert page.get_by_role("link", name="perfectionisme").count() == 0


def test_no_link_on_any_module_page_of_a_client_leads_nowhere(live, browser):
    """Every module of the standard track open: every screen, every <a href> on our origin
    (other modules, exercises, Verder, Terug, home, help) answers without 4xx or 5xx."""
    state = live.app.extensions["fhir_burnout"]
    with Session(state["engine"]) as db, db.begin():
        enrolment = enrol(
            db, state["definitions"], fhir_base=live.info.fhir_base, patient="pat-22",
            track="standard", author="Practitioner/prac-1",
        )  # fmt: skip
        modules = [t.key for t in enrolment.tasks if t.kind == "module"]
        for key in modules:
            if db.get(TaskRow, key).status in ("draft", "requested"):
                change_task(db, state["definitions"], key, "ready", actor="practitioner")
    context = browser.new_context(locale="nl-NL")
    page = context.new_page()
    page.goto(f"{live.info.launcher}?app=fhir-burnout&patient=pat-22")
    page.wait_for_url(home_url(live.app_url))
    origin = urlparse(live.app_url).netloc
    pages = [f"{live.app_url}/task/{key}" for key in modules]
    assert len(pages) == 13
    seen, checked, between = set(pages), 0, set()
    while pages:
        url = pages.pop()
        answer = page.request.get(url)
        assert answer.status < 400, url
        if not urlparse(url).path.startswith("/task/") or "/exercise/" in url:
            continue  # links of the module pages only; the rest answered
        body = answer.text()
        text = body.split('class="module-screen"', 1)[1].split("</section>", 1)[0]
        between |= {(url, h) for h in re.findall(r'href="(/task/[0-9a-f-]+)"', text)}
        for href in re.findall(r'<a [^>]*href="([^"]+)"', body):
            target = urljoin(url, href.replace("&amp;", "&"))
            if urlparse(target).netloc != origin or target in seen:
                continue
            seen.add(target)
            pages.append(target)
            checked += 1
    context.close()
    assert checked > 80  # the screens, the exercises, home and help
    # The links between modules, in the text itself (ten in the Dutch modules), each to a
    # module page that answered above.
    assert len(between) >= 10, between
    assert all(urljoin(live.app_url, h) in seen for _, h in between)
