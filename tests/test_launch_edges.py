"""Launches that work at EHRs other than the default sandbox (issue 17, points 3, 7 and 8):
minimal scopes per role, discovery from /metadata alone or without ``issuer``, and a v1
``profile`` claim. Each EHR is a real sandbox started with the flags that make it behave so
(``--strict-scopes``, ``--discovery``, ``--profile-claim``); the app is the real app.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from fhir_burnout.errors import ContentError
from fhir_burnout.sandbox import start_sandbox
from fhir_burnout.settings import Ehr, Settings
from fhir_burnout.smart_launch import (
    IdTokenError,
    SmartConfiguration,
    begin_launch,
    complete_launch,
    discover,
    launch_scopes,
)
from fhir_burnout.smart_launch._id_token import openid_issuer
from fhir_burnout.web import create_app

from .conftest import ROOT, SAFETY_OWNER_TOML, SAFETY_TOML, app_settings, configured_ehr
from .smart_flow import APP, follow_to_redirect_uri, sign_in_at_ehr

#: Registered with only what a client's launch needs (an EHR's patient-facing registration).
PATIENT_SCOPES = "launch launch/patient openid fhirUser offline_access patient/Patient.r"


def docs_scopes() -> dict[tuple[str, str], str]:
    """The scope strings docs/launch.md promises, by (launch, scope version)."""
    text = (ROOT / "docs" / "launch.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (care professional|portal|standalone) \| (v1|v2) \| `([^`]+)` \|$",
                      text, re.MULTILINE)  # fmt: skip
    return {(kind, version): scope for kind, version, scope in rows}


@pytest.mark.parametrize("v2", [True, False])
def test_the_scope_string_for_each_role_is_exactly_what_the_docs_say(v2):
    documented = docs_scopes()
    version = "v2" if v2 else "v1"
    asked = {
        "care professional": launch_scopes(role="practitioner", v2=v2, ehr_launch=True),
        "portal": launch_scopes(role="patient", v2=v2, ehr_launch=True),
        "standalone": launch_scopes(role="patient", v2=v2, ehr_launch=False),
    }
    assert {kind: request.scope for kind, request in asked.items()} == {
        kind: documented[(kind, version)] for kind in asked
    }


def scope_asked(response) -> str:
    """The scope a launch route sent the browser to ask the authorization server for."""
    return parse_qs(urlparse(response.headers["Location"]).query)["scope"][0]


def launcher(info, **params) -> tuple[str, str]:
    """The sandbox EHR opens the app: (path, query) of the launch URL it sends the browser to."""
    response = requests.get(info.launcher, params=params, allow_redirects=False, timeout=30)
    location = urlparse(response.headers["Location"])
    return location.path, location.query


def test_the_web_app_asks_each_role_the_documented_scopes(app, sandbox):
    """The sandbox advertises v2 scopes: each launch URL asks exactly its row of the table."""
    documented = docs_scopes()
    client = app.test_client()
    path, query = launcher(sandbox, app="fhir-burnout", patient="pat-01", practitioner="prac-1")
    assert scope_asked(client.get(f"{path}?{query}")) == documented[("care professional", "v2")]
    path, query = launcher(sandbox, app="fhir-burnout", patient="pat-01", portal="1")
    assert path == "/launch/patient"
    assert scope_asked(client.get(f"{path}?{query}")) == documented[("portal", "v2")]
    assert scope_asked(client.get("/login")) == documented[("standalone", "v2")]


@pytest.fixture(scope="module")
def strict_ehr(tmp_path_factory):
    """An EHR that registered the app's client only with the patient scopes, and refuses any
    authorization request that asks more (invalid_scope), as some EHRs do."""
    folder = tmp_path_factory.mktemp("strict")
    client = {
        "client_id": "patient-app",
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "redirect_uris": [f"{APP}/callback"],
        "launch_uri": f"{APP}/launch",
        "portal_launch_uri": f"{APP}/launch/patient",
        "scope": PATIENT_SCOPES,
    }
    (folder / "clients.json").write_text(json.dumps({"clients": [client]}))
    with start_sandbox(client_config=folder / "clients.json", strict_scopes=True) as info:
        yield info


@pytest.fixture
def strict_app(strict_ehr, tmp_path):
    settings = app_settings(strict_ehr.fhir_base, tmp_path)
    ehr = configured_ehr(strict_ehr.fhir_base, "patient-app")
    app = create_app(dataclasses.replace(settings, ehrs=(ehr,)))
    yield app
    app.extensions["fhir_burnout"]["engine"].dispose()


def signed_in_row(app, client):
    with client.session_transaction() as kept:
        sid = kept.get("sid")
    return app.extensions["fhir_burnout"]["store"].get(sid) if sid else None


def test_an_ehr_that_registered_only_the_patient_scopes_accepts_the_clients_launches(
    strict_ehr, strict_app
):
    """The patient-portal launch and the standalone login ask nothing beyond the client's
    scopes, so such an EHR lets the client in (with a refresh token, for a long session).
    A care professional's launch there asks user/ scopes the EHR never registered: refused,
    which shows the EHR really is strict."""
    standalone = strict_app.test_client()
    started = standalone.get("/login")
    standalone.get(sign_in_at_ehr(started.headers["Location"] + "&login_hint=Patient/pat-05"))
    assert standalone.get("/").status_code == 200
    assert signed_in_row(strict_app, standalone).patient == "pat-05"

    portal = strict_app.test_client()
    path, query = launcher(strict_ehr, app="patient-app", patient="pat-04", portal="1")
    started = portal.get(f"{path}?{query}")
    assert started.status_code == 302, started.get_data(as_text=True)
    assert portal.get(sign_in_at_ehr(started.headers["Location"])).status_code == 302
    home = portal.get("/", headers={"Accept-Language": "nl"})
    assert home.status_code == 200 and "ingelogd met je eigen gegevens" in home.get_data(True)
    row = signed_in_row(strict_app, portal)
    assert row.role == "patient" and row.patient == "pat-04" and row.refresh_token

    desk = strict_app.test_client()
    path, query = launcher(strict_ehr, app="patient-app", patient="pat-04", practitioner="prac-1")
    refused = desk.get(sign_in_at_ehr(desk.get(f"{path}?{query}").headers["Location"]))
    assert refused.status_code == 400 and signed_in_row(strict_app, desk) is None


def test_an_ehrs_scope_override_and_offline_access_setting_are_what_is_asked(tmp_path):
    base = "https://ehr.example.nl/fhir"
    config = tmp_path / "app.toml"
    ehr_block = (
        'base_url = "https://app.example.nl"\nsecret_key = "s"\ntoken_key = "k"\n'
        f'{SAFETY_TOML}[[ehr]]\nfhir_base = "{base}"\nclient_id = "app"\n{SAFETY_OWNER_TOML}'
        'writes = "backend"\n'  # the worker writes itself: people's tokens only read
    )  # fmt: skip
    config.write_text(
        ehr_block + 'scopes_practitioner = "openid fhirUser user/Practitioner.rs  user/Patient.rs"'
        "\noffline_access = true\n"
    )
    [ehr] = Settings.from_file(config).ehrs
    smart = SmartConfiguration(
        fhir_base=base, authorization_endpoint=f"{base}/authorize", token_endpoint=f"{base}/t",
        capabilities=frozenset({"permission-v2"}), code_challenge_methods=frozenset({"S256"}),
    )  # fmt: skip
    _, pending, _ = begin_launch(ehr, smart, "https://app.example.nl/callback", launch="x")
    assert pending.scope == (
        "launch openid fhirUser user/Practitioner.rs user/Patient.rs offline_access"
    )
    _, pending, _ = begin_launch(ehr, smart, "https://app.example.nl/callback")
    assert pending.scope == "launch/patient openid fhirUser patient/Patient.r offline_access"
    never = dataclasses.replace(ehr, offline_access=False)
    _, pending, _ = begin_launch(never, smart, "https://app.example.nl/callback")
    assert "offline_access" not in pending.scope.split()
    online = dataclasses.replace(smart, capabilities=frozenset({"permission-online"}))
    _, pending, _ = begin_launch(never, online, "https://app.example.nl/callback", launch="x")
    assert pending.scope.split()[-1] == "online_access"  # and v1, as this one advertises

    # An EHR without Backend Services for the worker: the worker writes with the person's
    # own token, so both roles ask what it writes, and a refresh token to write it later.
    by_user = dataclasses.replace(ehr, scopes_practitioner=None, writes="user")
    for launch in ("x", None):
        _, pending, _ = begin_launch(by_user, smart, "https://app.example.nl/cb", launch=launch)
        asked = pending.scope.split()
        assert {"patient/QuestionnaireResponse.cru", "patient/Task.cru"} <= set(asked)
        assert "patient/CarePlan.cru" in asked and asked[-1] == "offline_access"

    for line, says in [
        ('scopes_patient = "launch/patient patient/Patient.r"', "leave out launch/patient"),
        ("scopes_patient = 3", "must be a string of scopes"),
        ('offline_access = "yes"', "must be true or false"),
    ]:
        config.write_text(ehr_block + line + "\n")
        with pytest.raises(ContentError, match=says):
            Settings.from_file(config)


# --- EHRs that publish less, or name the user the v1 way ---------------------------------


@pytest.fixture(scope="module", params=["metadata-only", "no-issuer", "profile-claim"])
def other_ehr(request):
    """A sandbox EHR with its endpoints only in /metadata, a SMART configuration without
    ``issuer``, or id_tokens that name the user in a v1 ``profile`` claim."""
    options = (
        {"profile_claim": True}
        if request.param == "profile-claim"
        else {"discovery": request.param}
    )
    with start_sandbox(**options) as info:
        yield request.param, info


def test_discovery_says_where_the_endpoints_came_from(other_ehr):
    kind, info = other_ehr
    with requests.Session() as session:
        smart = discover(info.fhir_base, session)
    assert smart.source == ("metadata" if kind == "metadata-only" else "smart-configuration")
    assert smart.token_endpoint == f"{info.issuer}/token"
    assert (smart.issuer is None) == (kind != "profile-claim")


def test_launches_complete_at_such_an_ehr_as_a_care_professional_and_as_a_client(
    other_ehr, tmp_path
):
    """Through the real app: the care professional's launch shows the patient banner, the
    client's standalone login their own page; both know who signed in."""
    _, info = other_ehr
    app = create_app(app_settings(info.fhir_base, tmp_path))
    try:
        desk = app.test_client()
        path, query = launcher(info, app="fhir-burnout", patient="pat-02", practitioner="prac-1")
        desk.get(sign_in_at_ehr(desk.get(f"{path}?{query}").headers["Location"]))
        page = desk.get("/", headers={"Accept-Language": "nl"})
        assert page.status_code == 200, page.get_data(as_text=True)
        assert "Welkom, Mirjam Behandelaar." in page.get_data(as_text=True)
        assert "Cliënt: Bram van Proefpersoon" in page.get_data(as_text=True)
        assert signed_in_row(app, desk).role == "practitioner"

        home = app.test_client()
        started = home.get("/login")
        home.get(sign_in_at_ehr(started.headers["Location"] + "&login_hint=Patient/pat-05"))
        page = home.get("/", headers={"Accept-Language": "en"})
        assert "Welcome, Eva van der Fictief." in page.get_data(as_text=True)
        assert signed_in_row(app, home).role == "patient"
    finally:
        app.extensions["fhir_burnout"]["engine"].dispose()


@pytest.mark.parametrize("other_ehr", ["profile-claim"], indirect=True)
def test_a_v1_profile_claim_identifies_the_user_as_fhir_user_would(other_ehr):
    """At the id_token level: no fhirUser anywhere, yet the launch result names the user."""
    _, info = other_ehr
    ehr = Ehr(fhir_base=info.fhir_base, client_id="fhir-burnout")
    with requests.Session() as session:
        smart = discover(info.fhir_base, session)
        _, query = launcher(info, app="fhir-burnout", patient="pat-03", practitioner="prac-2")
        launch = parse_qs(query)["launch"][0]
        url, pending, scopes = begin_launch(ehr, smart, f"{APP}/callback", launch=launch)
        callback_url = follow_to_redirect_uri(requests.Session(), url, f"{APP}/callback")
        callback = {k: v[0] for k, v in parse_qs(urlparse(callback_url).query).items()}
        result = complete_launch(ehr, smart, pending, callback, session, scopes=scopes)
    assert "fhirUser" not in result.id_token_claims
    assert result.id_token_claims["profile"] == f"{info.fhir_base}/Practitioner/prac-2"
    assert result.fhir_user == f"{info.fhir_base}/Practitioner/prac-2"
    assert result.role == "practitioner"


class Refusing(requests.Session):
    """A session that must not be used: the check is made before anything is fetched."""

    def send(self, request, **kwargs):
        raise AssertionError(f"fetched {request.url}")


def test_an_issuer_elsewhere_than_the_token_endpoint_is_not_looked_up():
    """Without ``issuer`` the app learns it from the EHR's own OpenID configuration; an
    id_token naming another origin is refused before anything is fetched from there."""
    claims = {"iss": "https://evil.example.org", "aud": "app"}
    token = ".".join(
        _b64(part) for part in ({"alg": "RS256"}, claims)
    ) + ".sig"  # fmt: skip
    with pytest.raises(IdTokenError, match="outside the EHR's token endpoint"):
        openid_issuer(token, "https://ehr.example.nl/auth/token", Refusing())


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_docs_name_every_launch_url():
    text = Path(ROOT / "docs" / "launch.md").read_text(encoding="utf-8")
    for path in ("/launch`", "/launch/patient`", "/login`", "/callback`"):
        assert path in text
