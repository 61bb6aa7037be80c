"""POST /fhir/PlanDefinition/{id}/$apply on the app, as a referral system calls it."""

from __future__ import annotations

import json

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fhir_burnout.sandbox import SandboxProcess
from fhir_burnout.settings import Settings
from fhir_burnout.sync import OutboxEntry, Worker
from fhir_burnout.web import create_app
from fhir_burnout.workflow import EnrolmentRow

from .conftest import PROMISE, configured_ehr
from .referrals import settings_for
from .referrals import token as referral_token

APP = "http://127.0.0.1:8000"
FHIR_JSON = "application/fhir+json"


@pytest.fixture
def app(sandbox, tmp_path, database_url):
    # The referral tests' app: the worker writes for the practice, the referral system calls.
    settings = settings_for(sandbox, tmp_path, database_url)
    app = create_app(settings)
    yield app
    app.extensions["fhir_burnout"]["engine"].dispose()


def token(sandbox, scope="system/CarePlan.cruds"):
    """A referral-system token for the app, for the CarePlan API by default."""
    return referral_token(sandbox, scope)


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


def raw(params):
    return {"resourceType": "Parameters", "parameter": params}


SUBJECT = {"name": "subject", "valueReference": {"reference": "Patient/pat-10"}}
MALFORMED = [
    # (id, body, status, what the first issue says)
    ("not JSON", b"{nope", 400, "not JSON"),
    ("a list", [], 400, "Parameters resource"),
    ("parameter not a list", {"resourceType": "Parameters", "parameter": {}}, 400, "a list"),
    ("a parameter not an object", raw(["subject"]), 400, "a list"),
    ("no name", raw([{"valueString": "Patient/pat-10"}]), 400, "has no name"),
    ("two subjects", raw([SUBJECT, SUBJECT]), 400, "more than once"),
    ("unknown", raw([SUBJECT, {"name": "encounter", "valueString": "x"}]), 400, "unknown"),
    ("no value", raw([{"name": "subject"}]), 400, "exactly one value"),
    ("a resource", raw([{"name": "subject", "resource": {"resourceType": "Patient"}}]), 400,
     "exactly one value"),
    ("a number", raw([{"name": "subject", "valueInteger": 7}]), 400, "another type"),
    ("an empty id", parameters("Patient/"), 400, "Patient/<id>"),
    ("a path", parameters("Patient/../Patient/pat-10"), 400, "Patient/<id>"),
    ("a space", parameters("Patient/pat 10"), 400, "Patient/<id>"),
    ("65 characters", parameters("Patient/" + "a" * 65), 400, "Patient/<id>"),
    ("5,000 characters", parameters("Patient/" + "a" * 5000), 400, "Patient/<id>"),
    ("200,000 characters", parameters("Patient/" + "a" * 200_000), 413, "at most"),
    ("an author", parameters(practitioner="Practitioner/prac-2"), 400, "configuration"),
    ("a practice", parameters(organization="Organization/other"), 400, "configuration"),
    ("no such patient", parameters("Patient/nobody-here"), 422, "no such patient"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "status", "says"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_what_apply_does_not_take_is_refused_and_nothing_is_stored(
    app, sandbox, body, status, says
):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    answer = app.test_client().post(
        "/fhir/PlanDefinition/waiting-list/$apply",
        data=data,
        headers={
            "Content-Type": "application/fhir+json",
            "Authorization": f"Bearer {token(sandbox)}",
        },
    )
    assert answer.status_code == status, answer.get_data(as_text=True)
    assert answer.mimetype == "application/fhir+json"
    assert says in answer.get_json()["issue"][0]["diagnostics"]
    with Session(app.extensions["fhir_burnout"]["engine"]) as db:
        assert db.scalar(select(func.count()).select_from(EnrolmentRow)) == 0
        assert db.scalar(select(func.count()).select_from(OutboxEntry)) == 0


def test_a_content_type_apply_does_not_take_is_refused(app, sandbox):
    answer = app.test_client().post(
        "/fhir/PlanDefinition/waiting-list/$apply",
        data=json.dumps(parameters()),
        headers={"Content-Type": "text/plain", "Authorization": f"Bearer {token(sandbox)}"},
    )
    assert answer.status_code == 415 and answer.get_json()["issue"][0]["code"] == "not-supported"


def test_while_the_ehr_is_down_apply_stores_nothing_and_asks_to_retry(tmp_path, database_url):
    with SandboxProcess() as ehr:
        settings = Settings(
            base_url=APP, database_url=database_url, secret_key="api-test",
            token_key=Fernet.generate_key().decode(),
            ehrs=(
                configured_ehr(
                    ehr.info.fhir_base, worker_client_id="fhir-burnout-worker",
                    practice="Organization/practice-1",
                    worker_private_jwk=ehr.info.client("fhir-burnout-worker")["private_keys"][0],
                    api_clients=("referral-system",),
                ),
            ),
            keys_dir=tmp_path / "keys",
            safety_promise=PROMISE,
        )  # fmt: skip
        app = create_app(settings)
        client, bearer = app.test_client(), token(ehr.info)
        # The authorization server's keys are fetched first (a refusal needs them too).
        assert apply(client, bearer, parameters("Patient/")).status_code == 400
        ehr.stop()
        answer = apply(client, bearer, parameters())
        assert answer.status_code == 503, answer.get_data(as_text=True)
        assert int(answer.headers["Retry-After"]) >= 1
        assert answer.get_json()["issue"][0]["code"] == "transient"
        with Session(app.extensions["fhir_burnout"]["engine"]) as db:
            assert db.scalar(select(func.count()).select_from(EnrolmentRow)) == 0
        app.extensions["fhir_burnout"]["engine"].dispose()
