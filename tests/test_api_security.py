"""Who may call the app's machine endpoints ($apply, POST /referrals), with real tokens from
the sandbox's authorization server (issue 17, point 1): only a client the practice named
(``api_clients``), with a ``system/`` token meant for the app itself (``aud`` = our
``base_url``), never a person's token nor a token meant for the EHR."""

from __future__ import annotations

import json
import uuid

import pytest
import requests
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fhir_burnout.referral import (
    BSN_MISMATCH,
    TRIAGE,
    ReferralRow,
    accept_referral,
    decline_referral,
    load_triage,
)
from fhir_burnout.smart_launch._backend_services import ASSERTION_TYPE, client_assertion
from fhir_burnout.sync import OutboxEntry
from fhir_burnout.web import create_app
from fhir_burnout.workflow import Definitions, EnrolmentRow

from .conftest import ROOT, with_ehr
from .launches import launch
from .referrals import (
    FHIR_JSON,
    PRACTICE,
    REFERRALS,
    bundle,
    patient,
    random_bsn,
    service_request,
    settings_for,
    token,
)
from .smart_flow import APP, authorize, discovery, ehr_launch, exchange

PERSON_SCOPES = "openid fhirUser user/CarePlan.cruds user/ServiceRequest.cruds user/Patient.cruds"
APPLY = "/fhir/PlanDefinition/waiting-list/$apply"


def machine_token(info, client="referral-system", resource=APP):
    """A client_credentials token of ``client`` for ``resource`` (RFC 8707; None: the EHR's
    FHIR base, the sandbox's default audience)."""
    endpoint = discovery(info)["token_endpoint"]
    form = {"grant_type": "client_credentials", "scope": "system/*.cruds"}
    auth = None
    if resource:
        form["resource"] = resource
    registered = info.client(client)
    if registered["token_endpoint_auth_method"] == "private_key_jwt":
        form["client_assertion_type"] = ASSERTION_TYPE
        key = registered["private_keys"][0]
        form["client_assertion"] = client_assertion(client, endpoint, key)
    else:
        auth = (client, registered["client_secret"])
        form["scope"] = "system/ServiceRequest.cruds system/Patient.cruds system/CarePlan.cruds"
    response = requests.post(endpoint, data=form, auth=auth, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def patient_token(info, aud=None):
    """A patient signed in at the portal with the app's public client (fhir-burnout), who
    asks every write scope the client may have."""
    callback, verifier, _ = authorize(info, PERSON_SCOPES, login_hint="Patient/pat-03", aud=aud)
    answer = exchange(info, callback["code"], verifier)
    assert answer.status_code == 200, answer.text
    assert "user/CarePlan.cruds" in answer.json()["scope"].split()
    return answer.json()["access_token"]


def practitioner_token(info, aud=None):
    """A care professional launched from the EHR with the app's public client."""
    answer = ehr_launch(info, "pat-03", "prac-2", scope=f"launch {PERSON_SCOPES}", aud=aud)
    assert "user/ServiceRequest.cruds" in answer["scope"].split()
    return answer["access_token"]


PEOPLE = {"patient": patient_token, "practitioner": practitioner_token}


@pytest.fixture
def make_app(sandbox, tmp_path, database_url):
    """An app trusting the sandbox whose machine callers are ``callers`` (client ids)."""
    made = []

    def make(callers=("referral-system",)):
        settings = settings_for(sandbox, tmp_path, database_url, triage=True)
        app = create_app(with_ehr(settings, api_clients=tuple(callers)))
        made.append(app)
        return app

    yield make
    for app in made:
        app.extensions["fhir_burnout"]["engine"].dispose()


def stored(app):
    """(referrals, enrolments, outbox entries) stored by the app."""
    with Session(app.extensions["fhir_burnout"]["engine"]) as db:
        return tuple(
            db.scalar(select(func.count()).select_from(table))
            for table in (ReferralRow, EnrolmentRow, OutboxEntry)
        )


def call(app, path, bearer):
    """``path`` called with ``bearer``: an enrolment or a referral of pat-10."""
    if path == APPLY:
        body = {
            "resourceType": "Parameters",
            "parameter": [{"name": "subject", "valueReference": {"reference": "Patient/pat-10"}}],
        }
    else:
        body = service_request()
    return app.test_client().post(
        path,
        data=json.dumps(body),
        headers={"Content-Type": "application/fhir+json", "Authorization": f"Bearer {bearer}"},
    )


def refused(answer, status, text):
    outcome = answer.get_json()
    assert answer.status_code == status, answer.get_data(as_text=True)
    assert outcome["resourceType"] == "OperationOutcome"
    assert text in outcome["issue"][0]["diagnostics"], outcome
    return answer


PATHS = [APPLY, "/referrals"]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("person", sorted(PEOPLE))
def test_a_persons_token_from_the_apps_public_client_is_refused(make_app, sandbox, path, person):
    # As the pen test did it: the person's token is for the EHR, as every launch's is.
    app = make_app()
    answer = refused(call(app, path, PEOPLE[person](sandbox)), 401, "meant for another server")
    assert answer.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    # Asked for the app itself: the public client is no machine caller of this practice.
    for_us = PEOPLE[person](sandbox, aud=APP)
    refused(call(app, path, for_us), 403, "not a caller")
    # Even where the practice named that client, a person's user/ scopes are not system/
    # ones: refused for its context, although user/*.cruds would allow the write.
    named = make_app(callers=("referral-system", "fhir-burnout"))
    answer = refused(call(named, path, for_us), 403, "do not allow")
    assert answer.headers["WWW-Authenticate"] == 'Bearer error="insufficient_scope"'
    assert stored(app) == stored(named) == (0, 0, 0)


@pytest.mark.parametrize("path", PATHS)
def test_a_token_meant_for_the_ehr_is_not_a_token_for_us(make_app, sandbox, path):
    app = make_app()
    answer = refused(call(app, path, machine_token(sandbox, resource=None)), 401, "another server")
    assert answer.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert stored(app) == (0, 0, 0)


@pytest.mark.parametrize("path", PATHS)
def test_only_a_client_the_practice_named_may_call(make_app, sandbox, path):
    # The sync worker's own client has every system/ scope, but is no caller of our APIs.
    worker = machine_token(sandbox, "fhir-burnout-worker")
    refused(call(make_app(), path, worker), 403, "not a caller")
    # By default the practice names nobody: no machine caller at all.
    nobody = make_app(callers=())
    refused(call(nobody, path, machine_token(sandbox)), 403, "not a caller")
    assert stored(nobody) == (0, 0, 0)


@pytest.mark.parametrize("path", PATHS)
def test_the_named_client_with_a_token_for_us_is_taken(make_app, sandbox, path):
    answer = call(make_app(), path, machine_token(sandbox))
    assert answer.status_code in (200, 201), answer.get_data(as_text=True)


# --- referral intake that leaks nothing (issue 17, point 2) -----------------------------

SECRET = "VERTROUWELIJK-other-practice"


def foreign_referral(fhir, performer="Organization/other-practice"):
    """A confidential referral on the EHR, for another practice (or ``performer``): its
    identifier value."""
    number = f"REF-{uuid.uuid4()}"
    fhir.create(
        {
            "resourceType": "ServiceRequest",
            "identifier": [{"system": REFERRALS, "value": number}],
            "status": "active",
            "intent": "order",
            "subject": {"reference": "Patient/pat-03"},
            "performer": [{"reference": performer}],
            "note": [{"text": SECRET}],
        }
    )
    return number


@pytest.fixture
def intake(sandbox, tmp_path, database_url):
    """The app with automatic enrolment (a match would enrol at once), named caller."""
    settings = settings_for(sandbox, tmp_path, database_url, triage=False)
    app = create_app(settings)
    yield app
    app.extensions["fhir_burnout"]["engine"].dispose()


@pytest.fixture
def push(sandbox):
    """Push ``body`` to ``app`` as the named referral system."""
    bearer = token(sandbox)

    def send(app, body):
        return app.test_client().post(
            "/referrals",
            data=json.dumps(body),
            headers={"Content-Type": FHIR_JSON, "Authorization": f"Bearer {bearer}"},
        )

    return send


@pytest.fixture(scope="module")
def definitions(resources):
    return Definitions.from_resources(resources)


@pytest.fixture(scope="module")
def triage():
    return load_triage(ROOT)


def the_referral(app):
    with Session(app.extensions["fhir_burnout"]["engine"]) as db:
        return db.scalars(select(ReferralRow)).one()


def test_a_comma_in_the_identifier_does_not_find_another_practices_referral(intake, fhir, push):
    secret = foreign_referral(fhir)
    # Unescaped, the comma is an OR: the search found the confidential referral and the
    # answer was the EHR's copy, its patient enrolled here.
    sneaky = service_request(f"X-{uuid.uuid4()},{REFERRALS}|{secret}")
    answer = push(intake, sneaky)
    assert answer.status_code == 201, answer.get_data(as_text=True)
    assert SECRET not in answer.get_data(as_text=True)
    assert answer.get_json()["subject"] == {"reference": "Patient/pat-10"}
    assert the_referral(intake).patient == "pat-10"


def test_the_same_identifier_as_another_practices_referral_is_refused(intake, fhir, push):
    secret = foreign_referral(fhir)
    answer = push(intake, service_request(secret))
    assert answer.status_code == 409, answer.get_data(as_text=True)
    assert SECRET not in answer.get_data(as_text=True)
    assert "not for this practice" in answer.get_json()["issue"][0]["diagnostics"]
    assert stored(intake) == (0, 0, 0)


def test_this_practices_referral_on_the_ehr_is_adopted_but_not_shown(intake, fhir, push):
    number = foreign_referral(fhir, performer=PRACTICE)
    sent = service_request(number)
    answer = push(intake, sent)
    assert answer.status_code == 201, answer.get_data(as_text=True)
    taken = answer.get_json()
    # What was sent plus our key; not the EHR's copy, not the EHR's patient.
    assert SECRET not in answer.get_data(as_text=True)
    assert taken["subject"] == sent["subject"] and taken["identifier"][0] == sent["identifier"][0]
    row = the_referral(intake)
    assert row.patient == "pat-03" and row.service_request is not None


def test_a_bsn_match_under_another_name_waits_for_a_person(
    intake, fhir, push, definitions, sandbox
):
    bsn = random_bsn()
    someone = fhir.create(
        patient(bsn, name=[{"family": "Anders", "given": ["Iemand"]}], birthDate="1970-01-01")
    )["id"]
    body = bundle(bsn)
    answer = push(intake, body)
    assert answer.status_code == 201, answer.get_data(as_text=True)
    # The caller is not told whose record the BSN opened.
    assert someone not in answer.get_data(as_text=True)
    assert answer.get_json()["subject"] == body["entry"][1]["resource"]["subject"]
    row = the_referral(intake)
    assert (row.state, row.identity_issue, row.enrolment_key) == (TRIAGE, BSN_MISMATCH, None)
    assert stored(intake) == (1, 0, 0)  # held: nothing for the EHR's record of someone else
    # The care professional who triages it reads why it waits before deciding.
    desk = intake.test_client()
    launch(desk, sandbox, patient="pat-16", practitioner="prac-1")
    page = desk.get(f"/practice/referrals/{row.key}", headers={"Accept-Language": "nl"})
    assert page.status_code == 200
    assert "BSN klopt niet met naam/geboortedatum" in page.get_data(as_text=True)
    # A care professional looked and says it is this person: what was held goes now.
    state = intake.extensions["fhir_burnout"]
    with Session(state["engine"]) as db, db.begin():
        accept_referral(db, definitions, row.key, fhir_base=row.fhir_base,
                        practice=PRACTICE, by="Practitioner/prac-2")  # fmt: skip
    with Session(state["engine"]) as db:
        kinds = sorted(e.kind for e in db.scalars(select(OutboxEntry)))
    assert kinds == ["enrolment", "invitation", "referral", "referral-status", "referral-status"]


def test_a_declined_bsn_mismatch_tells_the_referrer_without_naming_the_patient(
    intake, fhir, push, triage
):
    bsn = random_bsn()
    fhir.create(patient(bsn, birthDate="1970-01-01"))
    assert push(intake, bundle(bsn)).status_code == 201
    row = the_referral(intake)
    with Session(intake.extensions["fhir_burnout"]["engine"]) as db, db.begin():
        decline_referral(db, triage, row.key, fhir_base=row.fhir_base, practice=PRACTICE,
                         reason="other", note="BSN hoort bij iemand anders",
                         by="Practitioner/prac-2")  # fmt: skip
        entries = [(e.kind, json.loads(e.payload)) for e in db.scalars(select(OutboxEntry))]
    created = [payload["operations"][0] for _, payload in entries]
    assert [kind for kind, _ in entries] == ["referral-status", "referral-status"]
    task = created[0]["resource"]
    assert "for" not in task and task["focus"]["identifier"]["value"] == row.identifier_value
