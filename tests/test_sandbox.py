"""The sandbox EHR, seen through the project's own FHIR client and SMART code.

Everything here runs against the real sandbox (Medplum's FHIR router and oidc-provider,
started by the `sandbox` fixture): no stand-ins.
"""

from __future__ import annotations

import base64
import copy
import json
import signal
import subprocess
import time
import uuid

import pytest
import requests
from joserfc.jwk import RSAKey

from fhir_burnout.errors import FhirServerError
from fhir_burnout.fhir import FhirClient
from fhir_burnout.resources._publish import publish
from fhir_burnout.sandbox import SandboxInfo, SandboxProcess, start_sandbox
from fhir_burnout.smart_launch import TokenRequestError, backend_token

from .smart_flow import authorize, discovery, ehr_launch, exchange


def test_metadata_and_smart_configuration_need_no_token(sandbox):
    metadata = requests.get(f"{sandbox.fhir_base}/metadata", timeout=30).json()
    assert metadata["resourceType"] == "CapabilityStatement"
    assert metadata["fhirVersion"].startswith("4.0")
    smart = discovery(sandbox)
    assert smart["code_challenge_methods_supported"] == ["S256"]
    assert "launch-ehr" in smart["capabilities"] and "permission-v2" in smart["capabilities"]


def test_a_request_without_a_token_is_401(sandbox):
    with FhirClient(sandbox.fhir_base) as anonymous, pytest.raises(FhirServerError) as caught:
        anonymous.read("Patient", "pat-01")
    assert caught.value.status == 401
    assert caught.value.server_outcome["resourceType"] == "OperationOutcome"


def test_seed_has_a_practice_practitioners_and_twenty_patients_some_referred(sandbox, fhir):
    assert len(sandbox.seed["patients"]) >= 20
    assert len(sandbox.seed["practitioners"]) >= 3
    referrals = list(fhir.search("ServiceRequest", {"status": "active"}))
    assert referrals and all(r["subject"]["reference"].startswith("Patient/") for r in referrals)
    patient = fhir.read("Patient", sandbox.seed["patients"][0]["id"])
    assert patient["identifier"][0]["system"].endswith("/sandbox/identifier")


def test_stale_if_match_is_412(fhir):
    created = fhir.create({"resourceType": "Patient", "name": [{"family": "Voorbeeld-If-Match"}]})
    first_version = created["meta"]["versionId"]
    fhir.update({**created, "active": True}, version_id=first_version)
    with pytest.raises(FhirServerError) as caught:
        fhir.update({**created, "active": False}, version_id=first_version)
    assert caught.value.status == 412


def test_invalid_resource_is_400_with_operation_outcome(fhir):
    with pytest.raises(FhirServerError) as caught:
        fhir.create({"resourceType": "Patient", "gender": "mostly", "birthDate": "yesterday"})
    assert caught.value.status == 400
    assert caught.value.server_outcome["issue"]


def test_a_failed_transaction_leaves_nothing_behind(fhir):
    marker = f"tx-{uuid.uuid4().hex[:8]}"
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:" + str(uuid.uuid4()),
                "resource": {
                    "resourceType": "Patient",
                    "identifier": [{"system": "urn:test", "value": marker}],
                },
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "resource": {"resourceType": "Task", "status": "not-a-status", "intent": "order"},
                "request": {"method": "POST", "url": "Task"},
            },
        ],
    }
    with pytest.raises(FhirServerError) as caught:
        fhir.transaction(bundle)
    assert caught.value.status == 400
    assert list(fhir.search("Patient", {"identifier": f"urn:test|{marker}"})) == []


def test_conditional_create_returns_the_existing_resource(fhir):
    marker = f"cc-{uuid.uuid4().hex[:8]}"
    patient = {"resourceType": "Patient", "identifier": [{"system": "urn:test", "value": marker}]}
    first = fhir.create(patient, if_none_exist=f"identifier=urn:test|{marker}")
    second = fhir.create(patient, if_none_exist=f"identifier=urn:test|{marker}")
    assert first["id"] == second["id"]
    assert len(list(fhir.search("Patient", {"identifier": f"urn:test|{marker}"}))) == 1


def test_ehr_launch_gives_the_launch_context(sandbox):
    token = ehr_launch(sandbox, patient="pat-01", practitioner="prac-1")
    assert token["patient"] == "pat-01"
    assert token["fhirUser"].endswith("Practitioner/prac-1")
    assert token["need_patient_banner"] is True
    assert "id_token" in token


def test_a_token_for_patient_a_cannot_read_patient_b(sandbox):
    token = ehr_launch(sandbox, patient="pat-02")
    with FhirClient(sandbox.fhir_base, token=token["access_token"]) as client:
        assert client.read("Patient", "pat-02")["id"] == "pat-02"
        with pytest.raises(FhirServerError) as caught:
            client.read("Patient", "pat-03")
        assert caught.value.status in (403, 404)
        found = list(client.search("ServiceRequest", {}))
        assert all(r["subject"]["reference"] == "Patient/pat-02" for r in found)


def test_standalone_patient_login_with_login_hint(sandbox):
    callback, verifier, _ = authorize(
        sandbox, "launch/patient openid fhirUser patient/*.rs", login_hint="Patient/pat-05"
    )
    token = exchange(sandbox, callback["code"], verifier).json()
    assert token["patient"] == "pat-05"
    assert token["fhirUser"].endswith("Patient/pat-05")


@pytest.mark.parametrize("method", [None, "plain"])
def test_authorization_without_s256_pkce_is_refused(sandbox, method):
    callback, _, _ = authorize(
        sandbox,
        "launch/patient openid fhirUser patient/*.rs",
        login_hint="Patient/pat-05",
        code_challenge_method=method,
    )
    # the error comes back to the app's redirect_uri (RFC 6749 §4.1.2.1), never a code
    assert callback.get("error") == "invalid_request"
    assert "code" not in callback


def test_a_code_without_its_verifier_is_refused(sandbox):
    callback, _verifier, _ = authorize(
        sandbox, "launch/patient patient/*.rs", login_hint="Patient/pat-06"
    )
    response = exchange(sandbox, callback["code"], None)
    assert response.status_code == 400
    assert response.json()["error"] in ("invalid_grant", "invalid_request")


def test_backend_services_assertion_signed_with_the_wrong_key_is_refused(sandbox):
    token_url = discovery(sandbox)["token_endpoint"]
    stranger = RSAKey.generate_key(2048, private=True).as_dict(private=True)
    stranger |= {"alg": "RS384", "kid": "worker-rs384"}
    with pytest.raises(TokenRequestError) as caught:
        backend_token(token_url, "fhir-burnout-worker", stranger, "system/*.rs")
    assert caught.value.error == "invalid_client"


@pytest.mark.parametrize("key_index", [0, 1], ids=["RS384", "ES384"])
def test_backend_services_token_with_each_algorithm(sandbox, key_index):
    worker = sandbox.client("fhir-burnout-worker")
    token = backend_token(
        discovery(sandbox)["token_endpoint"],
        "fhir-burnout-worker",
        worker["private_keys"][key_index],
        "system/Patient.rs",
    )
    with FhirClient(sandbox.fhir_base, token=token.access_token) as client:
        assert client.read("Patient", "pat-01")["id"] == "pat-01"


def test_publishing_twice_creates_nothing_new(fhir, resources):
    mine = copy.deepcopy(resources)
    first = publish(mine, fhir)
    assert {s.action for s in first} <= {"create", "unchanged"}
    second = publish(mine, fhir)
    assert {s.action for s in second} == {"unchanged"}
    found = list(fhir.search("PlanDefinition", {"url": mine[-1]["url"]}))
    assert len(found) == 1


def test_a_patient_app_can_read_the_published_questionnaires(sandbox, fhir, resources):
    publish(copy.deepcopy(resources), fhir)
    token = ehr_launch(sandbox, patient="pat-04", scope="launch openid fhirUser patient/*.rs")
    with FhirClient(sandbox.fhir_base, token=token["access_token"]) as client:
        found = list(client.search("Questionnaire", {"url": resources_url(resources, "phq-9")}))
        assert [q["id"] for q in found] and found[0]["title"]
        with pytest.raises(FhirServerError) as caught:
            client.create({"resourceType": "Questionnaire", "status": "draft"})
        assert caught.value.status == 403


def resources_url(resources, questionnaire_id):
    return next(
        r["url"]
        for r in resources
        if r["resourceType"] == "Questionnaire" and r["id"] == questionnaire_id
    )


def test_two_sandboxes_run_side_by_side(sandbox):
    with start_sandbox() as other:
        assert other.fhir_base != sandbox.fhir_base
        for info in (sandbox, other):
            assert requests.get(f"{info.fhir_base}/metadata", timeout=30).status_code == 200


def test_fhir_burnout_sandbox_runs_in_the_foreground_and_stops_on_sigterm(tmp_path, root):
    info_file = tmp_path / "info.json"
    command = [str(root / ".venv" / "bin" / "fhir-burnout"), "sandbox", "--info", str(info_file)]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        printed = []
        for line in process.stdout:
            printed.append(line)
            if line.startswith("Info file:"):
                break
        info = json.loads(info_file.read_text())
        assert {"fhir_base", "issuer", "launcher", "clients", "seed"} <= set(info)
        assert any(line.startswith("FHIR server:") for line in printed)
        referral = next(c for c in info["clients"] if c["client_id"] == "referral-system")
        assert (
            referral["client_secret"]
            and referral["token_endpoint_auth_method"] == "client_secret_basic"
        )
        worker = next(c for c in info["clients"] if c["client_id"] == "fhir-burnout-worker")
        assert {k["alg"] for k in worker["private_keys"]} == {"RS384", "ES384"}
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=10)
        process.stdout.close()
    assert code == 0
    assert not info_file.exists()  # a stopped sandbox leaves no stale info behind


def test_client_config_registers_another_app(tmp_path):
    config = tmp_path / "clients.json"
    config.write_text(
        json.dumps(
            {
                "clients": [
                    {
                        "client_id": "other-app",
                        "token_endpoint_auth_method": "none",
                        "grant_types": ["authorization_code"],
                        "redirect_uris": ["http://127.0.0.1:9999/cb"],
                        "launch_uri": "http://127.0.0.1:9999/start",
                        "scope": "launch openid fhirUser patient/Patient.rs",
                    }
                ]
            }
        )
    )
    with start_sandbox(client_config=config) as info:
        response = requests.get(
            info.launcher,
            params={"app": "other-app", "patient": "pat-07"},
            allow_redirects=False,
            timeout=30,
        )
        assert response.status_code == 302
        assert response.headers["Location"].startswith("http://127.0.0.1:9999/start?")
        unknown = requests.get(
            info.launcher, params={"app": "nope", "patient": "pat-07"}, timeout=30
        )
        assert unknown.status_code == 400


def test_a_token_without_the_scope_for_an_interaction_is_403(sandbox):
    worker = sandbox.client("fhir-burnout-worker")
    token_url = discovery(sandbox)["token_endpoint"]
    token = backend_token(
        token_url, "fhir-burnout-worker", worker["private_keys"][0], "system/Patient.rs"
    )
    with FhirClient(sandbox.fhir_base, token=token.access_token) as client:
        with pytest.raises(FhirServerError) as caught:
            client.create({"resourceType": "Task", "status": "requested", "intent": "order"})
        assert caught.value.status == 403
        assert caught.value.server_outcome["resourceType"] == "OperationOutcome"


# --- Restarts (--data), token lifetime (--token-ttl) and rate limit (--rate-limit) ---------


def worker_token_for(info: SandboxInfo, scope: str = "system/*.cruds") -> str:
    """A backend-services token for the worker, signed with its RS384 key from ``info``."""
    worker = info.client("fhir-burnout-worker")
    token_url = discovery(info)["token_endpoint"]
    return backend_token(
        token_url, "fhir-burnout-worker", worker["private_keys"][0], scope
    ).access_token


@pytest.fixture(scope="module")
def durable_sandbox(tmp_path_factory):
    """A sandbox with a data directory, for tests that stop or kill it and start it again."""
    with SandboxProcess(data_dir=tmp_path_factory.mktemp("ehr-data")) as process:
        yield process


def test_a_restart_with_data_keeps_the_store_and_the_worker_credentials(durable_sandbox):
    before = durable_sandbox.info
    with FhirClient(before.fhir_base, token=worker_token_for(before)) as client:
        created = client.create({"resourceType": "Patient", "name": [{"family": "Herstart"}]})

    durable_sandbox.stop()
    after = durable_sandbox.start()

    assert after.fhir_base == before.fhir_base  # same port
    assert after.raw["restored"] is True
    assert after.client("fhir-burnout-worker") == before.client("fhir-burnout-worker")
    # The worker's key from before the restart still gets a token, and the Patient is there.
    with FhirClient(after.fhir_base, token=worker_token_for(before)) as client:
        assert client.read("Patient", created["id"]) == created
        found = list(client.search("Patient", {"identifier": "pat-01"}))
        assert len(found) == 1  # the seed was not added again


def test_a_create_answered_just_before_sigkill_survives(durable_sandbox):
    info = durable_sandbox.info
    token = worker_token_for(info)
    with FhirClient(info.fhir_base, token=token) as client:
        created = client.create({"resourceType": "Patient", "name": [{"family": "Gecrasht"}]})
    durable_sandbox.kill()
    assert not durable_sandbox.running

    durable_sandbox.start()
    # A token from before the crash is still good: the signing key is kept too.
    with FhirClient(info.fhir_base, token=token) as client:
        assert client.read("Patient", created["id"]) == created


@pytest.fixture(scope="module")
def limited_sandbox():
    """Short-lived tokens and a rate limit (per client: each test below uses another one)."""
    with start_sandbox(token_ttl=2, rate_limit=3) as info:
        yield info


def test_an_expired_token_is_401(limited_sandbox):
    token = backend_token(
        discovery(limited_sandbox)["token_endpoint"],
        "fhir-burnout-worker",
        limited_sandbox.client("fhir-burnout-worker")["private_keys"][0],
        "system/Patient.rs",
    )
    assert token.expires_in == 2
    with FhirClient(limited_sandbox.fhir_base, token=token.access_token) as client:
        assert client.read("Patient", "pat-01")["id"] == "pat-01"
        payload = token.access_token.split(".")[1]
        expires = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["exp"]
        time.sleep(max(0.0, expires - time.time()) + 0.05)
        with pytest.raises(FhirServerError) as caught:
            client.read("Patient", "pat-01")
    assert caught.value.status == 401


def referral_token(info: SandboxInfo) -> str:
    referral = info.client("referral-system")
    response = requests.post(
        discovery(info)["token_endpoint"],
        data={"grant_type": "client_credentials", "scope": "system/Patient.rs"},
        auth=(referral["client_id"], referral["client_secret"]),
        timeout=30,
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def test_over_the_rate_limit_is_429_with_retry_after(limited_sandbox):
    url = f"{limited_sandbox.fhir_base}/Patient/pat-01"
    headers = {"Authorization": f"Bearer {referral_token(limited_sandbox)}"}
    with requests.Session() as http:
        answers = [http.get(url, headers=headers, timeout=30) for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        refused = answers[-1]
        retry_after = int(refused.headers["Retry-After"])
        assert retry_after >= 1
        assert refused.json()["issue"][0]["code"] == "throttled"
        assert http.get(f"{limited_sandbox.fhir_base}/metadata", timeout=30).status_code == 200

        time.sleep(retry_after)
        # A new token: with a 2 s lifetime the first may have expired meanwhile.
        headers = {"Authorization": f"Bearer {referral_token(limited_sandbox)}"}
        assert http.get(url, headers=headers, timeout=30).status_code == 200
