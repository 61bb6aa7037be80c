"""The sandbox's Koppeltaal auth service and portal, seen from Python the way a module sees them.

Against the real sandbox in its Koppeltaal profile (the `kt_sandbox` fixture): a backend
token for `fhir-burnout` with an RS512 assertion, a Task assigned in the portal, the portal's
HTI launch form, and the SMART launch on it (authorize + token with PKCE). No stand-ins.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any
from urllib.parse import parse_qs, urlparse

import lxml.html
import pytest
import requests

from fhir_burnout.sandbox import SandboxInfo
from fhir_burnout.smart_launch import (
    backend_token,
    client_assertion,
    fetch_jwks,
    jwt_header,
    verify_id_token,
)

from .smart_flow import discovery, follow_to_redirect_uri, pkce_pair

KT = "http://koppeltaal.nl/fhir/StructureDefinition"
INSTANTIATES = "http://vzvz.nl/fhir/StructureDefinition/instantiates"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def _role(info: SandboxInfo, client_id: str) -> str:
    return " ".join(s for s in info.client(client_id)["scope"].split() if s.startswith("system/"))


def _module_token(info: SandboxInfo, scope: str = "system/*.cruds") -> dict[str, Any]:
    module = info.client("fhir-burnout")
    token = backend_token(
        discovery(info)["token_endpoint"], "fhir-burnout", module["private_keys"][0], scope,
        alg="RS512",
    )  # fmt: skip
    return token.raw


def _post(info: SandboxInfo, token: str, resource: dict[str, Any]) -> dict[str, Any]:
    response = requests.post(
        f"{info.fhir_base}/{resource['resourceType']}",
        json=resource,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


@pytest.fixture(scope="module")
def module_task(kt_sandbox: SandboxInfo) -> dict[str, Any]:
    """Our module published (KT2_Endpoint + KT2_ActivityDefinition) and assigned in the portal."""
    token = _module_token(kt_sandbox)["access_token"]
    launch_url = kt_sandbox.client("fhir-burnout")["launch_uri"]
    endpoint = _post(kt_sandbox, token, {
        "resourceType": "Endpoint",
        "meta": {"profile": [f"{KT}/KT2Endpoint"]},
        "status": "active",
        "connectionType": {
            "system": "http://vzvz.nl/fhir/CodeSystem/koppeltaal-endpoint-connection-type",
            "code": "hti-smart-on-fhir",
        },
        "payloadType": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/endpoint-payload-type", "code": "any",
        }]}],
        "address": launch_url,
    })  # fmt: skip
    definition = _post(kt_sandbox, token, {
        "resourceType": "ActivityDefinition",
        "meta": {"profile": [f"{KT}/KT2ActivityDefinition"]},
        "extension": [
            {"url": f"{KT}/KT2EndpointExtension",
             "valueReference": {"reference": f"Endpoint/{endpoint['id']}"}},
            {"url": f"{KT}/KT2PublisherId", "valueId": "fhir-burnout"},
        ],
        "url": f"http://fhir-burnout.example/fhir/ActivityDefinition/kt-auth-{uuid.uuid4()}",
        "title": "Ontspanning toelaten (test)",
        "status": "active",
    })  # fmt: skip
    patient = kt_sandbox.seed["patients"][0]["id"]
    practitioner = kt_sandbox.seed["practitioners"][0]["id"]
    response = requests.post(
        f"{kt_sandbox.raw['portal']}/tasks",
        json={"patient": patient, "practitioner": practitioner, "definition": definition["id"]},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    task = dict(response.json())
    assert task["status"] == "ready" and task["for"]["reference"] == f"Patient/{patient}"
    origin = next(e for e in task["extension"] if e["url"] == f"{KT}/resource-origin")
    assert origin["valueReference"]["reference"] == "Device/portal"
    instantiates = next(e for e in task["extension"] if e["url"] == INSTANTIATES)
    assert instantiates["valueReference"]["reference"] == f"ActivityDefinition/{definition['id']}"
    return {"task": task, "definition": definition, "patient": patient}


def _launch_form(info: SandboxInfo, **query: str) -> tuple[str, dict[str, str]]:
    """The portal's launch page, parsed: the form's action and its fields."""
    response = requests.get(f"{info.raw['portal']}/launch", params=query, timeout=30)
    assert response.status_code == 200, response.text
    form = lxml.html.fromstring(response.text).forms[0]
    assert form.method == "POST"
    return str(form.action), {str(k): str(v) for k, v in form.fields.items()}


def _authorize_url(info: SandboxInfo, launch: str) -> tuple[str, str, str, str]:
    """The module's authorization request for an HTI launch: its URL, the PKCE verifier, the
    state and the nonce sent."""
    client = info.client("fhir-burnout")
    verifier, challenge = pkce_pair()
    state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    params = {
        "response_type": "code",
        "client_id": "fhir-burnout",
        "redirect_uri": client["redirect_uris"][0],
        "scope": "launch openid fhirUser",
        "state": state,
        "nonce": nonce,
        "aud": info.fhir_base,
        "launch": launch,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    url = requests.Request("GET", discovery(info)["authorization_endpoint"], params=params)
    return str(url.prepare().url), verifier, state, nonce


def _authorize(info: SandboxInfo, launch: str) -> tuple[dict[str, str], str, str, str]:
    """The module's authorization request for an HTI launch, followed back to the module; the
    callback's query, the PKCE verifier, the state and the nonce sent."""
    url, verifier, state, nonce = _authorize_url(info, launch)
    redirect_uri = info.client("fhir-burnout")["redirect_uris"][0]
    callback = follow_to_redirect_uri(requests.Session(), url, redirect_uri)
    query = {k: v[0] for k, v in parse_qs(urlparse(callback).query).items()}
    return query, verifier, state, nonce


def _exchange(info: SandboxInfo, code: str, verifier: str) -> requests.Response:
    client = info.client("fhir-burnout")
    token_url = discovery(info)["token_endpoint"]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": client["redirect_uris"][0],
        "code_verifier": verifier,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": client_assertion(
            "fhir-burnout", token_url, client["private_keys"][0], alg="RS512"
        ),
    }
    return requests.post(token_url, data=form, timeout=30)


def test_backend_token_for_the_module_is_its_role_for_five_minutes(kt_sandbox):
    body = _module_token(kt_sandbox, scope="system/*.cruds user/*.cruds")
    assert body["scope"] == _role(kt_sandbox, "fhir-burnout")  # what was asked is ignored
    assert body["expires_in"] == 300
    assert "refresh_token" not in body
    patient = kt_sandbox.seed["patients"][0]["id"]
    read = requests.get(
        f"{kt_sandbox.fhir_base}/Patient/{patient}",
        headers={"Authorization": f"Bearer {body['access_token']}"},
        timeout=30,
    )
    assert read.status_code == 200


def test_smart_configuration_offers_private_key_jwt_and_s256(kt_sandbox):
    smart = discovery(kt_sandbox)
    assert smart["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    assert "RS512" in smart["token_endpoint_auth_signing_alg_values_supported"]
    assert smart["code_challenge_methods_supported"] == ["S256"]


def test_portal_launch_form_posts_launch_and_iss_to_our_endpoint(kt_sandbox, module_task):
    action, fields = _launch_form(kt_sandbox, task=module_task["task"]["id"], **{"as": "patient"})
    assert action == kt_sandbox.client("fhir-burnout")["launch_uri"]
    assert fields["iss"] == kt_sandbox.fhir_base
    assert fields["launch"].count(".") == 2  # a signed JWT


def test_hti_launch_with_pkce_gives_noop_and_the_launch_context(kt_sandbox, module_task):
    _, fields = _launch_form(kt_sandbox, task=module_task["task"]["id"], **{"as": "patient"})
    callback, verifier, state, nonce = _authorize(kt_sandbox, fields["launch"])
    assert callback["state"] == state and "error" not in callback, callback
    response = _exchange(kt_sandbox, callback["code"], verifier)
    assert response.status_code == 200, response.text
    body = response.json()
    patient = f"Patient/{module_task['patient']}"
    assert body["access_token"] == "NOOP"
    assert body["expires_in"] == 300
    assert "refresh_token" not in body
    assert body["resource"] == f"Task/{module_task['task']['id']}"
    assert body["definition"] == f"ActivityDefinition/{module_task['definition']['id']}"
    assert body["patient"] == patient and body["sub"] == patient
    smart = discovery(kt_sandbox)
    claims = verify_id_token(
        body["id_token"],
        fetch_jwks(smart["jwks_uri"], requests.Session()),
        issuer=kt_sandbox.issuer,
        client_id="fhir-burnout",
        nonce=None,  # as the reference auth service: a nonce of its own, never ours
    )
    assert claims["nonce"] and claims["nonce"] != nonce
    assert claims["iss"] == f"{kt_sandbox.issuer}/"  # the reference's URL root
    assert claims["sub"] == patient and "fhirUser" not in claims
    # Signed RS512, as the reference's TokenService signs it; our verification takes it.
    assert jwt_header(body["id_token"])["alg"] == "RS512"
    noop = requests.get(
        f"{kt_sandbox.fhir_base}/{body['resource']}",
        headers={"Authorization": "Bearer NOOP"},
        timeout=30,
    )
    assert noop.status_code == 401


@pytest.mark.parametrize(
    ("knobs", "uses"), [({"expired": "1"}, 1), ({}, 2)], ids=["expired", "replayed"]
)
def test_a_bad_launch_is_a_plain_400_at_the_authorize_endpoint(
    kt_sandbox, module_task, knobs, uses
):
    """As the reference auth service answers (AUTH e6383ae ``oauth_server/views.py``): the
    person stays at /authorize with one line of text; nothing comes back to our callback."""
    query = {"task": module_task["task"]["id"], "as": "patient", **knobs}
    _, fields = _launch_form(kt_sandbox, **query)
    for _ in range(uses - 1):
        first, *_ = _authorize(kt_sandbox, fields["launch"])
        assert "code" in first, first
    url, *_ = _authorize_url(kt_sandbox, fields["launch"])
    answer = requests.get(url, allow_redirects=False, timeout=30)
    assert answer.status_code == 400 and "Location" not in answer.headers
    assert answer.text == "Bad Request, invalid launch token"
