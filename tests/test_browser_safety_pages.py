"""Crisis help within reach, in a real browser: the "Hulp nodig?" link at the top of every
client page and its page of large tel: buttons; error pages in the person's language with
crisis help and a way back; a worrying answer in a draft or in a send that is not complete
showing crisis help at once; the crisis help after a send as a page of its own (a reload
sends nothing again)."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from fhir_burnout.web._headers import MAX_BODY
from fhir_burnout.workflow import enrol

from .conftest import SCREENSHOTS, accessible, home_url, responses_and_alerts


def enrolled(live, patient, track="waiting-list"):
    state = live.app.extensions["fhir_burnout"]
    with Session(state["engine"]) as db, db.begin():
        enrolment = enrol(
            db, state["definitions"], fhir_base=live.info.fhir_base, patient=patient,
            track=track, author="Practitioner/prac-1",
        )  # fmt: skip
        return {t.action_id: t.key for t in enrolment.tasks}


def launched(live, page, patient):
    page.goto(f"{live.info.launcher}?app=fhir-burnout&patient={patient}")
    page.wait_for_url(home_url(live.app_url))
    return page


def counts(live, task):
    return responses_and_alerts(live.app, task)


def tap_sized(locator):
    """Every element of ``locator`` is at least 44 x 44 CSS pixels (WCAG 2.5.5)."""
    assert locator.count() > 0
    for n in range(locator.count()):
        box = locator.nth(n).bounding_box()
        assert box["width"] >= 44 and box["height"] >= 44, locator.nth(n).inner_text()


def test_crisis_help_is_one_tap_away_at_the_top_of_every_client_page(live, phone, browser):
    tasks = enrolled(live, "pat-01")
    page = launched(live, phone, "pat-01")
    for path in ("/", f"/task/{tasks['understanding-burnout']}", "/progress"):
        page.goto(f"{live.app_url}{path}")
        link = page.get_by_role("link", name="Hulp nodig?")
        box = link.bounding_box()
        assert box["y"] < 150 and box["height"] >= 44, path  # on the first screen, at the top
    link.click()
    page.wait_for_url(home_url(live.app_url, "/hulp"))
    assert page.get_by_role("heading", level=1).inner_text() == "Hulp nodig?"
    call_113 = page.get_by_role("link", name="Bel 113: 0800-0113")
    assert call_113.get_attribute("href") == "tel:08000113"
    assert page.get_by_role("link", name="Chat met 113 op 113.nl").get_attribute("href") == (
        "https://www.113.nl/"
    )
    assert page.get_by_role("link", name="Bel 112").get_attribute("href") == "tel:112"
    assert "huisartsenpost" in page.locator("main").inner_text()
    tap_sized(page.locator("main .call"))
    tap_sized(page.locator("header .help-link"))
    assert page.locator("aside.crisis").is_visible()  # the footer block stays
    accessible(page, "crisis-help")
    page.get_by_role("button", name="English").click()
    page.wait_for_url(home_url(live.app_url, "/hulp"))
    assert page.get_by_role("heading", level=1).inner_text() == "Need help?"
    assert page.get_by_role("link", name="Call 113: 0800-0113").get_attribute("href") == (
        "tel:08000113"
    )
    assert "out-of-hours GP" in page.locator("main").inner_text()
    accessible(page, "crisis-help-english")
    # No sign-in needed: someone who never signed in reads it too.
    stranger = browser.new_context(locale="nl-NL").new_page()
    answer = stranger.goto(f"{live.app_url}/hulp")
    assert answer.status == 200 and stranger.get_by_role("link", name="Bel 112").is_visible()
    stranger.context.close()


ERROR_TEXTS = {
    "nl-NL": ("Dit lukte niet", "Bel 113: 0800-0113", "Terug naar je overzicht"),
    "en-GB": ("This did not work", "Call 113: 0800-0113", "Back to your overview"),
}


@pytest.fixture(params=sorted(ERROR_TEXTS))
def localised(browser, request):
    """A browser page whose preferred language is the parameter's; and that language."""
    context = browser.new_context(locale=request.param)
    yield request.param, context.new_page()
    context.close()


def test_error_pages_are_readable_in_the_persons_language_with_crisis_help(live, localised):
    locale, page = localised
    title, call, back = ERROR_TEXTS[locale]

    def check(status, name):
        assert page.get_by_role("heading", level=1).inner_text() == title, name
        assert page.get_by_role("link", name=call).get_attribute("href") == "tel:08000113"
        assert page.get_by_role("link", name=back).get_attribute("href") == "/"
        text = page.content()
        for werkzeug in ("Traceback", "Werkzeug", "Not Found</h1>", "Method Not Allowed"):
            assert werkzeug not in text, (name, werkzeug)
        page.screenshot(path=str(SCREENSHOTS / f"error-{status}-{locale}.png"), full_page=True)

    assert page.goto(f"{live.app_url}/no-such-page").status == 404
    check(404, "not found")
    assert page.goto(f"{live.app_url}/task/some-task/done").status == 405  # POST only
    check(405, "method")
    # A post far larger than any form: refused before it is read.
    page.goto(f"{live.app_url}/hulp")
    with page.expect_navigation() as navigation:
        page.evaluate(
            """size => {
                const form = document.createElement('form');
                form.method = 'post'; form.action = '/language';
                const area = document.createElement('textarea');
                area.name = 'next'; area.value = 'x'.repeat(size);
                form.appendChild(area); document.body.appendChild(form); form.submit();
            }""",
            MAX_BODY + 1024,
        )
    assert navigation.value.status == 413
    check(413, "too large")
    phrase = "te veel tekst" if title.startswith("Dit") else "too much text"
    assert phrase in page.locator("main").inner_text()


def test_api_callers_keep_getting_an_operation_outcome(live):
    client = live.app.test_client()
    for path, status, code in (
        ("/fhir/Nothing/here", 404, "not-found"),
        ("/referrals", 405, "not-supported"),
        ("/koppeltaal/notify", 405, "not-supported"),
    ):
        answer = client.get(path)
        assert answer.status_code == status and answer.mimetype == "application/fhir+json"
        assert json.loads(answer.data)["issue"][0]["code"] == code, path


SAFETY_QUESTION = "Had je de afgelopen week gedachten"


def test_a_worrying_answer_shows_crisis_help_at_once_even_when_it_is_not_sent(live, phone):
    tasks = enrolled(live, "pat-02")
    key = tasks["weekly-checkin.weekly"]
    page = launched(live, phone, "pat-02")
    page.goto(f"{live.app_url}/task/{key}/form")
    page.get_by_role("group", name=SAFETY_QUESTION).get_by_label("Vaak").check()
    # "Save, continue later": the answers are kept, not sent, and the page says so, with
    # crisis help right there.
    page.get_by_role("button", name="Opslaan, later verder").click()
    page.wait_for_url(home_url(live.app_url, f"/task/{key}/form"))
    help_now = page.locator("section.safety-now")
    expect(help_now).to_contain_text("Je antwoorden zijn bewaard, maar nog niet verstuurd")
    expect(help_now).to_contain_text("De praktijk ziet ze pas als je op 'Versturen' drukt")
    assert help_now.get_by_role("link", name="Bel 113: 0800-0113").is_visible()
    tap_sized(help_now.locator(".call"))
    assert page.get_by_role("group", name=SAFETY_QUESTION).get_by_label("Vaak").is_checked()
    accessible(page, "draft-with-worrying-answer")
    assert counts(live, key) == (0, 0)  # not sent: nothing reached the practice yet
    # "Send" with required answers still missing: not sent either, and it says so.
    page.get_by_label("Hoeveel energie had je deze week?").fill("2")
    page.get_by_role("button", name="Versturen").click()
    expect(page.locator("section.safety-now")).to_contain_text(
        "Je antwoorden zijn nog niet verstuurd, want er is nog iets niet goed"
    )
    expect(page.locator(".error[role=alert]")).to_contain_text("Er is nog iets niet goed")
    assert counts(live, key) == (0, 0)
    # Complete and sent: the crisis help is a page of its own (post/redirect/get).
    sleep = page.get_by_role("group", name="Hoe heb je deze week geslapen?")
    sleep.get_by_label("Slecht", exact=True).check()
    page.get_by_label("Hoeveel spanning voelde je deze week?").fill("8")
    page.get_by_role("button", name="Versturen").click()
    page.wait_for_url(home_url(live.app_url, f"/task/{key}/safety"))
    assert page.get_by_role("link", name="Bel 113: 0800-0113").is_visible()
    accessible(page, "safety-after-send")
    page.reload()  # sends nothing again
    assert page.get_by_role("link", name="Bel 113: 0800-0113").is_visible()
    assert counts(live, key) == (1, 1)


def unsent_copies(page):
    return page.evaluate("Object.keys(localStorage).filter(k => k.includes('unsent'))")


def test_a_harmless_draft_shows_no_crisis_block_and_goes_home(live, phone):
    tasks = enrolled(live, "pat-03")
    key = tasks["weekly-checkin.weekly"]
    page = launched(live, phone, "pat-03")
    page.goto(f"{live.app_url}/task/{key}/form")
    page.get_by_role("group", name=SAFETY_QUESTION).get_by_label("Nee").check()
    # The browser keeps an unsent copy as the client types, until the server stored it.
    assert unsent_copies(page) == [f"fhir-burnout:unsent:/task/{key}/form"]
    page.get_by_role("button", name="Opslaan, later verder").click()
    page.wait_for_url(home_url(live.app_url))
    assert unsent_copies(page) == []
    page.goto(f"{live.app_url}/task/{key}/form")
    assert page.locator("section.safety-now").count() == 0
