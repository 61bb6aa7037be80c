"""Driving a SMART launch the way a browser would, with requests (no browser needed).

The sandbox signs the user in from the launch context without a password prompt (like the
SMART reference launcher), so following its redirects completes the whole launch.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urljoin, urlparse

import requests

from fhir_burnout.sandbox import SandboxInfo


def discovery(info: SandboxInfo) -> dict:
    response = requests.get(f"{info.fhir_base}/.well-known/smart-configuration", timeout=30)
    response.raise_for_status()
    return response.json()


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    return verifier, challenge.decode()


def follow_to_redirect_uri(session: requests.Session, url: str, redirect_uri: str) -> str:
    """Follow the authorization server's redirects until it sends us to redirect_uri."""
    for _ in range(20):
        response = session.get(url, allow_redirects=False, timeout=30)
        if response.status_code not in (302, 303):
            raise AssertionError(
                f"no redirect from {url}: {response.status_code} {response.text[:300]}"
            )
        url = urljoin(url, response.headers["Location"])
        if url.startswith(redirect_uri):
            return url
    raise AssertionError("too many redirects")


def authorize(
    info: SandboxInfo,
    scope: str,
    *,
    launch: str | None = None,
    login_hint: str | None = None,
    code_challenge_method: str | None = "S256",
    client_id: str = "fhir-burnout",
    aud: str | None = None,
) -> tuple[dict, str, requests.Session]:
    """Run the authorization request; returns the callback's query, the verifier and session.
    ``aud``: the resource server the token is for (default: the EHR's FHIR base)."""
    smart = discovery(info)
    client = info.client(client_id)
    redirect_uri = client["redirect_uris"][0]
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(16)
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": scope,
        "state": state,
        "aud": aud or info.fhir_base,
    }
    if code_challenge_method:
        params |= {"code_challenge": challenge, "code_challenge_method": code_challenge_method}
    if launch:
        params["launch"] = launch
    if login_hint:
        params["login_hint"] = login_hint
    session = requests.Session()
    url = requests.Request("GET", smart["authorization_endpoint"], params=params).prepare().url
    callback = follow_to_redirect_uri(session, url, redirect_uri)
    query = {k: v[0] for k, v in parse_qs(urlparse(callback).query).items()}
    assert query.get("state") == state
    return query, verifier, session


def exchange(info: SandboxInfo, code: str, verifier: str | None) -> requests.Response:
    smart = discovery(info)
    client = info.client("fhir-burnout")
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": client["redirect_uris"][0],
        "client_id": "fhir-burnout",
    }
    if verifier is not None:
        form["code_verifier"] = verifier
    return requests.post(smart["token_endpoint"], data=form, timeout=30)


def ehr_launch(
    info: SandboxInfo,
    patient: str,
    practitioner: str | None = None,
    scope: str = "launch openid fhirUser patient/*.rs",
    aud: str | None = None,
) -> dict:
    """Launch from the EHR launcher for a patient; returns the token response."""
    params = {"app": "fhir-burnout", "patient": patient}
    if practitioner:
        params["practitioner"] = practitioner
    response = requests.get(info.launcher, params=params, allow_redirects=False, timeout=30)
    assert response.status_code == 302, response.text
    launch_url = urlparse(response.headers["Location"])
    query = {k: v[0] for k, v in parse_qs(launch_url.query).items()}
    assert query["iss"] == info.fhir_base
    callback, verifier, _ = authorize(info, scope, launch=query["launch"], aud=aud)
    token = exchange(info, callback["code"], verifier)
    assert token.status_code == 200, token.text
    return token.json()


APP = "http://127.0.0.1:8000"  # the sandbox registers fhir-burnout with this redirect URI


def sign_in_at_ehr(authorize_url: str) -> str:
    """The person at the EHR: returns the path and query the EHR sends the browser back to."""
    callback = follow_to_redirect_uri(requests.Session(), authorize_url, f"{APP}/callback")
    parsed = urlparse(callback)
    return f"{parsed.path}?{parsed.query}"
