"""``fhir-burnout doctor``: every configured EHR checked end to end against real sandbox EHRs
(issue 17, point 7): all well, a wrong backend key, a client secret the EHR does not know,
an EHR where nothing answers, and one that publishes its endpoints only in /metadata."""

from __future__ import annotations

import json
import socket

import pytest

from fhir_burnout.cli import main
from fhir_burnout.sandbox import start_sandbox
from fhir_burnout.smart_launch._keys import current_private_key, generate_key

from .conftest import SAFETY_OWNER_TOML, SAFETY_TOML


def write_config(folder, fhir_base, *, worker_key, client="fhir-burnout", extra=""):
    """A practice's config for one EHR, the worker's key in a file beside it."""
    (folder / "worker.jwk").write_text(json.dumps(worker_key))
    config = folder / "app.toml"
    config.write_text(
        'base_url = "https://app.example.nl"\nsecret_key = "s"\ntoken_key = "k"\n'
        f'keys_dir = "keys"\n{SAFETY_TOML}[[ehr]]\nfhir_base = "{fhir_base}"\n'
        f'client_id = "{client}"\nbackend_client_id = "fhir-burnout-worker"\n'
        f'backend_private_key = "worker.jwk"\n{SAFETY_OWNER_TOML}{extra}'
    )  # fmt: skip
    return config


def doctor(runner, config):
    result = runner.invoke(main, ["doctor", "--config", str(config)])
    assert "eyJ" not in result.output  # no token (a JWT) is ever printed
    return result


def test_the_sandbox_config_is_all_well(runner, sandbox, tmp_path):
    worker = sandbox.client("fhir-burnout-worker")["private_keys"][0]
    result = doctor(runner, write_config(tmp_path, sandbox.fhir_base, worker_key=worker))
    assert result.exit_code == 0, result.output
    assert "MISSING" not in result.output and result.output.rstrip().endswith("All is well.")
    assert "found .well-known/smart-configuration" in result.output
    assert "a public client" in result.output  # said, not failed: only a launch shows it
    assert "PractitionerRole?_count=1 answered 200" in result.output
    assert "granted all the worker writes and reads" in result.output
    assert worker["d"] not in result.output


def test_a_wrong_backend_key_is_named_in_words(runner, sandbox, tmp_path):
    generate_key(tmp_path / "other", "RS384")
    wrong = current_private_key(tmp_path / "other")
    result = doctor(runner, write_config(tmp_path, sandbox.fhir_base, worker_key=wrong))
    assert result.exit_code == 1
    assert "MISSING backend token (fhir-burnout-worker): the EHR refused the worker's key" in (
        result.output
    )
    assert "invalid_client" in result.output and wrong["d"] not in result.output


def test_an_ehr_where_nothing_answers_says_so(runner, sandbox, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    worker = sandbox.client("fhir-burnout-worker")["private_keys"][0]
    config = write_config(tmp_path, f"http://127.0.0.1:{port}/fhir", worker_key=worker)
    result = doctor(runner, config)
    assert result.exit_code == 1
    assert f"MISSING discovery: nothing usable answers at http://127.0.0.1:{port}/fhir" in (
        result.output
    )


@pytest.fixture(scope="module")
def older_ehr(tmp_path_factory):
    """An EHR with its endpoints only in /metadata, and a confidential app registered there."""
    folder = tmp_path_factory.mktemp("older")
    client = {
        "client_id": "secret-app",
        "token_endpoint_auth_method": "client_secret_basic",
        "client_secret": "s3cret-for-tests",
        "grant_types": ["authorization_code", "refresh_token"],
        "redirect_uris": ["https://app.example.nl/callback"],
        "scope": "launch launch/patient openid fhirUser offline_access patient/*.rs user/*.rs",
    }
    (folder / "clients.json").write_text(json.dumps({"clients": [client]}))
    with start_sandbox(client_config=folder / "clients.json", discovery="metadata-only") as info:
        yield info


@pytest.mark.parametrize(("secret", "healthy"), [("s3cret-for-tests", True), ("guessed", False)])
def test_an_ehr_with_only_metadata_is_green_with_the_fallback_named(
    runner, older_ehr, tmp_path, secret, healthy
):
    worker = older_ehr.client("fhir-burnout-worker")["private_keys"][0]
    config = write_config(
        tmp_path, older_ehr.fhir_base, worker_key=worker, client="secret-app",
        extra=f'auth_method = "client_secret_basic"\nclient_secret = "{secret}"\n',
    )  # fmt: skip
    result = doctor(runner, config)
    assert "ok      discovery: fallback: no .well-known/smart-configuration" in result.output
    assert secret not in result.output
    assert "PractitionerRole?_count=1 answered 200" in result.output
    if healthy:
        assert result.exit_code == 0, result.output
        assert "client authentication (secret-app, client_secret_basic): credentials" in (
            result.output
        )
    else:
        assert result.exit_code == 1
        assert "the EHR does not accept the app's client secret for secret-app" in result.output
