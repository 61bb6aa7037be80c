"""A named owner and an honest promise: the app and the worker refuse to start without them."""

from __future__ import annotations

import dataclasses

import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet

from fhir_burnout.cli import main
from fhir_burnout.settings import SafetyConfigError, SafetyPromise, Settings
from fhir_burnout.web import create_app

from .conftest import (
    PROMISE,
    SAFETY_OWNER,
    SAFETY_OWNER_TOML,
    SAFETY_TOML,
    app_settings,
    configured_ehr,
)

EHR = "https://ehr.example.nl/fhir"


def _config(tmp_path, *, safety=True, owner=True):
    config = tmp_path / "fhir-burnout.toml"
    config.write_text(
        'base_url = "http://127.0.0.1:8000"\n'
        f'database_url = "sqlite:///{tmp_path / "app.db"}"\n'
        f'secret_key = "s"\ntoken_key = "{Fernet.generate_key().decode()}"\n'
        + (SAFETY_TOML if safety else "")
        + f'[[ehr]]\nfhir_base = "{EHR}/"\nclient_id = "fhir-burnout"\n'
        + (SAFETY_OWNER_TOML if owner else ""),
        encoding="utf-8",
    )
    return config


def test_the_config_names_the_owner_per_ehr_and_the_promise(tmp_path):
    settings = Settings.from_file(_config(tmp_path), env={})
    assert settings.safety_promise == PROMISE
    assert settings.safety_owner(EHR) == SAFETY_OWNER
    assert settings.safety_owner("https://other.example/fhir") is None
    settings.check_safety()  # nothing missing


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"safety_promise": None}, "safety.promise_nl"),
        ({"safety_promise": SafetyPromise(nl="op werkdagen", en="")}, "safety.promise_en"),
        ({"ehrs": (configured_ehr(EHR, safety_owner=None),)}, "ehr[0].safety_owner"),
        (
            {"ehrs": (configured_ehr(EHR, safety_owner="Organization/practice-1"),)},
            "ehr[0].safety_owner",
        ),
    ],
)
def test_the_app_refuses_to_start_naming_the_missing_key(tmp_path, change, key):
    settings = dataclasses.replace(app_settings(EHR, tmp_path), **change)
    with pytest.raises(SafetyConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        create_app(settings)
    assert not (tmp_path / "app.db").exists()  # refused before anything was made


@pytest.mark.parametrize(
    ("command", "safety", "owner", "key"),
    [
        (["serve"], False, True, "safety.promise_nl: is required"),
        (["serve"], True, False, "ehr[0].safety_owner: is required"),
        (["worker", "--once"], False, True, "safety.promise_nl: is required"),
        (["worker", "--once"], True, False, "ehr[0].safety_owner: is required"),
    ],
)
def test_serve_and_worker_refuse_with_a_clear_message(tmp_path, command, safety, owner, key):
    config = _config(tmp_path, safety=safety, owner=owner)
    result = CliRunner().invoke(main, [*command, "--config", str(config)])
    assert result.exit_code == 1
    assert key in result.output and "Traceback" not in result.output
