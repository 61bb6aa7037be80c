"""Publishing: idempotent by canonical url and version.

Against the sandbox EHR (a real FHIR server), and the dry-run plan from the built package.
"""

from __future__ import annotations

import copy
import json
import uuid

import pytest

from fhir_burnout.cli import main
from fhir_burnout.resources._publish import publish


def fresh_copy(resources, programme):
    """The package under a canonical base of its own, so this test starts from nothing."""
    base = f"{programme.canonical}/t-{uuid.uuid4().hex[:8]}"
    return json.loads(json.dumps(resources).replace(programme.canonical, base))


def stored_versions(fhir, resources):
    versions = {}
    for r in resources:
        found = fhir.search(r["resourceType"], {"url": r["url"], "version": r["version"]})
        [match] = [m for m in found if m["url"] == r["url"]]
        versions[r["url"]] = match["meta"]["versionId"]
    return versions


def test_publishing_twice_creates_nothing_new(fhir, resources, programme):
    mine = fresh_copy(resources, programme)
    first = publish(mine, fhir)
    assert {s.action for s in first} == {"create"}
    versions = stored_versions(fhir, mine)
    assert len(versions) == len(mine)
    second = publish(mine, fhir)
    assert {s.action for s in second} == {"unchanged"}
    assert stored_versions(fhir, mine) == versions  # nothing written the second time


def test_a_changed_resource_is_updated_in_place_with_if_match(fhir, resources, programme):
    mine = fresh_copy(resources, programme)
    publish(mine, fhir)
    before = stored_versions(fhir, mine)
    changed = copy.deepcopy(mine)
    last = changed[-1]
    last["description"] = "Changed."
    steps = publish(changed, fhir)
    assert [s.action for s in steps].count("update") == 1
    after = stored_versions(fhir, changed)
    assert len(after) == len(mine)
    found = fhir.search(last["resourceType"], {"url": last["url"], "version": last["version"]})
    [updated] = [m for m in found if m["url"] == last["url"]]
    assert updated["description"] == "Changed."
    assert after[last["url"]] != before[last["url"]]


def test_dry_run_lists_a_conditional_create_per_resource(runner, built, resources):
    result = runner.invoke(main, ["publish", "--package", str(built.tgz), "--dry-run"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("POST ")]
    assert len(lines) == len(resources)
    assert any(
        "Questionnaire  If-None-Exist: "
        "url=https%3A%2F%2Ffhir-burnout.org%2Ffhir%2FQuestionnaire%2Fphq-9&version=" in line
        for line in lines
    )


@pytest.mark.slow
def test_publish_without_a_server_says_what_is_missing(runner):
    result = runner.invoke(main, ["publish"])
    assert result.exit_code == 2
    assert "--server is required" in result.output


def test_unreachable_server_is_a_clear_error(runner, built):
    result = runner.invoke(
        main,
        ["publish", "--package", str(built.bundle_json), "--server", "http://127.0.0.1:9/fhir"],
    )
    assert result.exit_code == 1
    assert "no answer" in result.output
