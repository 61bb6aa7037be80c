"""Koppeltaal backend auth (SMART Backend Services, private_key_jwt) and the trace headers,
against the sandbox in its Koppeltaal profile."""

from __future__ import annotations

import json

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import ECKey, JWKRegistry, RSAKey

from fhir_burnout.fhir import FhirClient
from fhir_burnout.integration import backend_client
from fhir_burnout.koppeltaal import CONNECTION, DEFAULT_SCOPE
from fhir_burnout.koppeltaal._trace import (
    CORRELATION_ID,
    REQUEST_ID,
    TRACE_ID,
    TracedSession,
    audit_ids,
    caused_by,
    from_headers,
    last_request_id,
    launch_trace,
    outgoing_headers,
    traced,
)
from fhir_burnout.settings import Settings
from fhir_burnout.smart_launch import (
    TokenRequestError,
    assertion_algorithm,
    backend_token_source,
    client_assertion,
    discover,
    with_kid,
)

TOKEN_URL = "https://kt.example/auth/token"


def module_key(kt_sandbox):
    return kt_sandbox.client("fhir-burnout")["private_keys"][0]


def token_endpoint(fhir_base):
    """The domain's token endpoint, found as the client pool finds it (SMART discovery)."""
    return discover(fhir_base, requests.Session()).token_endpoint


def koppeltaal_token_source(token_url, client_id, private_jwk, **options):
    """A token source as the pool makes it for a Koppeltaal domain (RS512 by default)."""
    return backend_token_source(
        token_url, client_id, private_jwk, DEFAULT_SCOPE, default_alg=CONNECTION.algorithm,
        **options,
    )  # fmt: skip


def claims_of(assertion, private_jwk, alg):
    public = {k: v for k, v in private_jwk.items() if k not in ("d", "p", "q", "dp", "dq", "qi")}
    key = JWKRegistry.import_key({k: v for k, v in public.items() if k != "alg"})
    token = jwt.decode(assertion, key, algorithms=[alg])
    return token.header, token.claims


# --- the client assertion ----------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["RS512", "RS384"])
def test_the_assertion_is_signed_as_configured_with_kid_and_a_short_life(kt_sandbox, alg):
    private = module_key(kt_sandbox)
    assertion = client_assertion(
        "fhir-burnout", TOKEN_URL, private, alg=assertion_algorithm(private, alg, "RS512")
    )
    header, claims = claims_of(assertion, private, alg)
    assert header["alg"] == alg and header["kid"] == private["kid"]
    assert claims["iss"] == claims["sub"] == "fhir-burnout"
    assert claims["aud"] == TOKEN_URL
    assert 0 < claims["exp"] - claims["iat"] <= 300


def test_rs512_is_the_default_when_neither_config_nor_key_names_one():
    key = RSAKey.generate_key(2048, private=True).as_dict(private=True)
    default = CONNECTION.algorithm
    assert assertion_algorithm(key, None, default) == "RS512"
    assert assertion_algorithm({**key, "alg": "RS384"}, None, default) == "RS384"
    assert assertion_algorithm({**key, "alg": "RS384"}, "RS512", default) == "RS512"
    # SMART's default (no adapter default): RS384, as before Koppeltaal came.
    assert assertion_algorithm(key) == "RS384"


def test_the_pool_s_token_source_signs_rs512_with_the_keys_kid(kt_sandbox):
    key = {k: v for k, v in module_key(kt_sandbox).items() if k not in ("alg", "kid")}
    source = koppeltaal_token_source(TOKEN_URL, "fhir-burnout", key)
    token_url, client_id, signing_key, _ = source._args
    assert source._alg == "RS512" and signing_key["kid"] == with_kid(key)["kid"]
    assert (token_url, client_id) == (TOKEN_URL, "fhir-burnout")


def test_a_key_that_cannot_make_the_configured_algorithm_is_an_invalid_client():
    key = RSAKey.generate_key(2048, private=True).as_dict(private=True)
    with pytest.raises(TokenRequestError, match="koppeltaal_alg") as refused:
        koppeltaal_token_source(TOKEN_URL, "fhir-burnout", key, alg="ES384")
    assert refused.value.error == "invalid_client"


def test_an_es384_key_signs_es384_and_gets_a_kid_when_it_has_none():
    key = ECKey.generate_key("P-384", private=True).as_dict(private=True)
    assert "kid" not in key
    keyed = with_kid(key)
    assertion = client_assertion(
        "fhir-burnout", TOKEN_URL, keyed, alg=assertion_algorithm(keyed, "ES384", "RS512")
    )
    header, _ = claims_of(assertion, keyed, "ES384")
    assert header["alg"] == "ES384" and header["kid"] == keyed["kid"]


@pytest.mark.parametrize(
    ("kty", "alg"), [("RSA", "ES384"), ("EC", "RS512"), ("RSA", "HS256"), ("RSA", "RS256")]
)
def test_an_algorithm_koppeltaal_or_the_key_cannot_use_is_refused(kty, alg):
    key = (
        RSAKey.generate_key(2048, private=True)
        if kty == "RSA"
        else ECKey.generate_key("P-384", private=True)
    ).as_dict(private=True)
    with pytest.raises(ValueError, match="koppeltaal_alg"):
        assertion_algorithm(key, alg, "RS512")


def test_every_assertion_has_a_new_jti(kt_sandbox):
    private = module_key(kt_sandbox)
    jtis = {
        claims_of(client_assertion("fhir-burnout", TOKEN_URL, private, alg="RS512"), private,
                  "RS512")[1]["jti"]
        for _ in range(5)
    }  # fmt: skip
    assert len(jtis) == 5


def test_the_smart_assertion_is_unchanged_without_an_alg(kt_sandbox):
    private = {**module_key(kt_sandbox), "alg": "RS384"}
    header, _ = claims_of(client_assertion("c", TOKEN_URL, private), private, "RS384")
    assert header["alg"] == "RS384"


# --- tokens from the Koppeltaal sandbox ---------------------------------------------------------


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self):
        return self.now


def test_the_module_gets_a_token_that_reads_the_domain_and_no_refresh_token(kt_sandbox):
    source = koppeltaal_token_source(
        token_endpoint(kt_sandbox.fhir_base), "fhir-burnout", module_key(kt_sandbox)
    )
    with FhirClient(kt_sandbox.fhir_base, token_source=source) as client:
        list(client.search("ActivityDefinition", {"_count": "1"}))
    assert source._current is not None
    assert "refresh_token" not in source._current.raw
    assert source._current.expires_in <= 300


def test_a_new_token_is_fetched_before_expires_in_runs_out(kt_sandbox):
    clock = Clock()
    source = koppeltaal_token_source(
        token_endpoint(kt_sandbox.fhir_base), "fhir-burnout", module_key(kt_sandbox), clock=clock
    )
    first = source.token()
    lifetime = source._current.expires_in
    clock.now += lifetime / 2
    assert source.token() == first and source.requests == 1
    clock.now += lifetime / 2 - 30  # 30 s before it expires
    second = source.token()
    assert source.requests == 2 and second != first
    with FhirClient(kt_sandbox.fhir_base, token=second) as client:
        list(client.search("ActivityDefinition", {"_count": "1"}))


def test_a_replayed_assertion_is_refused_so_each_token_request_signs_anew(kt_sandbox):
    token_url = token_endpoint(kt_sandbox.fhir_base)
    assertion = client_assertion("fhir-burnout", token_url, module_key(kt_sandbox), alg="RS512")
    form = {
        "grant_type": "client_credentials",
        "scope": "system/*.cruds",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    }
    assert requests.post(token_url, data=form, timeout=30).status_code == 200
    assert requests.post(token_url, data=form, timeout=30).status_code in (400, 401)
    source = koppeltaal_token_source(token_url, "fhir-burnout", module_key(kt_sandbox))
    assert source.token() and source.invalidate() is None and source.token()
    assert source.requests == 2


def test_the_pool_s_client_of_a_domain_discovers_signs_rs512_and_traces(kt_sandbox):
    with (
        traced("trace-pool", "cause-1"),
        backend_client(
            kt_sandbox.fhir_base, "fhir-burnout", module_key(kt_sandbox), DEFAULT_SCOPE,
            connection=CONNECTION,
        ) as client,
    ):  # fmt: skip
        response = client._request("GET", "ActivityDefinition", params={"_count": "1"})
    assert isinstance(client.session, TracedSession) and client.token_source._alg == "RS512"
    assert response.request.headers[TRACE_ID] == "trace-pool"
    assert response.request.headers[CORRELATION_ID] == "cause-1"


def test_koppeltaal_alg_is_read_per_ehr(tmp_path):
    config = tmp_path / "fhir-burnout.toml"
    (tmp_path / "kt.jwk").write_text(
        json.dumps(RSAKey.generate_key(2048, private=True).as_dict(private=True))
    )
    config.write_text(
        'base_url = "https://app.example"\nsecret_key = "s"\ntoken_key = "t"\n'
        '[[ehr]]\nfhir_base = "https://kt.example/fhir"\nclient_id = "fhir-burnout"\n'
        'mode = "koppeltaal"\nbackend_private_key = "kt.jwk"\nkoppeltaal_alg = "RS384"\n'
    )
    ehr = Settings.from_file(config, env={}).ehr("https://kt.example/fhir")
    assert (ehr.mode, ehr.assertion_alg) == ("koppeltaal", "RS384")
    config.write_text(config.read_text().replace('"RS384"', '"HS256"'))
    with pytest.raises(ValueError, match="koppeltaal_alg"):
        Settings.from_file(config, env={})


# --- trace headers ------------------------------------------------------------------------------


def test_every_request_gets_a_new_request_id_and_the_trace_id_passes_unchanged(kt_sandbox):
    incoming = from_headers({"x-request-id": "notification-1", "X-Trace-Id": "trace-abc"})
    source = koppeltaal_token_source(
        token_endpoint(kt_sandbox.fhir_base), "fhir-burnout", module_key(kt_sandbox)
    )
    with traced(incoming.trace_id, incoming.cause):
        session = TracedSession()
        with FhirClient(kt_sandbox.fhir_base, token_source=source, session=session) as client:
            responses = [
                client._request("GET", "ActivityDefinition", params={"_count": "1"})
                for _ in range(2)
            ]
        sent = [r.request.headers for r in responses]
        assert sent[0][REQUEST_ID] != sent[1][REQUEST_ID]
        assert {h[TRACE_ID] for h in sent} == {"trace-abc"}
        assert {h[CORRELATION_ID] for h in sent} == {"notification-1"}
        assert {r.headers.get(TRACE_ID) for r in responses} == {"trace-abc"}  # echoed
        assert last_request_id() == sent[1][REQUEST_ID]
        assert audit_ids() == audit_ids(sent[1][REQUEST_ID])


def test_correlation_follows_the_request_that_caused_the_next_one():
    with traced("t-1", "notification-1"):
        task_fetch = outgoing_headers()
        with caused_by(task_fetch[REQUEST_ID]):
            patient_fetch = outgoing_headers()
        after = outgoing_headers()
    assert task_fetch[CORRELATION_ID] == "notification-1"
    assert patient_fetch[CORRELATION_ID] == task_fetch[REQUEST_ID]
    assert patient_fetch[TRACE_ID] == task_fetch[TRACE_ID] == after[TRACE_ID] == "t-1"
    assert after[CORRELATION_ID] == "notification-1"


def test_a_request_outside_any_trace_starts_its_own_with_no_correlation():
    first, second = outgoing_headers(), outgoing_headers()
    assert CORRELATION_ID not in first
    assert first[TRACE_ID] != second[TRACE_ID]
    assert from_headers({}).trace_id  # a trace is created when the caller sent none
    assert from_headers({}).cause is None


def test_an_explicit_header_wins_over_the_generated_one():
    request = requests.Request("GET", "http://127.0.0.1/x", headers={REQUEST_ID: "mine"})
    prepared = TracedSession().prepare_request(request)
    assert prepared.headers[REQUEST_ID] == "mine" and prepared.headers[TRACE_ID]


@pytest.mark.parametrize(
    ("jti", "kept"), [("5b7e8f7c-0a8f-4f2c-9d2e-1d3c5e7a9b11", True), ("has spaces!", False)]
)
def test_a_launch_traces_under_its_jti_when_that_is_a_valid_id(jti, kept):
    assert (launch_trace(jti).trace_id == jti) is kept
