"""A referred client takes up their invitation: by the link or the typed code, and only
their own."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from fhir_burnout.referral import accept_referral, take_referral
from fhir_burnout.workflow import InvitationRow

from .smart_flow import sign_in_at_ehr


def referred(app, patient, number):
    state = app.extensions["fhir_burnout"]
    base = state["settings"].ehrs[0].fhir_base
    request = {
        "resourceType": "ServiceRequest",
        "id": f"sr-{number}",
        "identifier": [{"system": "https://verwijs.example/referral", "value": number}],
        "status": "active",
        "intent": "order",
        "subject": {"reference": f"Patient/{patient}"},
    }
    with Session(state["engine"]) as db, db.begin():
        intake = take_referral(
            db, state["definitions"], fhir_base=base, service_request=request, seen_by="post"
        )
        # The care professional accepts it at triage: then the client is invited.
        enrolment = accept_referral(
            db, state["definitions"], intake.referral.key, fhir_base=base, practice=None,
            by="Practitioner/prac-1",
        )  # fmt: skip
        return db.scalar(
            select(InvitationRow.code).where(InvitationRow.enrolment_key == enrolment.key)
        )


def accepted(app, code):
    with Session(app.extensions["fhir_burnout"]["engine"]) as db:
        return db.get(InvitationRow, code).accepted_at is not None


def sign_in(client, started, patient):
    login = client.get(started.headers["Location"])  # /login -> the EHR's authorize
    assert login.status_code == 302
    back = sign_in_at_ehr(login.headers["Location"] + f"&login_hint=Patient/{patient}")
    home = client.get(back)
    assert home.status_code == 302  # the callback: on to the first page
    return client.get("/", headers={"Accept-Language": "nl"}).get_data(as_text=True)


def test_the_invitation_link_leads_to_sign_in_and_is_taken_up(app):
    code = referred(app, "pat-07", "INV-1")
    client = app.test_client()
    started = client.get(f"/invite/{code}")
    assert started.status_code == 303 and started.headers["Location"].endswith("/login")
    home = sign_in(client, started, "pat-07")
    assert "Je uitnodiging is gelukt" in home and "0800-0113" in home
    assert "Op de wachtlijst" in home  # the programme it invited to
    assert accepted(app, code)


def test_a_code_typed_by_someone_else_is_refused_without_saying_whose_it_is(app):
    code = referred(app, "pat-07", "INV-2")
    client = app.test_client()
    form = client.get("/invite", headers={"Accept-Language": "nl"}).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)[1]
    typed = code.lower().replace("-", " ")
    started = client.post("/invite", data={"csrf_token": token, "code": typed})
    home = sign_in(client, started, "pat-06")
    assert "hoort bij iemand anders" in home and "pat-07" not in home
    assert not accepted(app, code)


def test_a_typed_code_needs_the_form_token_and_some_text(app):
    client = app.test_client()
    refused = client.post("/invite", data={"code": "AB12-CD34"})
    assert refused.status_code == 400 and "/login" not in refused.headers.get("Location", "")
    form = client.get("/invite", headers={"Accept-Language": "nl"}).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)[1]
    empty = client.post("/invite", data={"csrf_token": token, "code": "  "},
                        headers={"Accept-Language": "nl"})  # fmt: skip
    assert empty.status_code == 400 and "Vul de code in" in empty.get_data(as_text=True)
