"""A referral system pushing to POST /referrals: the app it pushes to, its token, and the
FHIR it sends (a Patient with a BSN and a ServiceRequest, alone or in a Bundle)."""

from __future__ import annotations

import json
import random
import uuid

import requests
from cryptography.fernet import Fernet

from fhir_burnout.referral import valid_bsn
from fhir_burnout.settings import Settings

from .conftest import PROMISE, configured_ehr
from .smart_flow import APP, discovery

BSN = "http://fhir.nl/fhir/NamingSystem/bsn"
REFERRALS = "https://verwijs.example/referral"
PRACTICE = "Organization/practice-1"
FHIR_JSON = "application/fhir+json"


def settings_for(info, folder, database_url, *, triage=False):
    """An app that trusts the sandbox ``info`` and writes to it as the sync worker does.
    These tests follow a pushed referral to its enrolment, so the practice enrols at once
    (``referral_triage = false``); test_referral_ways pushes with triage, the default."""
    worker = info.client("fhir-burnout-worker")
    return Settings(
        base_url=APP,
        database_url=database_url,
        secret_key="referral-api-test",
        token_key=Fernet.generate_key().decode(),
        ehrs=(
            configured_ehr(
                info.fhir_base, worker_client_id="fhir-burnout-worker",
                worker_private_jwk=worker["private_keys"][0], practice=PRACTICE, triage=triage,
                api_clients=("referral-system",),
            ),
        ),
        keys_dir=folder / "keys",
        safety_promise=PROMISE,
    )  # fmt: skip


def token(info, scope="system/ServiceRequest.cruds system/Patient.cruds"):
    """A token for the referral system, for the app (RFC 8707 resource = its base URL):
    client_credentials with its client secret."""
    referral = info.client("referral-system")
    response = requests.post(
        discovery(info)["token_endpoint"],
        data={"grant_type": "client_credentials", "scope": scope, "resource": APP},
        auth=(referral["client_id"], referral["client_secret"]),
        timeout=30,
    )
    response.raise_for_status()
    return response.json()["access_token"]


def push(client, bearer, body, content_type=FHIR_JSON):
    headers = {"Content-Type": content_type}
    if bearer:
        headers["Authorization"] = f"Bearer {bearer}"
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post("/referrals", data=data, headers=headers)


def random_bsn():
    """A random 9-digit number that passes the BSN 11-test: a patient no other test has."""
    while True:
        digits = [random.randint(0, 9) for _ in range(8)]  # not a secret: a test patient
        check = sum(d * w for d, w in zip(digits, range(9, 1, -1), strict=True)) % 11
        bsn = "".join(map(str, digits)) + str(check)
        if check < 10 and valid_bsn(bsn):
            return bsn


def service_request(number=None, subject="Patient/pat-10", **changes):
    return {
        "resourceType": "ServiceRequest",
        "id": "at-the-referrer-1",
        "identifier": [{"system": REFERRALS, "value": number or f"REF-{uuid.uuid4()}"}],
        "status": "active",
        "intent": "order",
        "subject": {"reference": subject},
        "requester": {"display": "Dr. A. Verwijzer, huisarts"},
        **changes,
    }


def patient(bsn, **changes):
    return {
        "resourceType": "Patient",
        "identifier": [{"system": BSN, "value": bsn}],
        "name": [{"family": "Proefpersoon", "given": ["Referral"]}],
        "birthDate": "1980-05-17",
        **changes,
    }


def bundle(bsn, number=None, kind="transaction", **patient_changes):
    full_url = f"urn:uuid:{uuid.uuid4()}"
    entries = [
        {"fullUrl": full_url, "resource": patient(bsn, **patient_changes)},
        {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": service_request(number, full_url)},
    ]
    if kind != "collection":
        entries[0]["request"] = {"method": "POST", "url": "Patient"}
        entries[1]["request"] = {"method": "POST", "url": "ServiceRequest"}
    return {"resourceType": "Bundle", "type": kind, "entry": entries}
