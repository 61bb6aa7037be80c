"""KT2_AuditEvents the module writes: launched, launch refused, notification received,
Task status changed, processing error, results document fetched.

Builders only (FHIR JSON, no I/O): whoever writes them queues them through the outbox. Every
event carries ``meta.profile`` KT2AuditEvent, ``agent.who`` our Device (``Device/<client
id>``), ``source.observer`` the same Device, ``source.site`` our domain name, 1..* entity,
and the trace extensions ``trace-id`` / ``request-id`` / ``correlation-id`` (valueId; from
the current trace unless given). Codes (TOP-KT-012b/-012c, the TOP-KT-011 memo in the IG):

============================  =========================================  ======  ========
event                         type / subtype                             action  outcome
============================  =========================================  ======  ========
launched                      DCM 110100 / DCM 110120 Application Start  E       0
launch refused                DCM 110100 / DCM 110120                    E       4 or 8
notification received         iso-21089-lifecycle ``receive``            E       0
Task status changed           audit-event-type ``rest`` / ``update``     U       0
processing error              ``rest`` / the failed interaction          by it   4/8/12
results document fetched      ``rest`` / ``read``                        R       0
============================  =========================================  ======  ========

Agents (IG 0.16.3, the KT2_AuditEvent notes: "at least 2 agents, one for the source, one
for the destination"; agent.who only a Device). Ours is always the first; the other party
is the second, when it is known: a launch's launcher (the HTI token's ``iss``, DCM 110151
Application Launcher, requestor, as the IG's launch example), a status change's destination
(the Task's ``resource-origin``, the portal whose Task it is: DCM 110152, us the source DCM
110153), a processing error's (the resource's ``resource-origin``, 110152), a results
document's fetcher (the EHR: the token's client, 110152, requestor; us the source). A
notification received has only us: the TOP-KT-011 memo §3.4 removed the sending party's
agent.

The IG leaves two open: the Status Change mapping lives only in the Confluence TOP-KT-011
(we record it as the RESTful update it is), and TOP-KT-012b names the processing-error type
both ``rest`` (its field table, which we follow) and ``transmit``.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from fhir_burnout.koppeltaal._profiles import AUDIT_EVENT_PROFILE, KT2, is_fhir_id
from fhir_burnout.koppeltaal._trace import TraceIds, audit_ids

DCM = "http://dicom.nema.org/resources/ontology/DCM"
AUDIT_EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
ISO_21089_LIFECYCLE = "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle"
RESTFUL_INTERACTION = "http://hl7.org/fhir/restful-interaction"
RESOURCE_TYPES = "http://hl7.org/fhir/resource-types"
SECURITY_SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
TRACE_ID_EXTENSION = KT2 + "trace-id"
REQUEST_ID_EXTENSION = KT2 + "request-id"
CORRELATION_ID_EXTENSION = KT2 + "correlation-id"

APPLICATION_ACTIVITY = {"system": DCM, "code": "110100", "display": "Application Activity"}
APPLICATION_START = {"system": DCM, "code": "110120", "display": "Application Start"}
APPLICATION = {"system": DCM, "code": "110150", "display": "Application"}
APPLICATION_LAUNCHER = {"system": DCM, "code": "110151", "display": "Application Launcher"}
DESTINATION_ROLE = {"system": DCM, "code": "110152", "display": "Destination Role ID"}
SOURCE_ROLE = {"system": DCM, "code": "110153", "display": "Source Role ID"}
RESOURCE_ORIGIN = KT2 + "resource-origin"
RECEIVE = {
    "system": ISO_21089_LIFECYCLE,
    "code": "receive",
    "display": "Receive/Retain Record Lifecycle Event",
}
REST = {"system": AUDIT_EVENT_TYPE, "code": "rest", "display": "RESTful Operation"}

#: AuditEvent.action for a FHIR interaction (R4 AuditEvent notes; IG topic-11 feedback).
ACTIONS = {
    "create": "C", "read": "R", "vread": "R", "history-instance": "R", "history-type": "R",
    "update": "U", "patch": "U", "delete": "D", "search": "E", "search-type": "E",
    "transaction": "E", "batch": "E", "operation": "E",
}  # fmt: skip
#: TOP-KT-012b error kinds: a transient error (4, or 12 when we are down), a data error
#: (expected: 4), a terminal error (unexpected: 8).
ErrorKind = Literal["transient", "data", "terminal"]
_OUTCOMES: dict[str, str] = {"transient": "4", "data": "4", "terminal": "8"}


def _device(client_id: str) -> dict[str, str]:
    return {"reference": f"Device/{client_id}", "type": "Device"}


def agent(device_id: str, type_: dict[str, str], *, requestor: bool) -> dict[str, Any]:
    """One ``agent``: a Device (the only kind KT2_AuditEvent allows), its role, requestor."""
    return {"type": {"coding": [type_]}, "who": _device(device_id), "requestor": requestor}


def origin_device(resource: Mapping[str, Any] | None) -> str | None:
    """The Device id in a resource's ``resource-origin`` (the app that made it, set by the
    domain's server), or None."""
    for extension in (resource or {}).get("extension", []) or []:
        if isinstance(extension, dict) and extension.get("url") == RESOURCE_ORIGIN:
            reference = str((extension.get("valueReference") or {}).get("reference", ""))
            device = reference.removeprefix("Device/")
            if reference.startswith("Device/") and is_fhir_id(device):
                return device
    return None


def _coding_of(resource_type: str) -> dict[str, str]:
    return {"system": RESOURCE_TYPES, "code": resource_type, "display": resource_type}


def _trace_extensions(ids: TraceIds) -> list[dict[str, str]]:
    # The KT2 trace extensions are valueId (1-64 of A-Z a-z 0-9 - .): an id from another
    # system that does not fit is left out rather than making the event invalid.
    pairs = (
        (TRACE_ID_EXTENSION, ids.trace_id),
        (REQUEST_ID_EXTENSION, ids.request_id),
        (CORRELATION_ID_EXTENSION, ids.correlation_id),
    )
    return [{"url": url, "valueId": v} for url, v in pairs if v and is_fhir_id(v)]


def _recorded(now: datetime | None) -> str:
    when = now or datetime.now(UTC)
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def site_of(base_url: str) -> str:
    """``source.site``: the domain name of the app that records the event (TOP-KT-011 as
    amended: the observer's domain name, not a full URL)."""
    return urlsplit(base_url).hostname or base_url


def history_reference(resource_type: str, resource_id: str, version: str | None) -> str:
    """``<Type>/<id>/_history/<version>`` (``<Type>/<id>`` when the version is unknown)."""
    plain = f"{resource_type}/{resource_id}"
    return f"{plain}/_history/{version}" if version else plain


def audit_event(
    *,
    client_id: str,
    base_url: str,
    type_: dict[str, str],
    subtype: dict[str, str] | None,
    action: str,
    outcome: str,
    entities: list[dict[str, Any]],
    outcome_desc: str | None = None,
    agent_type: dict[str, str] = APPLICATION,
    requestor: bool = True,
    other: dict[str, Any] | None = None,
    ids: TraceIds | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """A KT2_AuditEvent with our Device as agent and observer (the shape all others share);
    ``other``: the other party's agent (:func:`agent`), second."""
    if not entities:
        raise ValueError("a KT2_AuditEvent needs at least one entity")
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "meta": {"profile": [AUDIT_EVENT_PROFILE]},
    }
    extensions = _trace_extensions(ids if ids is not None else audit_ids())
    if extensions:
        event["extension"] = extensions
    event["type"] = type_
    if subtype:
        event["subtype"] = [subtype]
    event.update(action=action, recorded=_recorded(now), outcome=outcome)
    if outcome_desc:
        event["outcomeDesc"] = outcome_desc
    event["agent"] = [agent(client_id, agent_type, requestor=requestor)]
    if other is not None:
        event["agent"].append(other)
    event["source"] = {
        "site": site_of(base_url),
        "observer": _device(client_id),
        "type": [{"system": SECURITY_SOURCE_TYPE, "code": "4", "display": "Application Server"}],
    }
    event["entity"] = entities
    return event


def task_entity(task_id: str, version: str | None) -> dict[str, Any]:
    """The entity of a launch or status event: the Task, at the version it concerns."""
    return {
        "what": {"reference": history_reference("Task", task_id, version), "type": "Task"},
        "type": _coding_of("Task"),
    }


def _launch_entities(task_id: str | None, version: str | None, desc: str) -> list[dict[str, Any]]:
    if task_id:
        return [task_entity(task_id, version)]
    # Refused before the Task is known (a bad launch token): an entity is still required;
    # the IG's error examples record an OperationOutcome with a description.
    return [{"type": _coding_of("OperationOutcome"), "description": desc}]


def launched(
    *,
    client_id: str,
    base_url: str,
    task_id: str,
    task_version: str | None,
    launcher: str | None = None,
    ids: TraceIds | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """A launch we received and accepted (TOP-KT-012c: outcome 0; agent us, not requestor,
    and the ``launcher`` (its Device id) as Application Launcher, requestor; entity the Task
    at its version; trace-id the HTI ``jti``)."""
    return audit_event(
        client_id=client_id,
        base_url=base_url,
        type_=APPLICATION_ACTIVITY,
        subtype=APPLICATION_START,
        action="E",
        outcome="0",
        entities=[task_entity(task_id, task_version)],
        requestor=False,
        other=_launcher(launcher),
        ids=ids,
        now=now,
    )


def _launcher(device_id: str | None) -> dict[str, Any] | None:
    return agent(device_id, APPLICATION_LAUNCHER, requestor=True) if device_id else None


def launch_failed(
    *,
    client_id: str,
    base_url: str,
    description: str,
    expected: bool = True,
    task_id: str | None = None,
    task_version: str | None = None,
    launcher: str | None = None,
    ids: TraceIds | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """A launch we refused or could not finish (TOP-KT-012c): outcome 4 for an expected
    refusal (expired or replayed token, another patient's Task, a foreign definition), 8 for
    an unexpected error; ``description`` is the readable outcomeDesc (no health data); the
    ``launcher`` as second agent when the launch named one."""
    return audit_event(
        client_id=client_id,
        base_url=base_url,
        type_=APPLICATION_ACTIVITY,
        subtype=APPLICATION_START,
        action="E",
        outcome="4" if expected else "8",
        outcome_desc=description,
        entities=_launch_entities(task_id, task_version, description),
        requestor=False,
        other=_launcher(launcher),
        ids=ids,
        now=now,
    )


def notification_received(
    *,
    client_id: str,
    base_url: str,
    subscription_id: str,
    ids: TraceIds | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """A Subscription notification we received (TOP-KT-011 memo §3.4: type ``receive``; only
    the receiving party as agent, so us, as destination)."""
    return audit_event(
        client_id=client_id,
        base_url=base_url,
        type_=RECEIVE,
        subtype=None,
        action="E",
        outcome="0",
        entities=[
            {
                "what": {"reference": f"Subscription/{subscription_id}", "type": "Subscription"},
                "type": _coding_of("Subscription"),
            }
        ],
        agent_type=DESTINATION_ROLE,
        requestor=False,
        ids=ids,
        now=now,
    )


def status_changed(
    *,
    client_id: str,
    base_url: str,
    task_id: str,
    task_version: str | None,
    old: str,
    new: str,
    destination: str | None = None,
    ids: TraceIds | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """We changed a Task's status (TOP-KT-011 memo §3.5, an app-owned event): the RESTful
    update of the Task, entity the Task at its new version, outcomeDesc old → new; us the
    source (DCM 110153, requestor), the ``destination`` (the Device whose Task it is: its
    resource-origin) DCM 110152."""
    return audit_event(
        client_id=client_id,
        base_url=base_url,
        type_=REST,
        subtype={"system": RESTFUL_INTERACTION, "code": "update", "display": "update"},
        action="U",
        outcome="0",
        outcome_desc=f"Task.status {old} -> {new}",
        entities=[task_entity(task_id, task_version)],
        agent_type=SOURCE_ROLE,
        other=_destination(destination),
        ids=ids,
        now=now,
    )


def _destination(device_id: str | None) -> dict[str, Any] | None:
    return agent(device_id, DESTINATION_ROLE, requestor=False) if device_id else None


def processing_error(
    *,
    client_id: str,
    base_url: str,
    kind: ErrorKind,
    description: str,
    interaction: str = "read",
    resource_type: str | None = None,
    resource_id: str | None = None,
    version: str | None = None,
    query: str | None = None,
    system_down: bool = False,
    destination: str | None = None,
    ids: TraceIds | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """We could not process a resource from the domain (TOP-KT-012b): type ``rest`` with the
    interaction as subtype, outcome by ``kind`` (transient 4, or 12 with ``system_down``;
    data 4; terminal 8), entity the resource at its version and the query (base64) if any;
    the trace ids of the failing request; the ``destination`` (the Device the resource came
    from: its resource-origin) as second agent, DCM 110152."""
    if interaction not in ACTIONS:
        raise ValueError(f"interaction {interaction!r}: use one of {tuple(ACTIONS)}")
    entity: dict[str, Any] = {}
    if resource_type and resource_id:
        entity["what"] = {
            "reference": history_reference(resource_type, resource_id, version),
            "type": resource_type,
        }
    if resource_type:
        entity["type"] = _coding_of(resource_type)
    if query:
        entity["query"] = base64.b64encode(query.encode()).decode("ascii")
    if not entity:
        entity = {"type": _coding_of("OperationOutcome"), "description": description}
    outcome = "12" if kind == "transient" and system_down else _OUTCOMES[kind]
    return audit_event(
        client_id=client_id,
        base_url=base_url,
        type_=REST,
        subtype={"system": RESTFUL_INTERACTION, "code": interaction, "display": interaction},
        action=ACTIONS[interaction],
        outcome=outcome,
        outcome_desc=description,
        entities=[entity],
        other=_destination(destination),
        ids=ids,
        now=now,
    )


def document_fetched(
    *,
    client_id: str,
    base_url: str,
    document_reference: str,
    fetched_by: str | None,
    ids: TraceIds | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The domain's EHR fetched a results document from us (draft T029, "Audit-logging bij
    de bron": the source logs who fetched which document when): the RESTful ``read`` of the
    document, entity the DocumentReference (``DocumentReference/<id>``) whose link it
    followed; us the source (DCM 110153), the EHR (``fetched_by``: its Device, the token's
    client) the destination (DCM 110152) and requestor."""
    plain = document_reference.split("/_history/", maxsplit=1)[0]
    entity = {
        "what": {"reference": plain, "type": "DocumentReference"},
        "type": _coding_of("DocumentReference"),
    }
    return audit_event(
        client_id=client_id,
        base_url=base_url,
        type_=REST,
        subtype={"system": RESTFUL_INTERACTION, "code": "read", "display": "read"},
        action="R",
        outcome="0",
        entities=[entity],
        agent_type=SOURCE_ROLE,
        requestor=False,
        other=_fetcher(fetched_by),
        ids=ids,
        now=now,
    )


def _fetcher(device_id: str | None) -> dict[str, Any] | None:
    # A client id that is no FHIR id cannot be a Device reference: the event keeps us alone.
    if not device_id or not is_fhir_id(device_id):
        return None
    return agent(device_id, DESTINATION_ROLE, requestor=True)
