"""The settings file is checked before it is used: unknown, missing and mistyped keys are
refused with the file, the key's path and what to write instead (issue 18, point 5)."""

from __future__ import annotations

import re
import textwrap
import tomllib

import pytest
from click.testing import CliRunner

from fhir_burnout import demo, settings
from fhir_burnout._settings_file import (
    EhrTable,
    RateLimitsTable,
    SafetyTable,
    SettingsFile,
    check_file,
)
from fhir_burnout.cli import main
from fhir_burnout.errors import ContentError
from fhir_burnout.settings import Settings

from .conftest import SAFETY_OWNER_TOML, SAFETY_TOML

TOP = 'base_url = "https://burnout.example"\nsecret_key = "s"\ntoken_key = "t"\n'
EHR = '[[ehr]]\nfhir_base = "https://ehr.example/fhir"\nclient_id = "c"\n' + SAFETY_OWNER_TOML


def _refusal(tmp_path, text):
    """The ContentError a file with ``text`` is refused with."""
    path = tmp_path / "fhir-burnout.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ContentError) as refused:
        Settings.from_file(path, env={})
    assert refused.value.file == str(path)  # the file is named, not just "config"
    return refused.value


@pytest.mark.parametrize(
    ("text", "key", "says"),
    [
        # an [[ehr]] without its fhir_base: named, not a KeyError traceback
        (TOP + EHR + '[[ehr]]\nclient_id = "c"\n', "ehr[1].fhir_base", "is required"),
        # a misspelt key is refused with the key it was meant to be, not silently ignored
        (
            TOP + SAFETY_TOML + EHR + EHR + 'auth_metod = "private_key_jwt"\n',
            "ehr[1].auth_metod",
            "is not a setting; did you mean auth_method?",
        ),
        # a wrong type: the key and what is expected (never the value: it may be a secret)
        (TOP + 'trusted_proxies = "2"\n' + EHR, "trusted_proxies", "must be a whole number"),
        (TOP + EHR + "client_secret = 12345\n", "ehr[0].client_secret", "must be a string, not"),
        (TOP + EHR + 'koppeltaal_results = "yes"\n', "ehr[0].koppeltaal_results", "true or false"),
        ('ehr = "https://ehr.example/fhir"\n' + TOP, "ehr", "must be a list of [[ehr]] tables"),
        # unknown keys at the top level and in [safety]
        ('base_uri = "https://burnout.example"\n' + TOP, "base_uri", "did you mean base_url?"),
        (TOP + '[safety]\npromise_nl = "x"\npromise = "y"\n', "safety.promise", "did you mean"),
        (TOP + '[safety]\nwhen = "y"\n', "safety.when", "the settings are promise_nl, promise_en"),
        (TOP + '[rate_limits]\nlauch = "5/minute"\n', "rate_limits.lauch", "mean launch?"),
    ],
    ids=lambda value: value if re.fullmatch(r"[\w.\[\]]+", str(value)) else "",
)
def test_a_config_with_a_wrong_key_names_the_file_the_key_and_the_fix(tmp_path, text, key, says):
    refused = _refusal(tmp_path, text)
    assert (refused.location, says in refused.message) == (key, True), str(refused)


def test_a_secret_of_the_wrong_type_is_not_quoted_in_the_refusal(tmp_path):
    refused = _refusal(tmp_path, TOP + EHR + "client_secret = 987654321\n")
    assert "987654321" not in str(refused) and "an integer" in str(refused)


def test_the_cli_prints_the_refusal_without_a_traceback(tmp_path):
    path = tmp_path / "fhir-burnout.toml"
    path.write_text(TOP + SAFETY_TOML + EHR + 'auth_metod = "none"\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["serve", "--config", str(path)])
    assert result.exit_code == 1
    assert f"{path}: ehr[0].auth_metod: is not a setting; did you mean auth_method?" in (
        result.output
    )
    assert "Traceback" not in result.output


def _documented() -> dict:
    """The example file of the settings module's docstring, parsed."""
    example = settings.__doc__.split("::", 1)[1].split("Environment overrides")[0]
    return tomllib.loads(textwrap.dedent(example))


def test_every_documented_key_is_taken_and_every_key_is_documented():
    documented = _documented()
    check_file(documented, "settings.__doc__")  # no documented key is refused
    assert set(SettingsFile.model_fields) == set(documented)
    assert set(EhrTable.model_fields) == set(documented["ehr"][0])
    assert set(SafetyTable.model_fields) == set(documented["safety"])
    assert set(RateLimitsTable.model_fields) == set(documented["rate_limits"])


def test_the_readmes_example_config_is_taken(root):
    readme = (root / "README.md").read_text(encoding="utf-8")
    example = readme.split("## Running the app at a practice")[1].split("```toml")[1]
    check_file(tomllib.loads(example.split("```")[0]), "README.md")


def test_the_demos_config_loads(tmp_path, sandbox):
    config = demo.write_config(tmp_path, "http://127.0.0.1:8000", sandbox)
    loaded = Settings.from_file(config, env={})
    loaded.check_safety()
    assert loaded.ehrs[0].worker_client_id == "fhir-burnout-worker"
