"""KT2_AuditEvents the module writes: launched, launch refused, notification received,
Task status changed, processing error.

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
============================  =========================================  ======  ========

The IG leaves two open: the Status Change mapping lives only in the Confluence TOP-KT-011
(we record it as the RESTful update it is), and TOP-KT-012b names the processing-error type
both ``rest`` (its field table, which we follow) and ``transmit``.
"""

from __future__ import annotations

import base64
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
DESTINATION_ROLE = {"system": DCM, "code": "110152", "display": "Destination Role ID"}
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
    ids: TraceIds | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """A KT2_AuditEvent with our Device as agent and observer (the shape all others share)."""
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
    event["agent"] = [
        {"type": {"coding": [agent_type]}, "who": _device(client_id), "requestor": requestor}
    ]
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
    ids: TraceIds | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """A launch we received and accepted (TOP-KT-012c: outcome 0; agent us, not requestor;
    entity the Task at its version; trace-id the HTI ``jti``)."""
    return audit_event(
        client_id=client_id,
        base_url=base_url,
        type_=APPLICATION_ACTIVITY,
        subtype=APPLICATION_START,
        action="E",
        outcome="0",
        entities=[task_entity(task_id, task_version)],
        requestor=False,
        ids=ids,
        now=now,
    )


def launch_failed(
    *,
    client_id: str,
    base_url: str,
    description: str,
    expected: bool = True,
    task_id: str | None = None,
    task_version: str | None = None,
    ids: TraceIds | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """A launch we refused or could not finish (TOP-KT-012c): outcome 4 for an expected
    refusal (expired or replayed token, another patient's Task, a foreign definition), 8 for
    an unexpected error; ``description`` is the readable outcomeDesc (no health data)."""
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
    ids: TraceIds | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """We changed a Task's status (TOP-KT-011 memo §3.5, an app-owned event): the RESTful
    update of the Task, entity the Task at its new version, outcomeDesc old → new."""
    return audit_event(
        client_id=client_id,
        base_url=base_url,
        type_=REST,
        subtype={"system": RESTFUL_INTERACTION, "code": "update", "display": "update"},
        action="U",
        outcome="0",
        outcome_desc=f"Task.status {old} -> {new}",
        entities=[task_entity(task_id, task_version)],
        ids=ids,
        now=now,
    )


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
    ids: TraceIds | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """We could not process a resource from the domain (TOP-KT-012b): type ``rest`` with the
    interaction as subtype, outcome by ``kind`` (transient 4, or 12 with ``system_down``;
    data 4; terminal 8), entity the resource at its version and the query (base64) if any;
    the trace ids of the failing request."""
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
        ids=ids,
        now=now,
    )
