"""The programme as Koppeltaal 2.0 resources: a KT2_ActivityDefinition per module and per track,
and the one KT2_Endpoint (our HTI launch URL) they all point at.

Built from the package ``resources.build_resources`` makes, with no I/O. Profiles, from the
Koppeltaal IG 0.16.3 FSH (vzvznl/Koppeltaal-2.0-FHIR ``input/fsh/``, tag v0.16.3, commit
7404a72):

- ``KT2_ActivityDefinition``: ``url`` and ``title`` 1..1; ``extension[endpoint]``
  (KT2EndpointExtension, Reference(KT2_Endpoint)) 1..*; ``extension[publisherId]``
  (KT2PublisherId, valueId) 0..1; ``topic`` from KoppeltaalDefinitionTopic, "used to indicate
  that the activity is intended or suitable for initialization by patients"; ``useContext``
  with ``code`` from KoppeltaalUsageContextType_VS (the FHIR usage-context-type codes plus
  ``koppeltaal-expansion``, whose value names an optional extension of the standard); and
  0..0 for :data:`FORBIDDEN_ACTIVITY_DEFINITION` (``publisher``, ``date``, ``contact``,
  ``kind``, ``timing[x]``, ``jurisdiction``, ``relatedArtifact`` and more).
- ``KT2_Endpoint``: ``connectionType`` fixed exactly (system and code, no display)
  ``koppeltaal-endpoint-connection-type#hti-smart-on-fhir``, ``payloadType`` fixed
  ``endpoint-payload-type#any``; ``contact``, ``period`` and ``payloadMimeType`` 0..0.

Self-start: a definition carries a ``topic`` (``self-treatment`` or ``self-assessment``) only
when the content says a client may start it alone (``self-start`` in a module's front matter
or a track); by default none, so a portal offers it only through a care professional.

Announcing: with the domain's ``koppeltaal_results`` on, each definition says in
``useContext`` that its Task brings a results document (``koppeltaal-expansion`` =
``029-DocumentenDelen``, the draft "Documenten Delen", IG branch feature/documenten-delen-fsh,
commit 256f244); a portal that cannot take the document then does not offer it.

Which definition is a module and which a track (the whole programme, for a portal that
assigns it at once) is told by the ``identifier`` system: ``<canonical>/koppeltaal/module``
or ``<canonical>/koppeltaal/track``, value the module or track code.
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
USAGE_CONTEXT_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/usage-context-type"
KT_USAGE_CONTEXT_TYPE_SYSTEM = "http://vzvz.nl/fhir/CodeSystem/koppeltaal-usage-context-type"
EXPANSION_SYSTEM = "http://vzvz.nl/fhir/CodeSystem/koppeltaal-expansion"
#: The expansion a definition announces when its Task brings a results DocumentReference.
SHARES_DOCUMENTS = ("029-DocumentenDelen", "Documenten Delen")

#: Where the portal form-POSTs the HTI launch (``launch`` and ``iss``), below the app's base URL.
LAUNCH_PATH = "/koppeltaal/launch"

#: KT2_ActivityDefinition elements with cardinality 0..0 in the IG (choice types by prefix).
FORBIDDEN_ACTIVITY_DEFINITION = (
    "experimental", "subject", "date", "publisher", "contact", "jurisdiction",
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
# R4 usage-context-type (all of it is in KoppeltaalUsageContextType_VS).
_USAGE_CONTEXT_TYPES = frozenset(
    {"gender", "age", "focus", "user", "workflow", "task", "venue", "species", "program"}
)

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
    results: bool = False,
) -> list[dict[str, Any]]:
    """A KT2_ActivityDefinition per module (the package's ActivityDefinitions) and per track
    (its PlanDefinitions), in package order: modules first, then tracks.

    ``endpoint`` is the literal reference to our KT2_Endpoint (``Endpoint/<server id>``);
    ``publisher_id`` is our client id, the KT2PublisherId vendors search by; ``results``:
    announce the results document (the domain's ``koppeltaal_results``).
    """
    if not is_fhir_id(publisher_id):
        raise ValueError(f"{publisher_id!r}: KT2PublisherId must be a FHIR id")
    canonical = canonical_base(resources)
    kinds: dict[str, DefinitionKind] = {"ActivityDefinition": "module", "PlanDefinition": "track"}
    return [
        _definition(r, kinds[rtype], canonical, endpoint=endpoint, publisher_id=publisher_id,
                    results=results)
        for rtype in kinds
        for r in resources
        if r["resourceType"] == rtype
    ]  # fmt: skip


def _definition(
    source: dict[str, Any],
    kind: DefinitionKind,
    canonical: str,
    *,
    endpoint: str,
    publisher_id: str,
    results: bool,
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
    if results:
        resource["useContext"] = [shares_documents()]
    # Only what the content marks as a client's own to start: the package's topics in the
    # IG's code system (resources/_definitions.py); none, and a care professional assigns it.
    topics = [
        {"coding": [c]}
        for t in source.get("topic", [])
        for c in t.get("coding", [])
        if c.get("system") == DEFINITION_TOPIC_SYSTEM
    ]
    if topics:
        resource["topic"] = topics
    return resource


def shares_documents() -> dict[str, Any]:
    """The useContext that announces the draft "Documenten Delen" expansion: the Task brings a
    DocumentReference (IG documenten-delen.md, "Aankondiging via de ActivityDefinition")."""
    return {
        "code": {"system": KT_USAGE_CONTEXT_TYPE_SYSTEM, "code": "koppeltaal-expansion"},
        "valueCodeableConcept": {
            "coding": [
                {
                    "system": EXPANSION_SYSTEM,
                    "code": SHARES_DOCUMENTS[0],
                    "display": SHARES_DOCUMENTS[1],
                }
            ]
        },
    }


def self_start_of(resource: dict[str, Any]) -> str | None:
    """The KT definition topic (``self-treatment``, ``self-assessment``) of a definition: a
    client may start it alone; None: only a care professional assigns it."""
    for topic in resource.get("topic", []):
        for coding in topic.get("coding", []):
            if coding.get("system") == DEFINITION_TOPIC_SYSTEM:
                return str(coding.get("code"))
    return None


def _use_context_problems(resource: dict[str, Any]) -> list[str]:
    """``useContext`` as KT2_ActivityDefinition binds it: a usage-context-type or
    ``koppeltaal-expansion`` code (required), an expansion with a koppeltaal-expansion value."""
    problems = []
    for i, context in enumerate(resource.get("useContext", [])):
        code = context.get("code", {})
        where = f"useContext[{i}]"
        if (code.get("system"), code.get("code")) == (
            KT_USAGE_CONTEXT_TYPE_SYSTEM,
            "koppeltaal-expansion",
        ):
            codings = context.get("valueCodeableConcept", {}).get("coding", [])
            if not any(c.get("system") == EXPANSION_SYSTEM and c.get("code") for c in codings):
                problems.append(
                    f"{where}: a koppeltaal-expansion needs a koppeltaal-expansion code"
                )
        elif not (
            code.get("system") == USAGE_CONTEXT_TYPE_SYSTEM
            and code.get("code") in _USAGE_CONTEXT_TYPES
        ):
            problems.append(f"{where}.code: not in KoppeltaalUsageContextType_VS")
    return problems


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
    problems += _use_context_problems(resource)
    topic = self_start_of(resource)
    if topic is not None and topic not in _TOPICS:
        problems.append(f"topic: {topic!r} is not a KoppeltaalDefinitionTopic code")
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
