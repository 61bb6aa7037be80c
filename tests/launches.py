"""A SMART EHR launch of the web app against the sandbox, as the EHR's launcher starts it and
Flask's test client follows it (requests plays the browser at the authorization server)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import requests

from .smart_flow import sign_in_at_ehr


def ehr_launch_params(sandbox, patient, practitioner=None):
    params = {"app": "fhir-burnout", "patient": patient}
    if practitioner:
        params["practitioner"] = practitioner
    response = requests.get(sandbox.launcher, params=params, allow_redirects=False, timeout=30)
    return {k: v[0] for k, v in parse_qs(urlparse(response.headers["Location"]).query).items()}


def launch(client, sandbox, patient="pat-01", practitioner="prac-1", method="get"):
    params = ehr_launch_params(sandbox, patient, practitioner)
    if method == "post":
        started = client.post("/launch", data=params)
    else:
        started = client.get("/launch", query_string=params)
    assert started.status_code == 302
    return client.get(sign_in_at_ehr(started.headers["Location"]))


def as_patient(app, patient):
    """A test client of ``app`` signed in as ``patient`` through the standalone /login."""
    client = app.test_client()
    started = client.get("/login")
    client.get(sign_in_at_ehr(started.headers["Location"] + f"&login_hint=Patient/{patient}"))
    return client
