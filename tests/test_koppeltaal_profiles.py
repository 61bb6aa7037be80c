"""Everything we send to a Koppeltaal domain conforms to the KT2 profiles (issue 19, point 2).

The profiles: the StructureDefinitions SUSHI compiled from the Koppeltaal IG's FSH, IG 0.16.3
(sandbox/koppeltaal-ig/, README there; sandbox/test/kt2-profiles.test.mjs checks that they are
what the pinned FSH compiles to). The validator: Medplum's, through the sandbox's
validate-fhir.mjs --kt2 (sandbox/src/kt2-profiles.mjs), which a domain's own FHIR server stands
for: it validates every write against the same profiles and refuses on any error.

Each resource is built by our own builders, as the module sends it: the Endpoint and the
ActivityDefinitions (publishing), the Subscription, a Task status update, every kind of
AuditEvent, and the results DocumentReference.
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from fhir_burnout.integration._subscription import subscription_resource
from fhir_burnout.koppeltaal import KOPPELTAAL_CHANNEL, TraceIds, audit
from fhir_burnout.koppeltaal._notify import CRITERIA, KT2_SUBSCRIPTION, REASON
from fhir_burnout.koppeltaal._plan import with_status
from fhir_burnout.koppeltaal._profiles import (
    canonical_base,
    endpoint_problems,
    kt2_activity_definitions,
    kt2_endpoint,
)
from fhir_burnout.koppeltaal._results import PublishedVersion, document_reference, sha1_base64

from .conftest import ROOT

NODE = ROOT / "sandbox" / "node_modules" / ".bin" / "node"
VALIDATE = ROOT / "sandbox" / "validate-fhir.mjs"
APP = "https://burnout.example-practice.nl"
DOMAIN = "https://koppeltaal.example.nl/fhir"
CLIENT_ID = "fhir-burnout"
NOW = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
IDS = TraceIds(
    trace_id="0b9c4f0e-7d5e-4c38-9f5a-2f9a1d0e8b11",
    request_id="6f1f8d5a-3c0b-4f7e-8a44-4b2a9f3c1d22",
    correlation_id="9a2e6c1b-5d4f-4e3a-b1c0-7e8d9f0a1b33",
)
COMMON = {"client_id": CLIENT_ID, "base_url": APP, "ids": IDS, "now": NOW}


def kt2_validate(resources: list[dict[str, Any]], tmp_path: Path) -> tuple[list[str], dict]:
    """Each resource through validate-fhir.mjs --kt2: the problem lines and the summary."""
    files = []
    for n, resource in enumerate(resources):
        path = tmp_path / f"{n:03}-{resource['resourceType']}.json"
        path.write_text(json.dumps(resource))
        files.append(str(path))
    result = subprocess.run(
        [str(NODE), str(VALIDATE), "--kt2", *files],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    lines = result.stdout.strip().splitlines()
    assert lines, result.stderr
    summary = json.loads(lines[-1])
    assert result.returncode == (1 if summary["problems"] else 0), result.stderr
    return lines[:-1], summary


def published(resources: list[dict], *, results: bool = False) -> list[dict[str, Any]]:
    """The Endpoint and the ActivityDefinitions as publishing POSTs them (``results``: as a
    domain with ``koppeltaal_results`` gets them, announcing the results document)."""
    endpoint = kt2_endpoint(APP, canonical_base(resources), CLIENT_ID)
    definitions = kt2_activity_definitions(
        resources, endpoint="Endpoint/0c7a3b4e", publisher_id=CLIENT_ID, results=results
    )
    return [endpoint, *definitions]


def portal_task() -> dict[str, Any]:
    """A KT2_Task as a portal makes it and the domain gives it back (IG example task-minimaal,
    with the server's resource-origin)."""
    return {
        "resourceType": "Task",
        "id": "5e1c8a70-2b9d-4c1e-9f3a-6d7b8c9d0e1f",
        "meta": {
            "versionId": "2",
            "profile": ["http://koppeltaal.nl/fhir/StructureDefinition/KT2Task"],
        },
        "extension": [
            {
                "url": "http://koppeltaal.nl/fhir/StructureDefinition/resource-origin",
                "valueReference": {"reference": "Device/portal"},
            },
            {
                "url": "http://vzvz.nl/fhir/StructureDefinition/instantiates",
                "valueReference": {
                    "reference": "ActivityDefinition/a1",
                    "type": "ActivityDefinition",
                },
            },
        ],
        "identifier": [{"system": "https://portal.example.nl/task", "value": "t-1"}],
        "status": "ready",
        "intent": "order",
        "priority": "routine",
        "for": {"reference": "Patient/pat-1", "type": "Patient"},
        "owner": {"reference": "Patient/pat-1", "type": "Patient"},
        "requester": {"reference": "Practitioner/prac-1", "type": "Practitioner"},
    }


def audit_events() -> list[dict[str, Any]]:
    """One AuditEvent of every kind we log (docs/koppeltaal.md, AuditEvents)."""
    task = {"task_id": "5e1c8a70-2b9d-4c1e-9f3a-6d7b8c9d0e1f", "task_version": "3"}
    return [
        audit.launched(**task, **COMMON),
        audit.launch_failed(description="Launch token expired", **task, **COMMON),
        audit.launch_failed(description="Unexpected error", expected=False, **COMMON),
        audit.notification_received(subscription_id="sub-1", **COMMON),
        audit.status_changed(old="ready", new="in-progress", **task, **COMMON),
        audit.processing_error(kind="transient", description="Domain down", system_down=True,
                               interaction="update", resource_type="Task",
                               resource_id=task["task_id"], version="3", **COMMON),
        audit.processing_error(kind="data", description="Not one of our definitions",
                               resource_type="ActivityDefinition", resource_id="x", **COMMON),
        audit.processing_error(kind="terminal", description="Search refused",
                               interaction="search-type", resource_type="Task",
                               query="Task?status=ready", **COMMON),
        audit.processing_error(kind="terminal", description="Unreadable answer", **COMMON),
        audit.document_fetched(document_reference="DocumentReference/d-1", fetched_by="portal",
                               **COMMON),
    ]  # fmt: skip


def everything_we_send(resources: list[dict]) -> list[dict[str, Any]]:
    subscription = subscription_resource(
        KOPPELTAAL_CHANNEL.endpoint(APP, DOMAIN),
        KOPPELTAAL_CHANNEL.token("not-a-real-secret", DOMAIN),
        CRITERIA, REASON, KT2_SUBSCRIPTION,
    )  # fmt: skip
    html = b"<!doctype html><p>Resultaten</p>"
    version = PublishedVersion("0f1e2d3c4b5a69788796a5b4c3d2e1f0", sha1_base64(html), len(html),
                               NOW)  # fmt: skip
    results = document_reference(
        key="5e1c8a70-2b9d-4c1e-9f3a-6d7b8c9d0e1f", task_id="5e1c8a70-2b9d-4c1e-9f3a-6d7b8c9d0e1f",
        patient="Patient/pat-1", device=f"Device/{CLIENT_ID}", base_url=APP, version=version,
    )  # fmt: skip
    assert {"hash", "size"} <= set(results["content"][0]["attachment"])
    return [
        *published(resources),
        *published(resources, results=True)[1:],
        subscription,
        with_status(portal_task(), "in-progress"),
        with_status(portal_task(), "completed"),
        *audit_events(),
        results,
    ]


def test_everything_we_send_to_a_koppeltaal_domain_conforms_to_its_kt2_profile(
    resources, tmp_path
):
    sent = everything_we_send(resources)
    kinds = {r["resourceType"] for r in sent}
    assert kinds == {
        "ActivityDefinition", "AuditEvent", "DocumentReference", "Endpoint", "Subscription",
        "Task",
    }  # fmt: skip
    problems, summary = kt2_validate(sent, tmp_path)
    assert problems == []
    assert summary == {"checked": len(sent), "problems": 0}


def test_an_endpoint_with_a_connection_type_display_is_refused_by_the_profile(resources, tmp_path):
    # KT2_Endpoint fixes connectionType (system + code, nothing else): a display breaks it,
    # as it did in a real domain before issue 19.
    endpoint = published(resources)[0]
    endpoint["connectionType"]["display"] = "HTI Smart on FHIR"
    problems, summary = kt2_validate([endpoint], tmp_path)
    assert summary["problems"] == 1
    assert "Endpoint.connectionType" in problems[0] and "KT2_Endpoint" in problems[0]
    # and publishing's own check, before anything is written, refuses it too
    assert [p for p in endpoint_problems(endpoint) if p.startswith("connectionType")]


def test_the_announced_results_document_is_a_code_of_the_documenten_delen_draft(
    resources, tmp_path
):
    # useContext:koppeltaal-expansion binds its value to KoppeltaalExpansion_VS (required): the
    # draft's 029-DocumentenDelen (sandbox/koppeltaal-ig/README.md) passes, another code not.
    definition = published(resources, results=True)[1]
    announced = definition["useContext"][-1]["valueCodeableConcept"]["coding"][0]
    assert announced["code"] == "029-DocumentenDelen"
    assert kt2_validate([definition], tmp_path)[1]["problems"] == 0
    announced["code"] = "029-DocumentDelen"
    problems, _ = kt2_validate([definition], tmp_path)
    assert any("useContext:koppeltaal-expansion.value[x]" in line for line in problems), problems


@pytest.mark.parametrize(
    ("resource_type", "breaking", "where"),
    [
        ("ActivityDefinition", {"publisher": "fhir_burnout"}, "ActivityDefinition.publisher"),
        ("AuditEvent", {"purposeOfEvent": [{"text": "x"}]}, "AuditEvent.purposeOfEvent"),
        ("Subscription", {"meta": {}}, "Subscription.meta.profile"),
        ("Task", {"priority": "urgent"}, "Task.priority"),
    ],
)
def test_each_kind_is_checked_against_its_own_profile(
    resources, tmp_path, resource_type, breaking, where
):
    sent = next(r for r in everything_we_send(resources) if r["resourceType"] == resource_type)
    problems, _ = kt2_validate([{**sent, **breaking}], tmp_path)
    assert any(where in line for line in problems), problems
