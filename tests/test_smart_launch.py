"""SMART App Launch 2.2 and Backend Services, protocol layer, against the sandbox EHR.

The browser side is played by requests following the authorization server's redirects
(the sandbox signs users in from the launch context); the web pages come with the app.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import OctKey

from fhir_burnout.errors import FhirServerError
from fhir_burnout.fhir import FhirClient
from fhir_burnout.sandbox import start_sandbox
from fhir_burnout.settings import Ehr
from fhir_burnout.smart_launch import (
    BackendTokenSource,
    DiscoveryCache,
    DiscoveryError,
    IdTokenError,
    InsufficientScopeError,
    SmartConfiguration,
    StateError,
    TokenRequestError,
    UntrustedIssuerError,
    begin_launch,
    complete_launch,
    discover,
    fetch_jwks,
    launch_scopes,
    missing_purposes,
    refresh,
    require_scope,
    trusted_ehr,
    verify_id_token,
)
from fhir_burnout.smart_launch._discovery import _from_capability_statement
from fhir_burnout.smart_launch._keys import current_private_key, generate_key, public_jwks

from .smart_flow import follow_to_redirect_uri


@pytest.fixture(scope="module")
def ehr(sandbox):
    return Ehr(fhir_base=sandbox.fhir_base, client_id="fhir-burnout")


@pytest.fixture(scope="module")
def config(sandbox):
    with requests.Session() as session:
        return discover(sandbox.fhir_base, session)


def redirect_uri(sandbox):
    return sandbox.client("fhir-burnout")["redirect_uris"][0]


def launch_from_ehr(sandbox, patient, practitioner=None):
    params = {"app": "fhir-burnout", "patient": patient}
    if practitioner:
        params["practitioner"] = practitioner
    response = requests.get(sandbox.launcher, params=params, allow_redirects=False, timeout=30)
    query = parse_qs(urlparse(response.headers["Location"]).query)
    return query["iss"][0], query["launch"][0]


def run_launch(sandbox, ehr, config, *, launch=None, login_hint=None):
    url, pending, scopes = begin_launch(
        ehr, config, redirect_uri(sandbox), launch=launch, login_hint=login_hint
    )
    callback_url = follow_to_redirect_uri(requests.Session(), url, redirect_uri(sandbox))
    callback = {k: v[0] for k, v in parse_qs(urlparse(callback_url).query).items()}
    return pending, scopes, callback


def test_ehr_launch_as_a_practitioner(sandbox, ehr, config):
    iss, launch = launch_from_ehr(sandbox, "pat-03", "prac-2")
    assert trusted_ehr(iss, [ehr]) is ehr
    pending, scopes, callback = run_launch(sandbox, ehr, config, launch=launch)
    with requests.Session() as session:
        result = complete_launch(ehr, config, pending, callback, session, scopes=scopes)
    assert result.patient == "pat-03"
    assert result.role == "practitioner"
    assert result.fhir_user.endswith("Practitioner/prac-2")
    assert result.need_patient_banner is True
    assert result.id_token_claims["nonce"] == pending.nonce
    assert result.not_granted == ()
    assert "user/PractitionerRole.rs" in result.scope.split()  # v2, as advertised
    with FhirClient(sandbox.fhir_base, token=result.access_token) as client:
        assert client.read("Patient", "pat-03")["id"] == "pat-03"


def test_standalone_launch_as_a_patient_and_refresh_keeps_the_context(sandbox, ehr, config):
    pending, scopes, callback = run_launch(sandbox, ehr, config, login_hint="Patient/pat-09")
    with requests.Session() as session:
        result = complete_launch(ehr, config, pending, callback, session, scopes=scopes)
        assert result.role == "patient" and result.patient == "pat-09"
        assert result.refresh_token
        renewed = refresh(ehr, config, result.refresh_token, session)
    assert renewed.patient == "pat-09"
    assert renewed.access_token != result.access_token


def test_a_callback_with_another_state_is_refused(sandbox, ehr, config):
    pending, scopes, callback = run_launch(sandbox, ehr, config, login_hint="Patient/pat-10")
    forged = {**callback, "state": "someone-elses-state"}
    with requests.Session() as session, pytest.raises(StateError):
        complete_launch(ehr, config, pending, forged, session, scopes=scopes)


def test_a_replayed_authorization_code_is_refused(sandbox, ehr, config):
    pending, scopes, callback = run_launch(sandbox, ehr, config, login_hint="Patient/pat-11")
    with requests.Session() as session:
        complete_launch(ehr, config, pending, callback, session, scopes=scopes)
        with pytest.raises(TokenRequestError) as caught:
            complete_launch(ehr, config, pending, callback, session, scopes=scopes)
    assert caught.value.error == "invalid_grant"


def test_an_untrusted_iss_is_refused_before_anything_is_sent():
    known = [Ehr(fhir_base="https://ehr.example.org/fhir", client_id="app")]
    for iss in ("https://evil.example.org/fhir", "https://ehr.example.org/fhir.evil.org", ""):
        with pytest.raises(UntrustedIssuerError):
            trusted_ehr(iss, known)


def test_a_server_without_pkce_s256_is_not_launched(ehr, config):
    no_pkce = SmartConfiguration(
        fhir_base=config.fhir_base,
        authorization_endpoint=config.authorization_endpoint,
        token_endpoint=config.token_endpoint,
        capabilities=config.capabilities,
        code_challenge_methods=frozenset({"plain"}),
        raw={"code_challenge_methods_supported": ["plain"]},
    )
    with pytest.raises(DiscoveryError):
        begin_launch(ehr, no_pkce, "http://127.0.0.1:8000/callback", launch="x")


@pytest.fixture(scope="module")
def real_id_token(sandbox, ehr, config):
    pending, _scopes, callback = run_launch(sandbox, ehr, config, login_hint="Patient/pat-12")
    form = {
        "grant_type": "authorization_code",
        "code": callback["code"],
        "redirect_uri": redirect_uri(sandbox),
        "client_id": "fhir-burnout",
        "code_verifier": pending.code_verifier,
    }
    body = requests.post(config.token_endpoint, data=form, timeout=30).json()
    with requests.Session() as session:
        jwks = fetch_jwks(config.jwks_uri, session)
    return body["id_token"], pending.nonce, jwks


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_the_real_id_token_verifies(real_id_token, config):
    token, nonce, jwks = real_id_token
    claims = verify_id_token(
        token, jwks, issuer=config.issuer, client_id="fhir-burnout", nonce=nonce
    )
    assert claims["fhirUser"].endswith("Patient/pat-12")


def test_a_tampered_id_token_is_refused(real_id_token, config):
    token, nonce, jwks = real_id_token
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["fhirUser"] = "Practitioner/prac-1"
    with pytest.raises(IdTokenError):
        verify_id_token(
            f"{header}.{b64(claims)}.{signature}",
            jwks,
            issuer=config.issuer,
            client_id="fhir-burnout",
            nonce=nonce,
        )


def test_alg_none_is_refused(real_id_token, config):
    token, nonce, jwks = real_id_token
    payload = token.split(".")[1]
    unsigned = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{payload}."
    with pytest.raises(IdTokenError, match="not accepted"):
        verify_id_token(
            unsigned, jwks, issuer=config.issuer, client_id="fhir-burnout", nonce=nonce
        )


def test_hs256_signed_with_the_public_key_is_refused(real_id_token, config):
    token, nonce, jwks = real_id_token
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    public_key_as_secret = OctKey.import_key(json.dumps(jwks["keys"][0]).encode())
    forged = jwt.encode({"alg": "HS256"}, claims, public_key_as_secret, algorithms=["HS256"])
    with pytest.raises(IdTokenError, match="not accepted"):
        verify_id_token(forged, jwks, issuer=config.issuer, client_id="fhir-burnout", nonce=nonce)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"client_id": "another-app"}, "another app"),
        ({"nonce": "another-launch"}, "nonce"),
        ({"issuer": "http://127.0.0.1:1/auth"}, "another server"),
    ],
)
def test_an_id_token_for_another_audience_launch_or_issuer_is_refused(
    real_id_token, config, kwargs, message
):
    token, nonce, jwks = real_id_token
    args = {"issuer": config.issuer, "client_id": "fhir-burnout", "nonce": nonce} | kwargs
    with pytest.raises(IdTokenError, match=message):
        verify_id_token(token, jwks, **args)


@pytest.mark.parametrize("slash", ["/", ""])
def test_the_issuer_may_differ_by_one_trailing_slash(real_id_token, config, slash):
    token, nonce, jwks = real_id_token  # the sandbox's iss has none; the reference's has one
    assert not config.issuer.endswith("/")
    claims = verify_id_token(
        token, jwks, issuer=config.issuer + slash, client_id="fhir-burnout", nonce=nonce
    )
    assert claims["iss"] == config.issuer


@pytest.mark.parametrize("suffix", ["//", "x", "/x"])
def test_an_issuer_differing_by_more_than_a_slash_is_refused(real_id_token, config, suffix):
    token, nonce, jwks = real_id_token
    with pytest.raises(IdTokenError, match="another server"):
        verify_id_token(
            token, jwks, issuer=config.issuer + suffix, client_id="fhir-burnout", nonce=nonce
        )


def test_a_smart_launch_demands_its_nonce_back_whatever_is_configured(sandbox, config):
    """``id_token_nonce = "any"`` is for Koppeltaal domains; a SMART EHR's id_token must
    always carry the launch's nonce (the settings file refuses "any" there, too)."""
    ehr = Ehr(sandbox.fhir_base, "fhir-burnout", mode="smart", id_token_nonce="any")
    assert ehr.nonce_echoed
    pending, scopes, callback = run_launch(sandbox, ehr, config, login_hint="Patient/pat-13")
    another = dataclasses.replace(pending, nonce="a-nonce-of-another-launch")
    with requests.Session() as session, pytest.raises(IdTokenError, match="nonce"):
        complete_launch(ehr, config, another, callback, session, scopes=scopes)


def test_an_expired_id_token_is_refused(real_id_token, config):
    token, nonce, jwks = real_id_token
    with pytest.raises(IdTokenError, match="expired"):
        verify_id_token(
            token,
            jwks,
            issuer=config.issuer,
            client_id="fhir-burnout",
            nonce=nonce,
            now=4_000_000_000,
        )


def test_scopes_follow_what_the_server_advertises():
    v2 = launch_scopes(role="practitioner", v2=True, ehr_launch=True).scope.split()
    v1 = launch_scopes(role="patient", v2=False, ehr_launch=False).scope.split()
    assert "launch" in v2 and "user/PractitionerRole.rs" in v2
    assert "launch/patient" in v1 and "patient/Patient.read" in v1
    assert not any(s.endswith((".r", ".rs")) for s in v1)


def test_a_smaller_grant_says_what_will_not_work():
    request = launch_scopes(role="practitioner", v2=True, ehr_launch=True)
    missing = missing_purposes(request, "launch openid fhirUser patient/*.rs")
    assert missing == [
        "showing the care professional's name",
        "the practice overview",
        "clients' names on the practice overview and in the banner",
    ]
    assert missing_purposes(request, "patient/*.cruds user/Practitioner.rs") == [
        "the practice overview",
        "clients' names on the practice overview and in the banner",
    ]
    granted = "user/Practitioner.rs user/PractitionerRole.rs user/Patient.rs"
    assert missing_purposes(request, granted) == []
    client = launch_scopes(role="patient", v2=True, ehr_launch=False)
    assert missing_purposes(client, "launch/patient openid fhirUser") == [
        "showing the client's own name"
    ]


def test_discovery_falls_back_to_the_capability_statement(sandbox, config):
    metadata = requests.get(f"{sandbox.fhir_base}/metadata", timeout=30).json()
    fallback = _from_capability_statement(sandbox.fhir_base, metadata)
    assert fallback.authorization_endpoint == config.authorization_endpoint
    assert fallback.token_endpoint == config.token_endpoint


class CountingSession(requests.Session):
    """A real session that counts the requests it sends."""

    def __init__(self):
        super().__init__()
        self.sent = 0

    def send(self, request, **kwargs):
        self.sent += 1
        return super().send(request, **kwargs)


def test_discovery_is_cached_until_it_expires(sandbox):
    now = [1000.0]
    session = CountingSession()
    cache = DiscoveryCache(session, ttl=60, clock=lambda: now[0])
    cache.get(sandbox.fhir_base)
    cache.get(sandbox.fhir_base + "/")
    assert session.sent == 1
    now[0] += 61
    cache.get(sandbox.fhir_base)
    assert session.sent == 2


def test_backend_token_is_cached_and_renewed_after_a_401(sandbox, config):
    worker = sandbox.client("fhir-burnout-worker")
    now = [0.0]
    source = BackendTokenSource(
        config.token_endpoint,
        "fhir-burnout-worker",
        worker["private_keys"][1],
        "system/Patient.rs",
        clock=lambda: now[0],
    )
    first = source.token()
    assert source.token() == first and source.requests == 1
    with FhirClient(sandbox.fhir_base, token=first) as client:
        assert client.read("Patient", "pat-01")["id"] == "pat-01"
    with (
        FhirClient(sandbox.fhir_base, token=first + "x") as client,
        pytest.raises(FhirServerError) as caught,
    ):
        client.read("Patient", "pat-01")
    assert caught.value.status == 401
    source.invalidate()
    assert source.token() != first and source.requests == 2
    now[0] += 10_000  # past expiry: a new token without being told
    source.token()
    assert source.requests == 3


class StaleFirst:
    """A token source whose first token the server no longer accepts (revoked, say)."""

    def __init__(self, real):
        self.real, self.stale = real, True

    def token(self):
        return "revoked-token" if self.stale else self.real.token()

    def invalidate(self):
        self.stale = False
        self.real.invalidate()


def test_the_fhir_client_gets_a_new_backend_token_on_401(sandbox, config):
    worker = sandbox.client("fhir-burnout-worker")
    real = BackendTokenSource(
        config.token_endpoint, "fhir-burnout-worker", worker["private_keys"][0], "system/*.cruds"
    )
    source = StaleFirst(real)
    with FhirClient(sandbox.fhir_base, token_source=source) as client:
        created = client.create({"resourceType": "Patient", "name": [{"family": "Na-401"}]})
    assert created["id"] and source.stale is False and real.requests == 1


@pytest.fixture(scope="module")
def confidential_sandbox(tmp_path_factory):
    """A sandbox with two confidential apps: one with a client secret, one with our key."""
    folder = tmp_path_factory.mktemp("confidential")
    generate_key(folder / "keys", "ES384")
    common = {
        "grant_types": ["authorization_code", "refresh_token"],
        "redirect_uris": ["http://127.0.0.1:8000/callback"],
        "launch_uri": "http://127.0.0.1:8000/launch",
        "scope": "launch launch/patient openid fhirUser offline_access patient/*.cruds user/*.rs",
    }
    clients = [
        {
            "client_id": "secret-app",
            "token_endpoint_auth_method": "client_secret_basic",
            "client_secret": "s3cret-for-tests",
            **common,
        },
        {
            "client_id": "jwt-app",
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": public_jwks(folder / "keys"),
            **common,
        },
    ]
    config_file = folder / "clients.json"
    config_file.write_text(json.dumps({"clients": clients}))
    with start_sandbox(client_config=config_file) as info:
        yield info, current_private_key(folder / "keys")


@pytest.mark.parametrize("method", ["client_secret_basic", "private_key_jwt"])
def test_confidential_clients_launch_with_their_own_authentication(confidential_sandbox, method):
    info, private_key = confidential_sandbox
    if method == "client_secret_basic":
        ehr = Ehr(
            info.fhir_base,
            "secret-app",
            auth_method="client_secret_basic",
            client_secret="s3cret-for-tests",
        )
    else:
        ehr = Ehr(
            info.fhir_base, "jwt-app", auth_method="private_key_jwt", private_jwk=private_key
        )
    with requests.Session() as session:
        config = discover(info.fhir_base, session)
    url, pending, scopes = begin_launch(
        ehr, config, "http://127.0.0.1:8000/callback", login_hint="Patient/pat-13"
    )
    callback_url = follow_to_redirect_uri(
        requests.Session(), url, "http://127.0.0.1:8000/callback"
    )
    callback = {k: v[0] for k, v in parse_qs(urlparse(callback_url).query).items()}
    with requests.Session() as session:
        result = complete_launch(ehr, config, pending, callback, session, scopes=scopes)
        assert result.patient == "pat-13"
        assert refresh(ehr, config, result.refresh_token, session).patient == "pat-13"
    wrong = Ehr(
        info.fhir_base, "secret-app", auth_method="client_secret_basic", client_secret="guessed"
    )
    with requests.Session() as session, pytest.raises(TokenRequestError) as caught:
        refresh(wrong, config, result.refresh_token, session)
    assert caught.value.error == "invalid_client"


@pytest.mark.parametrize(
    ("scope", "allowed"),
    [
        ("system/CarePlan.c", True),
        ("system/*.cruds", True),
        ("user/CarePlan.c", False),  # a person's token: never a machine caller's right
        ("user/*.cruds", False),
        ("patient/CarePlan.cruds", False),
        ("system/CarePlan.rs", False),
    ],
)
def test_a_machine_endpoint_takes_only_system_scopes(scope, allowed):
    """$apply and POST /referrals ask for system/ scopes only: a token a person got (user/)
    enrols and refers nobody, whatever it allows that person to do."""
    claims = {"scope": f"openid {scope}"}
    if allowed:
        require_scope(claims, "CarePlan", "c", contexts=("system",))
    else:
        with pytest.raises(InsufficientScopeError):
            require_scope(claims, "CarePlan", "c", contexts=("system",))
