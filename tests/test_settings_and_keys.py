"""Settings from the config file and the environment; the app's signing keys and rotation."""

from __future__ import annotations

import base64
import json

import pytest
from joserfc import jwt
from joserfc.jwk import JWKRegistry

from fhir_burnout.errors import ContentError
from fhir_burnout.settings import Settings
from fhir_burnout.smart_launch import client_assertion
from fhir_burnout.smart_launch._keys import (
    RETIRE_AFTER_SECONDS,
    current_private_key,
    generate_key,
    public_jwks,
)

CONFIG = """
base_url = "https://burnout.example.nl/"
secret_key = "from-file"
token_key = "from-file-token-key"

[[ehr]]
fhir_base = "https://ehr.example.nl/fhir/"
client_id = "fhir-burnout"
auth_method = "private_key_jwt"
"""


def test_config_file_with_environment_overrides(tmp_path):
    generate_key(tmp_path / "keys", "RS384")
    (tmp_path / "fhir-burnout.toml").write_text(CONFIG)
    env = {
        "FHIR_BURNOUT_CONFIG": str(tmp_path / "fhir-burnout.toml"),
        "FHIR_BURNOUT_SECRET_KEY": "from-env",
    }
    settings = Settings.from_env(env)
    assert settings.base_url == "https://burnout.example.nl"
    assert settings.secret_key == "from-env"
    assert settings.database_url == "sqlite:///fhir-burnout.db"
    [ehr] = settings.ehrs
    assert ehr.fhir_base == "https://ehr.example.nl/fhir"
    assert ehr.private_jwk == current_private_key(tmp_path / "keys")  # the app's own key
    assert settings.default_ehr == ehr.fhir_base
    assert "from-env" not in repr(settings)  # secrets stay out of reprs and logs
    assert ehr.mode == "smart"  # generic SMART unless said


def test_an_ehr_connected_by_koppeltaal_says_so(tmp_path):
    generate_key(tmp_path / "keys", "RS384")
    (tmp_path / "fhir-burnout.toml").write_text(CONFIG + 'mode = "koppeltaal"\n')
    settings = Settings.from_file(tmp_path / "fhir-burnout.toml", env={})
    assert settings.ehrs[0].mode == "koppeltaal"


@pytest.mark.parametrize(
    ("lines", "echoed"),
    [
        ('mode = "koppeltaal"\n', False),  # the reference auth service's own nonce
        ('mode = "koppeltaal"\nid_token_nonce = "any"\n', False),
        ('mode = "koppeltaal"\nid_token_nonce = "echo"\n', True),
        ("", True),  # SMART: always our nonce back
        ('id_token_nonce = "echo"\n', True),
    ],
)
def test_whether_the_id_token_must_echo_our_nonce_is_per_ehr(tmp_path, lines, echoed):
    generate_key(tmp_path / "keys", "RS384")
    (tmp_path / "fhir-burnout.toml").write_text(CONFIG + lines)
    [ehr] = Settings.from_file(tmp_path / "fhir-burnout.toml", env={}).ehrs
    assert ehr.nonce_echoed is echoed


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c.replace('secret_key = "from-file"\n', ""), "secret_key: is required"),
        (lambda c: c.replace('"private_key_jwt"', '"password"'), "auth_method"),
        (lambda c: c + "[[", "invalid TOML"),
        (lambda c: c + 'mode = "kt2"\n', r"ehr\[0\]\.mode: use one of"),
        (lambda c: c + 'id_token_nonce = "any"\n', r"id_token_nonce: .*only with mode"),
        (lambda c: c + 'mode = "koppeltaal"\nid_token_nonce = "random"\n', "id_token_nonce"),
    ],
)
def test_a_bad_config_says_what_is_wrong(tmp_path, change, message):
    generate_key(tmp_path / "keys", "ES384")
    (tmp_path / "fhir-burnout.toml").write_text(change(CONFIG))
    with pytest.raises(ContentError, match=message):
        Settings.from_file(tmp_path / "fhir-burnout.toml", env={})


def test_private_key_jwt_without_a_key_asks_for_one(tmp_path):
    (tmp_path / "fhir-burnout.toml").write_text(CONFIG)
    with pytest.raises(ContentError, match="run fhir-burnout keys"):
        Settings.from_file(tmp_path / "fhir-burnout.toml", env={})


def test_rotation_publishes_the_old_key_until_it_retires(tmp_path):
    first = generate_key(tmp_path, "RS384", now=0)
    second = generate_key(tmp_path, "ES384", now=100)
    assert current_private_key(tmp_path)["kid"] == second
    assert [k["kid"] for k in public_jwks(tmp_path, now=200)["keys"]] == [second, first]
    later = 100 + RETIRE_AFTER_SECONDS + 1
    assert [k["kid"] for k in public_jwks(tmp_path, now=later)["keys"]] == [second]
    assert all("d" not in k for k in public_jwks(tmp_path, now=200)["keys"])


def test_a_key_for_a_koppeltaal_domain_signs_rs512_and_is_published_so(tmp_path):
    kid = generate_key(tmp_path, "RS512")
    key = current_private_key(tmp_path)
    assertion = client_assertion("fhir-burnout", "https://kt.example/token", key)
    header = json.loads(base64.urlsafe_b64decode(assertion.split(".")[0] + "=="))
    assert header["alg"] == "RS512" and header["kid"] == kid
    [published] = public_jwks(tmp_path)["keys"]
    assert published["alg"] == "RS512" and "d" not in published
    decoded = jwt.decode(assertion, JWKRegistry.import_key(published), algorithms=["RS512"])
    assert decoded.claims["iss"] == "fhir-burnout"
