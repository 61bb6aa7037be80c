"""Homework and questionnaires in the browser's forms: drafts, errors, submit once, safety."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fhir_burnout.questionnaire import load_form
from fhir_burnout.sync import OutboxEntry
from fhir_burnout.workflow import ResponseRow, TaskRow, enrol, load_draft

from .conftest import by_id
from .smart_flow import sign_in_at_ehr


def task_of(app, patient, action_id):
    """Enrol ``patient`` in the waiting-list track; the key of one of their Tasks."""
    state = app.extensions["fhir_burnout"]
    with Session(state["engine"]) as db, db.begin():
        enrolment = enrol(
            db, state["definitions"], fhir_base=state["settings"].ehrs[0].fhir_base,
            patient=patient, track="waiting-list", author="Practitioner/prac-1",
        )  # fmt: skip
        return next(t.key for t in enrolment.tasks if t.action_id == action_id)


@pytest.fixture
def checkin(app):
    return task_of(app, "pat-10", "weekly-checkin.weekly")


def signed_in(app, patient="pat-10"):
    client = app.test_client()
    started = client.get("/login")
    client.get(sign_in_at_ehr(started.headers["Location"] + f"&login_hint=Patient/{patient}"))
    return client


def token_of(page):
    return re.search(r'name="csrf_token" value="([^"]+)"', page)[1]


def option(page, link, label):
    """The form value of the option with this label."""
    pattern = rf'name="a\.{link}" value="(\d+)"[^>]*> {re.escape(label)}'
    return re.search(pattern, page)[1]


def responses(app):
    with Session(app.extensions["fhir_burnout"]["engine"]) as db:
        return db.scalar(select(func.count()).select_from(ResponseRow))


def test_fill_in_with_a_mistake_save_come_back_and_send_once(app, checkin):
    client = signed_in(app)
    url = f"/task/{checkin}/form"
    page = client.get(url, headers={"Accept-Language": "nl"}).get_data(as_text=True)
    assert "<h1>Wekelijkse check-in</h1>" in page and "0800-0113" in page
    answers = {
        "csrf_token": token_of(page),
        "a.checkin-energy": "veel",  # not a number
        "a.checkin-sleep": option(page, "checkin-sleep", "Redelijk"),
        "a.checkin-went-well": "Een wandeling gemaakt",
        "a.checkin-safety": option(page, "checkin-safety", "Nee"),
        "action": "submit",
    }
    refused = client.post(url, data=answers, headers={"Accept-Language": "nl"})
    text = refused.get_data(as_text=True)
    assert refused.status_code == 400 and "Je antwoorden zijn bewaard" in text
    assert 'id="error-checkin-energy"' in text and "Een wandeling gemaakt" in text
    assert responses(app) == 0
    # Closed the tab; the draft is there when they come back.
    with Session(app.extensions["fhir_burnout"]["engine"]) as db:
        assert load_draft(db, checkin)["checkin-went-well"] == [
            {"valueString": "Een wandeling gemaakt"}
        ]
    again = signed_in(app).get(url).get_data(as_text=True)
    assert "Een wandeling gemaakt" in again
    answers |= {"a.checkin-energy": "6", "a.checkin-tension": "4", "csrf_token": token_of(again)}
    sent = client.post(url, data={**answers, "csrf_token": token_of(page)})
    assert sent.status_code == 303 and responses(app) == 1
    twice = client.post(url, data={**answers, "csrf_token": token_of(page)})
    assert twice.status_code == 303 and responses(app) == 1  # no second response
    with Session(app.extensions["fhir_burnout"]["engine"]) as db:
        row = db.scalars(select(ResponseRow)).one()
        response = json.loads(row.resource)
        assert db.get(TaskRow, checkin).status == "completed"
        queued = json.loads(db.scalars(select(OutboxEntry.payload)).all()[-1])["operations"]
    assert response["questionnaire"].endswith("/Questionnaire/weekly-checkin|0.1.0")
    assert response["subject"] == {"reference": "Patient/pat-10"}
    assert queued[0]["resource"]["resourceType"] == "QuestionnaireResponse"


def test_a_concerning_answer_shows_crisis_help_and_alerts_the_care_professional(app, checkin):
    client = signed_in(app)
    url = f"/task/{checkin}/form"
    page = client.get(url, headers={"Accept-Language": "nl"}).get_data(as_text=True)
    answers = {
        "csrf_token": token_of(page),
        "a.checkin-energy": "2",
        "a.checkin-sleep": option(page, "checkin-sleep", "Slecht"),
        "a.checkin-tension": "8",
        "a.checkin-safety": option(page, "checkin-safety", "Vaak"),
        "action": "submit",
    }
    shown = client.post(url, data=answers, headers={"Accept-Language": "nl"})
    text = shown.get_data(as_text=True)
    assert shown.status_code == 200 and "0800-0113" in text and "neemt contact met je op" in text
    with Session(app.extensions["fhir_burnout"]["engine"]) as db:
        alert = db.scalars(select(TaskRow).where(TaskRow.kind == "practitioner")).one()
        assert alert.owner == "Practitioner/prac-1" and alert.action_id.startswith("safety:")


def test_another_client_cannot_open_or_send_the_form(app, checkin):
    stranger = signed_in(app, "pat-11")
    assert stranger.get(f"/task/{checkin}/form").status_code == 404
    stranger.get("/")
    with stranger.session_transaction() as cookie:
        token = cookie.get("csrf_token", "x")
    posted = stranger.post(f"/task/{checkin}/form", data={"csrf_token": token, "action": "submit"})
    assert posted.status_code in (400, 404) and responses(app) == 0


def test_the_score_shows_on_the_progress_page_as_a_chart_and_a_table(app, resources):
    who5 = task_of(app, "pat-12", "who-5.start")
    client = signed_in(app, "pat-12")
    empty = client.get("/progress", headers={"Accept-Language": "nl"}).get_data(as_text=True)
    assert "Zodra je een vragenlijst hebt ingevuld" in empty
    url = f"/task/{who5}/form"
    page = client.get(url, headers={"Accept-Language": "nl"}).get_data(as_text=True)
    # The option weighing 2 ("less than half of the time") on all five items: raw score 10,
    # percentage 40, by the published rule (raw x 4).
    form = load_form(by_id(resources, "Questionnaire", "who-5"))
    two = next(i for i, o in enumerate(form.index["who5-1"].options) if o.weight == 2)
    answers = {f"a.who5-{n}": str(two) for n in range(1, 6)}
    sent = client.post(url, data={**answers, "csrf_token": token_of(page), "action": "submit"})
    assert sent.status_code == 303
    progress = client.get("/progress", headers={"Accept-Language": "nl"}).get_data(as_text=True)
    assert '<svg role="img"' in progress and "<polyline" in progress
    assert re.search(r"<td>40</td>\s*<td>[^<]+</td>", progress)  # the percentage and its band
    assert re.search(r"<td>10</td>", progress)
    other = signed_in(app, "pat-13").get("/progress").get_data(as_text=True)
    assert "<td>40</td>" not in other  # only one's own scores
