"""POST /fhir/PlanDefinition/{id}/$apply on the app, as a referral system calls it."""

from __future__ import annotations

import json

import pytest
import requests
from cryptography.fernet import Fernet

from fhir_burnout.settings import Backend, Settings
from fhir_burnout.smart_launch import TrustedEhr
from fhir_burnout.sync import Worker
from fhir_burnout.web import create_app

from .conftest import safety_settings
from .smart_flow import discovery

APP = "http://127.0.0.1:8000"


@pytest.fixture
def app(sandbox, tmp_path, database_url):
    settings = Settings(
        base_url=APP,
        database_url=database_url,
        secret_key="api-test",
        token_key=Fernet.generate_key().decode(),
        ehrs=(TrustedEhr(fhir_base=sandbox.fhir_base, client_id="fhir-burnout"),),
        keys_dir=tmp_path / "keys",
        backends=(
            Backend(
                sandbox.fhir_base,
                "fhir-burnout-worker",
                practice="Organization/practice-1",
                private_jwk=sandbox.client("fhir-burnout-worker")["private_keys"][0],
            ),
        ),
        api_clients=((sandbox.fhir_base.rstrip("/"), "referral-system"),),
        **safety_settings(sandbox.fhir_base),
    )
    app = create_app(settings)
    yield app
    app.extensions["fhir_burnout"]["engine"].dispose()


def token(sandbox, scope="system/CarePlan.cruds"):
    referral = sandbox.client("referral-system")
    response = requests.post(
        discovery(sandbox)["token_endpoint"],
        data={"grant_type": "client_credentials", "scope": scope, "resource": APP},
        auth=(referral["client_id"], referral["client_secret"]),
        timeout=30,
    )
    response.raise_for_status()
    return response.json()["access_token"]


def parameters(patient="Patient/pat-10", **more):
    params = [{"name": "subject", "valueString": patient}]
    params += [{"name": k, "valueString": v} for k, v in more.items()]
    return {"resourceType": "Parameters", "parameter": params}


def apply(client, bearer, body, track="waiting-list"):
    headers = {"Content-Type": "application/fhir+json"}
    if bearer:
        headers["Authorization"] = f"Bearer {bearer}"
    return client.post(
        f"/fhir/PlanDefinition/{track}/$apply", data=json.dumps(body), headers=headers
    )


def test_apply_answers_with_the_care_plan_and_the_ehr_gets_it(app, sandbox, fhir):
    client = app.test_client()
    bearer = token(sandbox)
    body = parameters()
    answer = apply(client, bearer, body)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.mimetype == "application/fhir+json"
    careplan = answer.get_json()
    assert careplan["resourceType"] == "CarePlan" and careplan["status"] == "active"
    assert careplan["subject"] == {"reference": "Patient/pat-10"}
    assert "author" not in careplan  # the practice enrols; no body names an author
    assert careplan["instantiatesCanonical"][0].endswith("/PlanDefinition/waiting-list|0.1.0")
    contained = {c["id"]: c for c in careplan["contained"]}
    group = contained[careplan["activity"][0]["reference"]["reference"][1:]]
    assert group["resourceType"] == "RequestGroup"
    tasks = [c for c in contained.values() if c["resourceType"] == "Task"]
    assert tasks and all(t["basedOn"] == [{"reference": "#"}] for t in tasks)
    linked = {a["resource"]["reference"][1:] for g in group["action"] for a in g["action"]}
    assert linked == {t["id"] for t in tasks}
    # Asked again: the same plan, not a second one.
    again = apply(client, bearer, body).get_json()
    assert again["identifier"] == careplan["identifier"]
    # The worker delivers it to the EHR.
    state = app.extensions["fhir_burnout"]
    worker = Worker(state["engine"], lambda base: fhir)
    assert worker.run_once() == 1
    [found] = fhir.search(
        "CarePlan", {"identifier": "{system}|{value}".format(**careplan["identifier"][0])}
    )
    assert found["subject"] == {"reference": "Patient/pat-10"}


@pytest.mark.parametrize(
    ("bearer", "body", "track", "status", "text"),
    [
        (None, parameters(), "waiting-list", 401, "a bearer token is required"),
        ("not-a-jwt", parameters(), "waiting-list", 401, "not a JWT"),
        ("scope:system/Patient.rs", parameters(), "waiting-list", 403, "CarePlan.c"),
        ("good", {"resourceType": "Patient"}, "waiting-list", 400, "Parameters"),
        ("good", parameters(patient="Group/1"), "waiting-list", 400, "Patient"),
        ("good", {"resourceType": "Parameters"}, "waiting-list", 400, "'subject'"),
        ("good", parameters(), "nope", 404, "there is no track 'nope'"),
    ],
)
def test_bad_requests_get_an_operation_outcome(app, sandbox, bearer, body, track, status, text):
    if bearer == "good":
        bearer = token(sandbox)
    elif bearer and bearer.startswith("scope:"):
        bearer = token(sandbox, bearer[6:])
    answer = apply(app.test_client(), bearer, body, track)
    assert answer.status_code == status
    outcome = answer.get_json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert text in outcome["issue"][0]["diagnostics"]
    if status == 401:
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")


def test_an_expired_or_forged_token_is_refused(app, sandbox):
    bearer = token(sandbox)
    header, payload, signature = bearer.split(".")
    forged = ".".join([header, payload, signature[::-1]])
    answer = apply(app.test_client(), forged, parameters())
    assert answer.status_code == 401
    assert "signature" in answer.get_json()["issue"][0]["diagnostics"]
