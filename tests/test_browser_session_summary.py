"""The care professional's page in a real browser at a desktop's 1280 x 800 (issue 21,
points 1 and 4): open safety signals first, then "Sinds de vorige sessie" on the first
screen (measures with their change and recovery, the check-in's trend as three small
charts, the look-backs, the client's words), the decisions beside it, axe-clean at WCAG 2.2
AA; printed, the summary alone on A4, without navigation or forms. Screenshots in
dist/screenshots/ (``practitioner-summary-desktop.png``, ``-print.png``, ``-english.png``)."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, date, datetime

import pytest
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from fhir_burnout.workflow import EnrolmentRow

from .conftest import DESK, SCREENSHOTS, WCAG22, accessible, home_url, serving, with_ehr
from .practitioners import PRACTICE, submit
from .session_history import seed

PROTOCOL = "https://intranet.example/crisisprotocol"


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """The app on a real port, sending summaries to the EHR, with a crisis protocol."""

    def configured(settings):
        settings = with_ehr(settings, worker_client_id="fhir-burnout-worker", practice=PRACTICE,
                            summary_to_ehr=True)  # fmt: skip
        return dataclasses.replace(settings, crisis_protocol_url=PROTOCOL)

    with serving(tmp_path_factory, "live-summary", configured) as running:
        yield running


def seeded(live, patient):
    """Eight weeks of history, and this week's check-in with a worrying answer."""
    state = live.app.extensions["fhir_burnout"]
    with Session(state["engine"]) as db, db.begin():
        key, since = seed(db, state["definitions"], fhir_base=live.info.fhir_base,
                          patient=patient, today=date.today())  # fmt: skip
        checkin = next(
            t.key for t in db.get(EnrolmentRow, key).tasks
            if t.action_id == "weekly-checkin.weekly" and t.status == "ready"
        )  # fmt: skip
        submit(db, state["definitions"], checkin, {"checkin-sleep": 1, "checkin-safety": 1},
               patient=patient, now=datetime.now(UTC),
               extra={"checkin-energy": [{"valueInteger": 5}],
                      "checkin-tension": [{"valueInteger": 5}]})  # fmt: skip
    return since


def test_the_summary_is_on_the_first_screen_with_the_signals_first_and_the_actions_beside(
    live, desk
):
    since = seeded(live, "pat-14")
    page = desk
    page.goto(f"{live.info.launcher}?app=fhir-burnout&practitioner=prac-1&patient=pat-14")
    page.wait_for_url(home_url(live.app_url))
    page.goto(f"{live.app_url}/practitioner?since={since.astimezone().date().isoformat()}")
    page.screenshot(path=str(SCREENSHOTS / "practitioner-summary-first-screen.png"))

    signals = page.locator(".safety-alerts")
    summary = page.get_by_role("heading", name="Sinds de vorige sessie", exact=True)
    expect(signals).to_contain_text("Veiligheidssignaal in Wekelijkse check-in")
    assert signals.bounding_box()["y"] < summary.bounding_box()["y"] < DESK["height"]
    # The measures, their change and recovery, on the first screen.
    rows = page.locator(".fb-measures tbody tr")
    phq9 = rows.filter(has_text="Stemming (PHQ-9)")
    expect(phq9).to_contain_text("17")
    expect(phq9).to_contain_text("matig-ernstig (15\N{EN DASH}19)")
    expect(phq9).to_contain_text("mild (5\N{EN DASH}9)")
    expect(phq9).to_contain_text("Betrouwbaar verbeterd")
    expect(phq9).to_contain_text("Betrouwbaar hersteld")
    gad7 = rows.filter(has_text="Angst en piekeren (GAD-7)")
    expect(gad7).to_contain_text("Geen betrouwbare verandering")
    expect(gad7).to_contain_text("Niet hersteld")
    assert phq9.bounding_box()["y"] + phq9.bounding_box()["height"] < DESK["height"]
    # The check-in's trend: three small charts, the change since the session in words.
    expect(page.locator(".fb-trend svg")).to_have_count(3)
    expect(page.locator(".fb-summary")).to_contain_text(
        "energie 4 → 5, slaap slecht → redelijk, spanning 6 → 5"  # day 35 -> today's
    )
    # Look-backs before -> after, and the client's own words marked.
    expect(page.locator(".fb-look-backs")).to_contain_text("spanning 7 → 4")
    words = page.locator(".fb-look-backs q.fb-own-words", has_text="schouders werden zachter")
    expect(words).to_be_visible()
    assert words.evaluate("e => getComputedStyle(e).backgroundColor") != "rgba(0, 0, 0, 0)"
    # The decisions beside, not under, the client; no clients' crisis help, the protocol.
    main, actions = page.locator(".fb-pract__client"), page.locator(".fb-pract__actions")
    assert actions.bounding_box()["x"] > main.bounding_box()["x"] + main.bounding_box()["width"]
    assert main.bounding_box()["width"] > 700
    assert actions.bounding_box()["y"] < DESK["height"]
    assert page.locator("aside.crisis").count() == 0
    expect(page.get_by_role("link", name="Crisisprotocol van de praktijk")).to_have_attribute(
        "href", PROTOCOL
    )
    # No date written the ISO way anywhere on the page.
    assert re.findall(r"\b\d{4}-\d{2}-\d{2}\b", page.locator("body").inner_text()) == []
    accessible(page, "practitioner-summary", tags=WCAG22,
               screenshot="practitioner-summary-desktop.png")  # fmt: skip

    # The print button (a script shows it) and the print stylesheet: the summary alone.
    expect(page.get_by_role("button", name="Samenvatting afdrukken")).to_be_visible()
    page.emulate_media(media="print")
    expect(page.locator(".fb-summary")).to_be_visible()
    for hidden in (".fb-header", ".fb-pract-nav", ".fb-pract__actions", ".fb-answers",
                   ".fb-programmes", "form.fb-summary__since"):  # fmt: skip
        expect(page.locator(hidden).first).to_be_hidden()
    expect(page.locator(".banner")).to_contain_text("Cliënt:")  # whose summary it is
    page.screenshot(path=str(SCREENSHOTS / "practitioner-summary-print.png"), full_page=True)
    pdf = page.pdf(format="A4")
    pages = len(re.findall(rb"/Type\s*/Page[^s]", pdf))
    assert 1 <= pages <= 2, pages
    page.emulate_media(media="screen")

    page.get_by_role("button", name="English").click()
    expect(page.get_by_role("heading", name="Since the last session")).to_be_visible()
    expect(page.locator(".fb-measures")).to_contain_text("Reliably recovered")
    accessible(page, "practitioner-summary-english", tags=WCAG22,
               screenshot="practitioner-summary-english.png")  # fmt: skip


def test_the_summary_goes_to_the_record_from_its_button(live, desk):
    seeded(live, "pat-15")
    page = desk
    page.goto(f"{live.info.launcher}?app=fhir-burnout&practitioner=prac-1&patient=pat-15")
    page.wait_for_url(home_url(live.app_url))
    page.goto(f"{live.app_url}/practitioner")
    page.get_by_role("button", name="Samenvatting naar het dossier").click()
    expect(page.get_by_role("status")).to_have_text(
        "De samenvatting gaat naar het dossier in het EHR."
    )
    accessible(page, "practitioner-summary-sent", tags=WCAG22)
    # The ending pages: in the clinician's words, the protocol in place of crisis help.
    page.get_by_role("button", name="Stoppen").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Programma stoppen")
    expect(page.locator("main")).to_contain_text("Dit is niet terug te draaien.")
    assert page.locator("aside.crisis").count() == 0
    expect(page.get_by_role("link", name="Crisisprotocol van de praktijk")).to_be_visible()
    accessible(page, "practitioner-stop-desktop", tags=WCAG22,
               screenshot="practitioner-stop-desktop.png")  # fmt: skip
