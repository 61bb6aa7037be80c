"""Feedback both ways on homework in a real browser (Debian's Chromium via Playwright), against
the app on a real port and a sandbox EHR of this module's own: the care professional
(desktop, 1280 x 800) responds under the client's tension log; the client (phone, 390 x 844)
finds one calm line on their home, reads the response beside their answer and replies;
the care professional reads the reply and keeps a note the client never sees. axe-core
finds no WCAG 2.2 A/AA violation on any of these pages; screenshots are kept."""

from __future__ import annotations

from datetime import date

import pytest
from playwright.sync_api import expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from fhir_burnout._demo_history import Event, History, play
from fhir_burnout.fhir import FhirClient
from fhir_burnout.sync import KEY_SYSTEM, Worker
from fhir_burnout.workflow import ResponseRow, TaskRow, ThreadMessageRow

from .conftest import WCAG22, accessible, home_url, serving, with_ehr
from .outbox_load import deliver_all, worker_token_source
from .practitioners import PRACTICE

WORDS = "Mail van mijn werk gelezen, daarna de hele avond onrustig"


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """The app on a real port, writing for practice-1, and a sandbox that trusts it."""

    def writing_for_the_practice(settings):
        return with_ehr(settings, worker_client_id="fhir-burnout-worker", practice=PRACTICE)

    with serving(tmp_path_factory, "live-feedback", writing_for_the_practice) as running:
        yield running


def tension_log(live, patient):
    """``patient`` twelve days in, their tension log sent; the response's key."""
    state = live.app.extensions["fhir_burnout"]
    moment = {
        "tension-datetime": (9, 20, 45), "tension-level": 7, "tension-body": ["neck-shoulders"],
        "tension-situation": WORDS, "tension-exercise": False,
    }  # fmt: skip
    history = History(patient, "standard", 12, (
        Event(1, 19, "open", "understanding-burnout"),
        Event(3, 21, "done", "understanding-burnout"),
        Event(4, 19, "open", "body-signals"),
        Event(10, 20, "answer", "body-signals.tension-log", {"tension-moment": [moment]}),
    ))  # fmt: skip
    with Session(state["engine"]) as db, db.begin():
        played = play(
            db, state["definitions"], history, fhir_base=live.info.fhir_base, today=date.today()
        )
    with Session(state["engine"]) as db:
        return db.scalar(
            select(ResponseRow.key)
            .join(TaskRow, ResponseRow.task_key == TaskRow.key)
            .where(
                TaskRow.enrolment_key == played.enrolment,
                TaskRow.action_id == "body-signals.tension-log",
            )
        )


def test_a_response_a_reply_and_a_note_in_the_browser(live, desk, phone):
    answer = tension_log(live, "pat-09")
    page = desk
    page.goto(f"{live.info.launcher}?app=fhir-burnout&practitioner=prac-1&patient=pat-09")
    page.wait_for_url(home_url(live.app_url))
    page.get_by_role("link", name="Overzicht van deze cliënt").click()
    page.wait_for_url(home_url(live.app_url, "/practitioner"))
    thread = page.locator(f"#thread-{answer}")
    expect(thread.get_by_role("heading")).to_have_text("Reacties op dit antwoord")
    thread.get_by_label("Reactie aan de cliënt op dit antwoord").fill(
        "Herkenbaar, die mail.\nWat merkte je in je schouders?"
    )
    thread.get_by_role("button", name="Versturen").click()
    expect(page.get_by_role("status")).to_have_text(
        "De reactie is verstuurd: de cliënt ziet hem bij het antwoord."
    )
    expect(thread.locator(".thread-message")).to_contain_text("Wat merkte je in je schouders?")
    expect(thread.locator(".thread-message__who")).to_contain_text("U,")
    accessible(page, "feedback-practitioner", WCAG22, screenshot="feedback-practitioner.png")

    # The client, on their phone: one calm line on home, then their answer and the response.
    client = phone
    client.goto(f"{live.info.launcher}?app=fhir-burnout&patient=pat-09&portal=1")
    client.wait_for_url(home_url(live.app_url))
    notice = client.locator(".fb-responded")
    expect(notice).to_have_text(
        "Je behandelaar heeft gereageerd op je antwoord bij Spanningsdagboek. Lees de reactie"
    )
    accessible(client, "feedback-home", WCAG22, screenshot="feedback-home-phone.png")
    notice.get_by_role("link", name="Lees de reactie").click()
    expect(client.get_by_role("heading", level=1)).to_have_text(
        "Je antwoord en de reactie van je behandelaar"
    )
    expect(client.locator(".fb-answer__pairs")).to_contain_text(WORDS)
    carer = client.locator(".fb-thread__message--carer")
    expect(carer).to_contain_text("Je behandelaar")
    expect(carer).to_contain_text("Wat merkte je in je schouders?")
    expect(client.locator("aside.crisis")).to_contain_text("113")  # crisis help, as always
    expect(client.get_by_role("link", name="Kijk wie je nu kunt bellen")).to_be_visible()
    accessible(client, "feedback-answer", WCAG22, screenshot="feedback-answer-phone.png")
    client.get_by_label("Jouw reactie").fill("Vooral in mijn nek. Daarna ben ik gaan wandelen.")
    client.get_by_role("button", name="Reactie versturen").click()
    expect(client.get_by_role("status")).to_have_text(
        "Je reactie is bewaard. Je behandelaar ziet hem bij je antwoord."
    )
    expect(client.locator(".fb-thread__message--client")).to_contain_text("Vooral in mijn nek.")
    assert client.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )
    accessible(client, "feedback-replied", WCAG22, screenshot="feedback-replied-phone.png")
    client.goto(f"{live.app_url}/")
    assert client.locator(".fb-responded").count() == 0  # read: the notice went
    client.get_by_role("link", name="Bekijk hoe het gaat").first.click()
    client.get_by_role("link", name="Je antwoorden en de reacties van je behandelaar").click()
    expect(client.get_by_role("heading", level=1)).to_have_text("Je antwoorden en reacties")
    expect(client.locator(".fb-answers__item").first).to_contain_text(
        "Je behandelaar heeft gereageerd"
    )
    accessible(client, "feedback-answers", WCAG22, screenshot="feedback-answers-phone.png")

    # The care professional reads the reply, and keeps a note for care professionals only.
    page.reload()
    expect(thread.locator(".thread-message--client")).to_contain_text("Vooral in mijn nek.")
    expect(thread).to_contain_text("De cliënt reageerde als laatste en heeft nog geen antwoord.")
    thread.get_by_label("Reactie aan de cliënt op dit antwoord").fill(
        "Spanning in de nek komt vaker terug: volgende sessie bespreken."
    )
    thread.get_by_label("Alleen voor behandelaars").check()
    thread.get_by_role("button", name="Versturen").click()
    expect(page.get_by_role("status")).to_contain_text("alleen voor behandelaars")
    expect(thread.locator(".thread-message--note")).to_contain_text("volgende sessie")
    accessible(
        page, "feedback-practitioner-note", WCAG22, screenshot="feedback-practitioner-note.png"
    )
    client.goto(f"{live.app_url}/answers/{answer}")
    expect(client.locator(".fb-thread__message")).to_have_count(2)
    assert "volgende sessie" not in client.locator("main").inner_text()

    # All three reach the EHR as Communications; the note not in the client's compartment.
    engine = live.app.extensions["fhir_burnout"]["engine"]
    with FhirClient(live.info.fhir_base, token_source=worker_token_source(live.info)) as fhir:
        deliver_all(Worker(engine, lambda base: fhir, owner="browser-feedback"))
        with Session(engine) as db:
            rows = db.scalars(select(ThreadMessageRow).order_by(ThreadMessageRow.created_at))
            sent = [(m.key, m.clinician_only) for m in rows]
        for key, clinician_only in sent:
            [found] = fhir.search("Communication", {"identifier": f"{KEY_SYSTEM}|{key}"})
            assert ("subject" in found) is not clinician_only
