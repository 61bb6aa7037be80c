"""The programme as Koppeltaal 2.0 resources: a KT2_ActivityDefinition per module and per track,
and the one KT2_Endpoint (our HTI launch URL) they all point at.

Built from the package ``resources.build_resources`` makes, with no I/O. Profiles, from the
Koppeltaal IG FSH (vzvznl/Koppeltaal-2.0-FHIR ``input/fsh/``):

- ``KT2_ActivityDefinition``: ``url`` and ``title`` 1..1; ``extension[endpoint]``
  (KT2EndpointExtension, Reference(KT2_Endpoint)) 1..*; ``extension[publisherId]``
  (KT2PublisherId, valueId) 0..1; ``topic`` from KoppeltaalDefinitionTopic; and 0..0 for
  :data:`FORBIDDEN_ACTIVITY_DEFINITION` (``publisher``, ``date``, ``contact``, ``kind``,
  ``timing[x]``, ``useContext``, ``jurisdiction``, ``relatedArtifact`` and more).
- ``KT2_Endpoint``: ``connectionType`` fixed exactly (system and code, no display)
  ``koppeltaal-endpoint-connection-type#hti-smart-on-fhir``, ``payloadType`` fixed
  ``endpoint-payload-type#any``; ``contact``, ``period`` and ``payloadMimeType`` 0..0.

Which definition is a module and which a track (the whole programme, for a portal that
assigns it at once) is told by the ``identifier`` system: ``<canonical>/koppeltaal/module``
or ``<canonical>/koppeltaal/track``, value the module or track code. ``useContext`` would be
the other place, but the IG's KT2_ActivityDefinition has it 0..0.
"""

from __future__ import annotations

import re
from typing import Any, Literal
from urllib.parse import urlsplit

KT2 = "http://koppeltaal.nl/fhir/StructureDefinition/"
ACTIVITY_DEFINITION_PROFILE = KT2 + "KT2ActivityDefinition"
ENDPOINT_PROFILE = KT2 + "KT2Endpoint"
AUDIT_EVENT_PROFILE = KT2 + "KT2AuditEvent"
ENDPOINT_EXTENSION = KT2 + "KT2EndpointExtension"
PUBLISHER_ID_EXTENSION = KT2 + "KT2PublisherId"
RESOURCE_ORIGIN_EXTENSION = KT2 + "resource-origin"

CONNECTION_TYPE_SYSTEM = "http://vzvz.nl/fhir/CodeSystem/koppeltaal-endpoint-connection-type"
PAYLOAD_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/endpoint-payload-type"
DEFINITION_TOPIC_SYSTEM = "http://vzvz.nl/fhir/CodeSystem/koppeltaal-definition-topic"

#: Where the portal form-POSTs the HTI launch (``launch`` and ``iss``), below the app's base URL.
LAUNCH_PATH = "/koppeltaal/launch"

#: KT2_ActivityDefinition elements with cardinality 0..0 in the IG (choice types by prefix).
FORBIDDEN_ACTIVITY_DEFINITION = (
    "experimental", "subject", "date", "publisher", "contact", "useContext", "jurisdiction",
    "purpose", "usage", "copyright", "approvalDate", "lastReviewDate", "effectivePeriod",
    "author", "editor", "reviewer", "endorser", "relatedArtifact", "library", "kind",
    "profile", "intent", "priority", "doNotPerform", "timing", "location", "product",
    "quantity", "dosage", "bodySite", "specimenRequirement", "observationRequirement",
    "observationResultRequirement", "transform", "dynamicValue",
)  # fmt: skip
#: KT2_Endpoint elements with cardinality 0..0 in the IG.
FORBIDDEN_ENDPOINT = ("contact", "period", "payloadMimeType")

# FHIR R4 ``id`` (§2.24.0.1): what KT2PublisherId and the trace extensions may hold.
_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_TOPICS = {"self-treatment": "Zelfhulp", "self-assessment": "Zelfstarten"}

DefinitionKind = Literal["module", "track"]


def is_fhir_id(value: str) -> bool:
    """Whether ``value`` fits the FHIR ``id`` type (1-64 of A-Z a-z 0-9 - .)."""
    return bool(_FHIR_ID.fullmatch(value))


def is_secure_enough(base_url: str) -> bool:
    """Whether ``base_url`` may be given to a Koppeltaal domain: https, or plain http on this
    machine only (127.0.0.1, localhost, ::1: a sandbox on a developer's laptop)."""
    parts = urlsplit(base_url)
    local = parts.hostname in ("127.0.0.1", "localhost", "::1")
    return parts.scheme == "https" or (parts.scheme == "http" and local)


def launch_url(base_url: str) -> str:
    """The Endpoint.address of our HTI launch: ``<base_url>/koppeltaal/launch``.

    Koppeltaal wants https; plain http is accepted for 127.0.0.1 and localhost only (a sandbox).
    """
    if not is_secure_enough(base_url):
        raise ValueError(f"{base_url}: a Koppeltaal launch URL must be https")
    return base_url.rstrip("/") + LAUNCH_PATH


def canonical_base(resources: list[dict[str, Any]]) -> str:
    """The programme's canonical base (``https://…/fhir``), read from its module or track URLs."""
    for resource in resources:
        url = str(resource.get("url", ""))
        for kind in ("/ActivityDefinition/", "/PlanDefinition/"):
            if kind in url:
                return url.rsplit(kind, 1)[0]
    raise ValueError("the package holds no ActivityDefinition or PlanDefinition")


def identifier_system(canonical: str, kind: DefinitionKind) -> str:
    """The identifier system that marks a KT2 definition as a module or a track."""
    return f"{canonical}/koppeltaal/{kind}"


def definition_url(canonical: str, kind: DefinitionKind, code: str) -> str:
    """The canonical URL of our KT2 ActivityDefinition for a module or track.

    Its own path, not the SMART package's ActivityDefinition URL: the two are different
    resources (different profile and content), and url + version must name one of them.
    """
    return f"{canonical}/koppeltaal/ActivityDefinition/{kind}-{code}"


def endpoint_identifier(canonical: str, publisher_id: str) -> dict[str, str]:
    """The identifier publishing finds our Endpoint by (Endpoint has no canonical URL)."""
    return {"system": f"{canonical}/koppeltaal/endpoint", "value": publisher_id}


def definition_kind(resource: dict[str, Any]) -> tuple[DefinitionKind, str] | None:
    """``("module", code)`` or ``("track", code)`` for one of our KT2 definitions, else None."""
    kinds: tuple[DefinitionKind, ...] = ("module", "track")
    for identifier in resource.get("identifier", []):
        system = str(identifier.get("system", ""))
        for kind in kinds:
            if system.endswith(f"/koppeltaal/{kind}") and identifier.get("value"):
                return kind, str(identifier["value"])
    return None


def publisher_id_of(resource: dict[str, Any]) -> str | None:
    """The KT2PublisherId of an ActivityDefinition, if it has one."""
    for ext in resource.get("extension", []):
        if ext.get("url") == PUBLISHER_ID_EXTENSION:
            return str(ext.get("valueId")) if ext.get("valueId") else None
    return None


def kt2_endpoint(base_url: str, canonical: str, publisher_id: str) -> dict[str, Any]:
    """Our KT2_Endpoint: the HTI launch URL portals form-POST the launch token to."""
    return {
        "resourceType": "Endpoint",
        "meta": {"profile": [ENDPOINT_PROFILE]},
        "identifier": [endpoint_identifier(canonical, publisher_id)],
        "status": "active",
        # Fixed in KT2_Endpoint as system + code exactly: a display is refused (IG 0.16.3).
        "connectionType": {"system": CONNECTION_TYPE_SYSTEM, "code": "hti-smart-on-fhir"},
        "name": "fhir_burnout: HTI launch",
        "payloadType": [{"coding": [{"system": PAYLOAD_TYPE_SYSTEM, "code": "any"}]}],
        "address": launch_url(base_url),
    }


def kt2_activity_definitions(
    resources: list[dict[str, Any]],
    *,
    endpoint: str,
    publisher_id: str,
    topic: str = "self-treatment",
) -> list[dict[str, Any]]:
    """A KT2_ActivityDefinition per module (the package's ActivityDefinitions) and per track
    (its PlanDefinitions), in package order: modules first, then tracks.

    ``endpoint`` is the literal reference to our KT2_Endpoint (``Endpoint/<server id>``);
    ``publisher_id`` is our client id, the KT2PublisherId vendors search by.
    """
    if not is_fhir_id(publisher_id):
        raise ValueError(f"{publisher_id!r}: KT2PublisherId must be a FHIR id")
    if topic not in _TOPICS:
        raise ValueError(f"topic must be one of {tuple(_TOPICS)}")
    canonical = canonical_base(resources)
    common = {"endpoint": endpoint, "publisher_id": publisher_id, "topic": topic}
    modules = [r for r in resources if r["resourceType"] == "ActivityDefinition"]
    tracks = [r for r in resources if r["resourceType"] == "PlanDefinition"]
    return [_definition(r, "module", canonical, **common) for r in modules] + [
        _definition(r, "track", canonical, **common) for r in tracks
    ]


def _definition(
    source: dict[str, Any],
    kind: DefinitionKind,
    canonical: str,
    *,
    endpoint: str,
    publisher_id: str,
    topic: str,
) -> dict[str, Any]:
    code = str(source["id"])
    resource: dict[str, Any] = {
        "resourceType": "ActivityDefinition",
        "meta": {"profile": [ACTIVITY_DEFINITION_PROFILE]},
    }
    if source.get("language"):
        resource["language"] = source["language"]
    resource["extension"] = [
        {"url": ENDPOINT_EXTENSION, "valueReference": {"reference": endpoint, "type": "Endpoint"}},
        {"url": PUBLISHER_ID_EXTENSION, "valueId": publisher_id},
    ]
    resource["url"] = definition_url(canonical, kind, code)
    resource["identifier"] = [
        {"use": "official", "system": identifier_system(canonical, kind), "value": code}
    ]
    for key in ("version", "name", "title", "_title"):
        if key in source:
            resource[key] = source[key]
    resource["status"] = "active"
    for key in ("description", "_description"):
        if key in source:
            resource[key] = source[key]
    resource["topic"] = [
        {"coding": [{"system": DEFINITION_TOPIC_SYSTEM, "code": topic, "display": _TOPICS[topic]}]}
    ]
    return resource


def _present(resource: dict[str, Any], element: str) -> bool:
    # A choice type (timing[x], product[x], subject[x]) appears as element + TypeName.
    for key in resource:
        name = key.removeprefix("_")
        if name == element or (name.startswith(element) and name[len(element) :][:1].isupper()):
            return True
    return False


def activity_definition_problems(resource: dict[str, Any]) -> list[str]:
    """What makes ``resource`` not a KT2_ActivityDefinition (empty: none we check)."""
    problems = []
    if ACTIVITY_DEFINITION_PROFILE not in resource.get("meta", {}).get("profile", []):
        problems.append("meta.profile: KT2ActivityDefinition missing")
    for element in ("url", "title"):
        if not resource.get(element):
            problems.append(f"{element}: required")
    endpoints = [e for e in resource.get("extension", []) if e.get("url") == ENDPOINT_EXTENSION]
    if not endpoints:
        problems.append("extension[endpoint]: at least one KT2EndpointExtension required")
    for ext in endpoints:
        if not str(ext.get("valueReference", {}).get("reference", "")).startswith("Endpoint/"):
            problems.append("extension[endpoint]: must reference an Endpoint")
    publisher = [
        e for e in resource.get("extension", []) if e.get("url") == PUBLISHER_ID_EXTENSION
    ]
    if len(publisher) > 1:
        problems.append("extension[publisherId]: at most one")
    if any(not is_fhir_id(str(e.get("valueId", ""))) for e in publisher):
        problems.append("extension[publisherId]: valueId must be a FHIR id")
    for element in FORBIDDEN_ACTIVITY_DEFINITION:
        if _present(resource, element):
            problems.append(f"{element}: not allowed in KT2_ActivityDefinition")
    if any(e.get("url") == RESOURCE_ORIGIN_EXTENSION for e in resource.get("extension", [])):
        problems.append("extension[resource-origin]: set by the server, never by a client")
    return problems


def endpoint_problems(resource: dict[str, Any]) -> list[str]:
    """What makes ``resource`` not a KT2_Endpoint (empty: none we check)."""
    problems = []
    if ENDPOINT_PROFILE not in resource.get("meta", {}).get("profile", []):
        problems.append("meta.profile: KT2Endpoint missing")
    # KT2_Endpoint fixes connectionType exactly (system + code, nothing else).
    if resource.get("connectionType") != {
        "system": CONNECTION_TYPE_SYSTEM,
        "code": "hti-smart-on-fhir",
    }:
        problems.append(
            "connectionType: must be exactly koppeltaal-endpoint-connection-type#hti-smart-on-fhir"
        )
    codings = [c for p in resource.get("payloadType", []) for c in p.get("coding", [])]
    if [(c.get("system"), c.get("code")) for c in codings] != [(PAYLOAD_TYPE_SYSTEM, "any")]:
        problems.append("payloadType: must be endpoint-payload-type#any")
    if not resource.get("address"):
        problems.append("address: required")
    for element in FORBIDDEN_ENDPOINT:
        if element in resource:
            problems.append(f"{element}: not allowed in KT2_Endpoint")
    if any(e.get("url") == RESOURCE_ORIGIN_EXTENSION for e in resource.get("extension", [])):
        problems.append("extension[resource-origin]: set by the server, never by a client")
    return problems
