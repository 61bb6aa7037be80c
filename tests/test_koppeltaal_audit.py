"""KT2_AuditEvents the module writes (launched, launch refused, notification received, Task
status changed, processing error): the codes of TOP-KT-011/-012b/-012c, and the Koppeltaal
sandbox accepting each as the module's."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from fhir_burnout.koppeltaal import _audit as audit
from fhir_burnout.koppeltaal._profiles import AUDIT_EVENT_PROFILE
from fhir_burnout.koppeltaal._trace import TraceIds, launch_trace, outgoing_headers, traced
from fhir_burnout.resources._fhirjson import normalise

APP = "https://burnout.example-practice.nl"
WHEN = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
IDS = TraceIds("trace-1", "request-1", "cause-1")
COMMON = {"client_id": "fhir-burnout", "base_url": APP, "now": WHEN}


def coding(system, code):
    return (system, code)


def codes(value):
    return coding(value["system"], value["code"])


EVENTS = {
    "launched": lambda ids: audit.launched(
        task_id="t1", task_version="3", launcher="portal", ids=ids, **COMMON
    ),
    "launch-refused": lambda ids: audit.launch_failed(
        description="Het startbericht is verlopen.",
        task_id="t1",
        task_version="3",
        launcher="portal",
        ids=ids,
        **COMMON,
    ),
    "launch-error": lambda ids: audit.launch_failed(
        description="Interne fout.", expected=False, ids=ids, **COMMON
    ),
    "notification": lambda ids: audit.notification_received(
        subscription_id="s1", ids=ids, **COMMON
    ),
    "status": lambda ids: audit.status_changed(
        task_id="t1",
        task_version="4",
        old="ready",
        new="in-progress",
        destination="portal",
        ids=ids,
        **COMMON,
    ),
    "processing-error": lambda ids: audit.processing_error(
        kind="data",
        description="Task.for is not a Patient",
        resource_type="Task",
        resource_id="t1",
        version="2",
        destination="portal",
        ids=ids,
        **COMMON,
    ),
    "document-fetched": lambda ids: audit.document_fetched(
        document_reference="DocumentReference/d1", fetched_by="portal", ids=ids, **COMMON
    ),
}

#: The agents (IG 0.16.3 KT2_AuditEvent notes: one for the source, one for the destination):
#: ours first, then the other party; (Device, agent.type, requestor).
US, LAUNCHER = ("fhir-burnout", "110150", False), ("portal", "110151", True)
EXPECTED = {
    # name: (type, subtype, action, outcome, agents)
    "launched": (
        (audit.DCM, "110100"), (audit.DCM, "110120"), "E", "0", [US, LAUNCHER],
    ),
    "launch-refused": (
        (audit.DCM, "110100"), (audit.DCM, "110120"), "E", "4", [US, LAUNCHER],
    ),
    # refused before a launch token named its launcher: only we are known
    "launch-error": (
        (audit.DCM, "110100"), (audit.DCM, "110120"), "E", "8", [US],
    ),
    # the TOP-KT-011 memo §3.4: only the receiving party
    "notification": (
        (audit.ISO_21089_LIFECYCLE, "receive"), None, "E", "0",
        [("fhir-burnout", "110152", False)],
    ),
    "status": (
        (audit.AUDIT_EVENT_TYPE, "rest"), (audit.RESTFUL_INTERACTION, "update"), "U", "0",
        [("fhir-burnout", "110153", True), ("portal", "110152", False)],
    ),
    "processing-error": (
        (audit.AUDIT_EVENT_TYPE, "rest"), (audit.RESTFUL_INTERACTION, "read"), "R", "4",
        [("fhir-burnout", "110150", True), ("portal", "110152", False)],
    ),
    # draft T029: the EHR (the token's client) fetched a results document from us
    "document-fetched": (
        (audit.AUDIT_EVENT_TYPE, "rest"), (audit.RESTFUL_INTERACTION, "read"), "R", "0",
        [("fhir-burnout", "110153", False), ("portal", "110152", True)],
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", EVENTS)
def test_each_event_has_its_codes_and_the_common_kt2_shape(name):
    event = EVENTS[name](IDS)
    type_, subtype, action, outcome, agents = EXPECTED[name]
    assert event["meta"]["profile"] == [AUDIT_EVENT_PROFILE]
    assert codes(event["type"]) == type_
    assert [codes(s) for s in event.get("subtype", [])] == ([subtype] if subtype else [])
    assert (event["action"], event["outcome"]) == (action, outcome)
    assert [
        (a["who"]["reference"], a["type"]["coding"][0]["code"], a["requestor"])
        for a in event["agent"]
    ] == [(f"Device/{device}", code, requestor) for device, code, requestor in agents]
    assert all(a["who"]["type"] == "Device" for a in event["agent"])
    assert event["source"]["observer"] == {"reference": "Device/fhir-burnout", "type": "Device"}
    assert event["source"]["site"] == "burnout.example-practice.nl"
    assert event["entity"]
    assert event["recorded"] == "2026-12-05T09:00:00.000Z"
    assert {e["url"].rsplit("/", 1)[1]: e["valueId"] for e in event["extension"]} == {
        "trace-id": "trace-1",
        "request-id": "request-1",
        "correlation-id": "cause-1",
    }
    assert ("outcomeDesc" in event) == (outcome != "0" or name == "status")
    normalise(event)  # valid FHIR R4 structure


def test_a_launch_names_the_task_at_its_version():
    event = EVENTS["launched"](IDS)
    assert event["entity"] == [
        {
            "what": {"reference": "Task/t1/_history/3", "type": "Task"},
            "type": {"system": audit.RESOURCE_TYPES, "code": "Task", "display": "Task"},
        }
    ]


def test_a_launch_refused_before_the_task_is_known_still_has_an_entity():
    event = audit.launch_failed(description="Verlopen startbericht.", ids=IDS, **COMMON)
    [entity] = event["entity"]
    assert entity["type"]["code"] == "OperationOutcome"
    assert entity["description"] == event["outcomeDesc"] == "Verlopen startbericht."


def test_the_launch_trace_id_is_the_launch_token_jti():
    jti = "5b7e8f7c-0a8f-4f2c-9d2e-1d3c5e7a9b11"
    trace = launch_trace(jti)
    with traced(trace.trace_id, trace.cause):
        event = audit.launched(task_id="t1", task_version="1", **COMMON)
    ids = {e["url"].rsplit("/", 1)[1]: e["valueId"] for e in event["extension"]}
    assert ids == {"trace-id": jti}


def test_ids_default_to_the_current_trace_and_its_last_request():
    with traced("trace-9", "notification-9"):
        sent = outgoing_headers()
        event = audit.processing_error(
            kind="transient", description="EHR gaf geen antwoord", **COMMON
        )
    ids = {e["url"].rsplit("/", 1)[1]: e["valueId"] for e in event["extension"]}
    assert ids == {
        "trace-id": "trace-9",
        "request-id": sent["X-Request-Id"],
        "correlation-id": "notification-9",
    }


def test_an_id_that_is_not_a_fhir_id_is_left_out_not_sent_invalid():
    event = audit.launched(
        task_id="t1", task_version="1", ids=TraceIds("has space", "ok-1", None), **COMMON
    )
    assert [e["valueId"] for e in event["extension"]] == ["ok-1"]


@pytest.mark.parametrize(
    ("kind", "system_down", "outcome"),
    [("transient", False, "4"), ("transient", True, "12"), ("data", False, "4"),
     ("terminal", False, "8")],
)  # fmt: skip
def test_a_processing_error_outcome_follows_its_kind(kind, system_down, outcome):
    event = audit.processing_error(
        kind=kind, description="x", system_down=system_down, ids=IDS, **COMMON
    )
    assert event["outcome"] == outcome


def test_a_processing_error_records_the_query_base64_encoded():
    event = audit.processing_error(
        kind="data", description="x", interaction="search-type", resource_type="Task",
        query="Task?status=ready", ids=IDS, **COMMON,
    )  # fmt: skip
    [entity] = event["entity"]
    assert base64.b64decode(entity["query"]).decode() == "Task?status=ready"
    assert event["action"] == "E"


def test_an_event_without_an_entity_is_refused():
    with pytest.raises(ValueError, match="entity"):
        audit.audit_event(
            client_id="fhir-burnout", base_url=APP, type_=audit.REST, subtype=None,
            action="E", outcome="0", entities=[],
        )  # fmt: skip


@pytest.mark.parametrize("name", EVENTS)
def test_the_koppeltaal_domain_accepts_each_event_from_the_module(kt_fhir, name):
    created = kt_fhir.create(EVENTS[name](IDS))
    assert created["id"]
    # The module's role may create and search AuditEvents, not read them by id.
    [stored] = kt_fhir.search("AuditEvent", {"_id": created["id"]})
    assert stored["type"] == EVENTS[name](IDS)["type"]
    assert stored["agent"][0]["who"]["reference"] == "Device/fhir-burnout"


@pytest.mark.parametrize(
    ("extension", "device"),
    [
        ([{"url": audit.RESOURCE_ORIGIN, "valueReference": {"reference": "Device/portal"}}],
         "portal"),
        ([{"url": audit.RESOURCE_ORIGIN, "valueReference": {"reference": "Patient/p1"}}], None),
        ([{"url": audit.RESOURCE_ORIGIN, "valueReference": {"reference": "Device/a b"}}], None),
        ([], None),
    ],
)  # fmt: skip
def test_the_other_party_is_the_device_a_resource_came_from(extension, device):
    assert audit.origin_device({"resourceType": "Task", "extension": extension}) == device
