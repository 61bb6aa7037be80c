"""The sandbox's Koppeltaal profile as an integrator meets it (``start_sandbox(koppeltaal=True)``):
server-assigned ids and resource-origin, no PUT-create, If-Match on every update, KT2 profile
checks, trace headers; and the plain sandbox left as it was."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from fhir_burnout.errors import FhirServerError
from fhir_burnout.fhir import FhirClient
from fhir_burnout.sandbox import SandboxInfo, sandbox_command

from .conftest import kt_token_source

KT = "http://koppeltaal.nl/fhir/StructureDefinition"
RESOURCE_ORIGIN = f"{KT}/resource-origin"
INSTANTIATES = "http://vzvz.nl/fhir/StructureDefinition/instantiates"


@pytest.fixture
def portal_fhir(kt_sandbox: SandboxInfo) -> Iterator[FhirClient]:
    """A FHIR client as the domain's portal (Device/portal), which creates Tasks."""
    source = kt_token_source(kt_sandbox, "portal")
    with FhirClient(kt_sandbox.fhir_base, token_source=source) as client:
        yield client


def origin(resource: dict[str, Any]) -> list[str]:
    return [
        e["valueReference"]["reference"]
        for e in resource.get("extension", [])
        if e["url"] == RESOURCE_ORIGIN
    ]


def endpoint(**extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Endpoint",
        "meta": {"profile": [f"{KT}/KT2Endpoint"]},
        "identifier": [
            {"system": "https://fhir-burnout.example/test", "value": str(uuid.uuid4())}
        ],
        "status": "active",
        "connectionType": {
            "system": "http://vzvz.nl/fhir/CodeSystem/koppeltaal-endpoint-connection-type",
            "code": "hti-smart-on-fhir",
        },
        "payloadType": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/endpoint-payload-type",
                        "code": "any",
                    }
                ]
            }
        ],
        "address": "https://module.example/koppeltaal/launch",
        **extra,
    }


def kt2_task(definition: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Task",
        "meta": {"profile": [f"{KT}/KT2Task"]},
        "extension": [{"url": INSTANTIATES, "valueReference": {"reference": definition}}],
        "identifier": [
            {"system": "http://fhir-burnout.example/portal-task", "value": str(uuid.uuid4())}
        ],
        "status": "ready",
        "intent": "order",
        "priority": "routine",
        "for": {"reference": "Patient/pat-02"},
        "owner": {"reference": "Patient/pat-02"},
        "requester": {"reference": "Practitioner/prac-1"},
        **extra,
    }


def kt2_subscription(endpoint: str, status: str = "off") -> dict[str, Any]:
    return {
        "resourceType": "Subscription",
        "meta": {"profile": [f"{KT}/KT2Subscription"]},
        "status": status,
        "reason": "test",
        "criteria": "Task?status=ready",
        "channel": {"type": "rest-hook", "endpoint": endpoint},
    }


def test_the_info_says_koppeltaal_and_names_the_portal(kt_sandbox: SandboxInfo) -> None:
    assert kt_sandbox.koppeltaal is True
    assert kt_sandbox.portal == kt_sandbox.fhir_base.removesuffix("/fhir") + "/portal"
    module = kt_sandbox.client("fhir-burnout")
    assert module["private_keys"][0]["alg"] == "RS512"
    assert module["private_keys"][0]["kid"]
    assert {c["client_id"] for c in kt_sandbox.clients} == {"fhir-burnout", "portal"}
    assert "--koppeltaal" in sandbox_command(koppeltaal=True)
    assert "--koppeltaal" not in sandbox_command()


def test_a_post_create_gets_a_server_id_and_our_resource_origin(kt_fhir: FhirClient) -> None:
    created = kt_fhir.create({**endpoint(), "id": "chosen-by-us"})
    assert created["id"] != "chosen-by-us"
    assert uuid.UUID(created["id"]).version == 4
    assert origin(created) == ["Device/fhir-burnout"]
    assert origin(kt_fhir.read("Endpoint", created["id"])) == ["Device/fhir-burnout"]


def test_a_create_that_sends_resource_origin_is_refused(kt_fhir: FhirClient) -> None:
    body = endpoint(
        extension=[
            {"url": RESOURCE_ORIGIN, "valueReference": {"reference": "Device/fhir-burnout"}}
        ]
    )
    with pytest.raises(FhirServerError) as refused:
        kt_fhir.create(body)
    assert refused.value.status == 400


def test_put_create_is_refused_and_stores_nothing(kt_fhir: FhirClient) -> None:
    own_id = f"put-create-{uuid.uuid4().hex[:8]}"
    with pytest.raises(FhirServerError) as refused:
        kt_fhir.update({**endpoint(), "id": own_id})
    assert refused.value.status == 405
    assert "PUT-create is not allowed" in refused.value.issues()[0]["details"]["text"]
    with pytest.raises(FhirServerError) as missing:
        kt_fhir.read("Endpoint", own_id)
    assert missing.value.status == 404


def test_an_update_without_if_match_is_refused_and_with_it_keeps_the_origin(
    kt_fhir: FhirClient,
) -> None:
    created = kt_fhir.create(endpoint())
    with pytest.raises(FhirServerError) as refused:
        kt_fhir.update({**created, "name": "zonder If-Match"})
    assert refused.value.status == 412  # as the reference domain answers it, not 428
    assert "name" not in kt_fhir.read("Endpoint", created["id"])

    updated = kt_fhir.update(
        {**created, "name": "met If-Match"}, version_id=created["meta"]["versionId"]
    )
    assert updated["name"] == "met If-Match"
    assert origin(updated) == ["Device/fhir-burnout"]
    with pytest.raises(FhirServerError) as stale:
        kt_fhir.update({**created, "name": "verouderd"}, version_id=created["meta"]["versionId"])
    assert stale.value.status == 412


def test_changing_resource_origin_is_forbidden(kt_fhir: FhirClient) -> None:
    created = kt_fhir.create(endpoint())
    taken_over = {
        **created,
        "extension": [{"url": RESOURCE_ORIGIN, "valueReference": {"reference": "Device/portal"}}],
    }
    with pytest.raises(FhirServerError) as refused:
        kt_fhir.update(taken_over, version_id=created["meta"]["versionId"])
    assert refused.value.status == 403
    assert origin(kt_fhir.read("Endpoint", created["id"])) == ["Device/fhir-burnout"]


def test_an_update_that_leaves_resource_origin_out_gets_it_back(kt_fhir: FhirClient) -> None:
    created = kt_fhir.create(endpoint())
    without = {**created, "extension": [], "name": "zonder herkomst"}
    updated = kt_fhir.update(without, version_id=created["meta"]["versionId"])
    assert origin(updated) == ["Device/fhir-burnout"]
    assert origin(kt_fhir.read("Endpoint", created["id"])) == ["Device/fhir-burnout"]


@pytest.mark.parametrize("address", ["http://127.0.0.1:9/notify", "http://module.example/notify"])
def test_a_subscription_to_plain_http_is_refused_by_the_domain(
    kt_fhir: FhirClient, address: str
) -> None:
    with pytest.raises(FhirServerError) as refused:
        kt_fhir.create(kt2_subscription(address, status="requested"))
    assert refused.value.status == 422
    assert refused.value.issues()[0]["expression"] == ["Subscription.channel.endpoint"]


@pytest.mark.parametrize("resource_type", ["Observation", "Questionnaire", "ServiceRequest"])
def test_a_type_the_domain_does_not_serve_is_not_found(
    kt_fhir: FhirClient, resource_type: str
) -> None:
    with pytest.raises(FhirServerError) as refused:
        list(kt_fhir.search(resource_type, {}))
    assert refused.value.status == 404


def test_the_module_reads_and_finds_only_what_its_role_names(
    kt_fhir: FhirClient, portal_fhir: FhirClient
) -> None:
    """The module's role has Subscription with resource-origin itself (OWN): the portal's
    Subscription to the same endpoint is neither readable nor found; its own is both."""
    address = f"https://module.example/notify/{uuid.uuid4()}"
    theirs = portal_fhir.create(kt2_subscription(address))
    ours = kt_fhir.create(kt2_subscription(address))
    with pytest.raises(FhirServerError) as refused:
        kt_fhir.read("Subscription", theirs["id"])
    assert refused.value.status == 403
    assert [s["id"] for s in kt_fhir.search("Subscription", {"url": address})] == [ours["id"]]
    found_by_portal = portal_fhir.search("Subscription", {"url": address})
    assert [s["id"] for s in found_by_portal] == [theirs["id"]]


@pytest.mark.parametrize(
    ("element", "extra"),
    [
        ("Task.input", {"input": [{"type": {"text": "vragenlijst"}, "valueString": "x"}]}),
        ("Task.output", {"output": [{"type": {"text": "score"}, "valueInteger": 3}]}),
        ("Task.basedOn", {"basedOn": [{"reference": "CarePlan/x"}]}),
        ("Task.priority", {"priority": "urgent"}),
    ],
)
def test_a_kt2_task_with_a_forbidden_element_is_refused_naming_it(
    portal_fhir: FhirClient, element: str, extra: dict[str, Any]
) -> None:
    with pytest.raises(FhirServerError) as refused:
        portal_fhir.create(kt2_task("ActivityDefinition/any", **extra))
    assert refused.value.status == 422
    assert [i["expression"] for i in refused.value.issues()] == [[element]]


def test_the_portal_creates_a_valid_kt2_task_and_the_module_moves_it_on(
    portal_fhir: FhirClient, kt_fhir: FhirClient
) -> None:
    created = portal_fhir.create(kt2_task("ActivityDefinition/any"))
    assert origin(created) == ["Device/portal"]
    started = kt_fhir.update(
        {**created, "status": "in-progress"}, version_id=created["meta"]["versionId"]
    )
    assert started["status"] == "in-progress"
    assert origin(started) == ["Device/portal"]
    with pytest.raises(FhirServerError) as refused:
        kt_fhir.update(
            {
                **started,
                "status": "completed",
                "output": [{"type": {"text": "score"}, "valueInteger": 1}],
            },
            version_id=started["meta"]["versionId"],
        )
    assert refused.value.status == 422
    assert kt_fhir.read("Task", created["id"])["status"] == "in-progress"


def test_every_answer_carries_a_request_id_and_the_trace_id(kt_sandbox: SandboxInfo) -> None:
    token = kt_token_source(kt_sandbox).token()
    traced = requests.get(
        f"{kt_sandbox.fhir_base}/Patient/pat-01",
        headers={"Authorization": f"Bearer {token}", "X-Trace-Id": "trace-from-the-launch"},
        timeout=30,
    )
    assert traced.status_code == 200
    assert traced.headers["X-Trace-Id"] == "trace-from-the-launch"
    noop = requests.get(
        f"{kt_sandbox.fhir_base}/Patient", headers={"Authorization": "Bearer NOOP"}, timeout=30
    )
    assert noop.status_code == 401  # the launch's NOOP access token is no FHIR token
    ids = {traced.headers["X-Request-Id"], noop.headers["X-Request-Id"]}
    assert len(ids) == 2
    assert all(uuid.UUID(i).version == 4 for i in ids)
    assert uuid.UUID(noop.headers["X-Trace-Id"]).version == 4
    ours = str(uuid.uuid4())
    echoed = requests.get(
        f"{kt_sandbox.fhir_base}/Patient/pat-01",
        headers={"Authorization": f"Bearer {token}", "X-Request-Id": ours},
        timeout=30,
    )
    assert echoed.headers["X-Request-Id"] == ours


def test_the_plain_sandbox_is_unaffected(sandbox: SandboxInfo, fhir: FhirClient) -> None:
    assert sandbox.koppeltaal is False
    assert sandbox.portal is None
    own_id = f"plain-{uuid.uuid4().hex[:8]}"
    created = fhir.update({**endpoint(), "id": own_id})  # PUT-create, no If-Match
    assert created["id"] == own_id
    assert origin(created) == []
    answer = requests.get(f"{sandbox.fhir_base}/metadata", timeout=30)
    assert "X-Request-Id" not in answer.headers
