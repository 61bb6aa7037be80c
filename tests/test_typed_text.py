"""Control characters in what people type and API callers send (issue 17): refused with a
message where they were, everything else kept; API callers get a 400 OperationOutcome."""

from __future__ import annotations

import html
import json
import re

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fhir_burnout.referral import ReferralRow, take_referral
from fhir_burnout.web import create_app
from fhir_burnout.workflow import NoteRow, enrol, load_draft

from .conftest import app_settings, hidden_fields, with_ehr
from .launches import as_patient, launch
from .referrals import settings_for, token

FHIR_JSON = "application/fhir+json"
SAID_NL = "onzichtbaar teken dat we niet kunnen bewaren"
PRACTICE = "Organization/practice-1"
REFERRAL = {
    "resourceType": "ServiceRequest", "id": "sr-typed-1", "status": "active", "intent": "order",
    "identifier": [{"system": "https://verwijs.example/referral", "value": "TYPED-1"}],
    "subject": {"reference": "Patient/pat-16"}, "authoredOn": "2026-12-01",
    "requester": {"display": "Dr. H. Huisarts"},
}  # fmt: skip


def enrolled(app, patient, track="waiting-list"):
    state = app.extensions["fhir_burnout"]
    with Session(state["engine"]) as db, db.begin():
        enrolment = enrol(
            db, state["definitions"], fhir_base=state["settings"].ehrs[0].fhir_base,
            patient=patient, track=track, author="Practitioner/prac-1",
        )  # fmt: skip
        return enrolment.key, {t.action_id: t.key for t in enrolment.tasks}


@pytest.mark.parametrize("unsafe", ["\x00", "\x1b[2J", "\x07", "\x85"])
def test_an_answer_with_a_control_character_is_refused_there_and_the_rest_kept(app, unsafe):
    """The check-in's free text holds a control character: the form comes back (400) with
    the message at that question, the other answers as given, the draft without it."""
    _, tasks = enrolled(app, "pat-14")
    key = tasks["weekly-checkin.weekly"]
    client = as_patient(app, "pat-14")
    url = f"/task/{key}/form"
    page = client.get(url, headers={"Accept-Language": "nl"}).get_data(as_text=True)
    sleep = re.search(r'name="a\.checkin-sleep" value="(\d+)"[^>]*> <span>Redelijk', page)[1]
    posted = client.post(url, headers={"Accept-Language": "nl"}, data={
        **hidden_fields(page), "a.checkin-energy": "6", "a.checkin-sleep": sleep,
        "a.checkin-went-well": f"Een wandeling{unsafe} gemaakt", "action": "submit",
    })  # fmt: skip
    shown = html.unescape(posted.get_data(as_text=True))
    assert posted.status_code == 400 and SAID_NL in shown and "0800-0113" in shown
    field = shown.index('name="a.checkin-went-well"')
    # Said at the question (and in the error summary at the top, which links to it).
    assert abs(shown.rindex(SAID_NL) - field) < 600 and shown.count(SAID_NL) == 2
    assert 'value="6"' in shown and "Een wandeling gemaakt" in shown.replace("[2J", "")
    with Session(app.extensions["fhir_burnout"]["engine"]) as db:
        draft = load_draft(db, key)
    text = json.dumps(draft)
    assert "wandeling" in text and not re.search(r"\\u00(0|1|7|8|9)", text)


def test_a_typed_invitation_code_with_a_control_character_is_refused(app):
    client = app.test_client()
    form = client.get("/invite").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)[1]
    posted = client.post("/invite", data={"csrf_token": token, "code": "ABCD\x00EFGH"},
                         headers={"Accept-Language": "en"})  # fmt: skip
    page = posted.get_data(as_text=True)
    assert posted.status_code == 400 and "invisible character" in page and "0800-0113" in page


def test_a_care_professionals_note_with_a_control_character_comes_back_as_typed(app, sandbox):
    """The note is not sent; the page shows it again, less the character, with the message
    beside it; nothing is stored."""
    key, _ = enrolled(app, "pat-15", track="standard")
    client = app.test_client()
    launch(client, sandbox, patient="pat-15", practitioner="prac-1")
    page = client.get("/practitioner").get_data(as_text=True)
    typed = {**hidden_fields(page), "text": "Tot dinsdag\x1b[31m, sterkte!"}
    posted = client.post(
        f"/practitioner/enrolments/{key}/note", data=typed, headers={"Accept-Language": "nl"}
    )
    shown = html.unescape(posted.get_data(as_text=True))
    assert posted.status_code == 400 and SAID_NL in shown
    assert re.search(r'aria-invalid="true"[^>]*>Tot dinsdag\[31m, sterkte!</textarea>', shown)
    with Session(app.extensions["fhir_burnout"]["engine"]) as db:
        assert db.scalar(select(func.count()).select_from(NoteRow)) == 0


@pytest.mark.parametrize(
    ("path", "body", "where"),
    [
        ("/referrals", {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
                        "identifier": [{"system": "urn:x", "value": "REF\u00071"}],
                        "subject": {"reference": "Patient/pat-10"}},
         "ServiceRequest.identifier[0].value"),
        ("/fhir/PlanDefinition/standard/$apply",
         {"resourceType": "Parameters",
          "parameter": [{"name": "subject", "valueReference": {"reference": "Patient/x\u0000"}}]},
         "Parameters.parameter[0].valueReference.reference"),
        ("/referrals", {"resourceType": "ServiceRequest", "note": [{"text": "a\ud800b"}]},
         "ServiceRequest.note[0].text"),
    ],
)  # fmt: skip
def test_an_api_string_with_a_control_character_is_a_400_outcome(
    sandbox, tmp_path, database_url, path, body, where
):
    # The practice's named caller, with a token for this app (issue 17: nobody else may call).
    app = create_app(settings_for(sandbox, tmp_path, database_url))
    bearer = token(sandbox, "system/ServiceRequest.cruds system/Patient.cruds system/CarePlan.c")
    answer = app.test_client().post(
        path, data=json.dumps(body), headers={"Content-Type": FHIR_JSON,
                                              "Authorization": f"Bearer {bearer}"},
    )  # fmt: skip
    app.extensions["fhir_burnout"]["engine"].dispose()
    assert answer.status_code == 400 and answer.mimetype == FHIR_JSON
    [issue] = json.loads(answer.data)["issue"]
    assert issue["code"] == "invalid" and issue["diagnostics"].startswith(where + " holds")


def test_without_a_valid_token_the_token_is_refused_first(app):
    body = {"resourceType": "ServiceRequest", "note": [{"text": "a\u0000b"}]}
    answer = app.test_client().post("/referrals", data=json.dumps(body),
                                    headers={"Content-Type": FHIR_JSON})  # fmt: skip
    assert answer.status_code == 401


def test_a_triage_decline_note_with_a_control_character_comes_back_and_decides_nothing(
    sandbox, tmp_path, database_url
):
    """Declining a referral with a note holding a control character: the referral page
    again (400) with the message, the reason and the note kept; the referral still waits."""
    settings = app_settings(sandbox.fhir_base, tmp_path, database_url=database_url)
    app = create_app(with_ehr(settings, worker_client_id="fhir-burnout-worker", practice=PRACTICE))
    state = app.extensions["fhir_burnout"]
    try:
        with Session(state["engine"]) as db, db.begin():
            key = take_referral(
                db, state["definitions"], fhir_base=sandbox.fhir_base.rstrip("/"),
                service_request=REFERRAL, seen_by="subscription", practice=PRACTICE,
            ).referral.key  # fmt: skip
        desk = app.test_client()
        launch(desk, sandbox, patient="pat-16", practitioner="prac-1")
        page = desk.get(f"/practice/referrals/{key}").get_data(as_text=True)
        reason = re.search(r'name="reason" id="reason-([^"]+)"', page)[1]
        posted = desk.post(f"/practice/referrals/{key}/decline",
                           headers={"Accept-Language": "nl"},
                           data={**hidden_fields(page), "reason": reason,
                                 "note": "Past\x08 niet bij ons\x00"})  # fmt: skip
        shown = html.unescape(posted.get_data(as_text=True))
        assert posted.status_code == 400 and SAID_NL in shown
        assert (
            ">Past niet bij ons</textarea>" in shown
            and f'value="{reason}" required checked' in shown
        )
        with Session(state["engine"]) as db:
            assert db.get(ReferralRow, key).state == "triage"
    finally:
        state["engine"].dispose()
