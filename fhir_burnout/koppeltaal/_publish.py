"""Publishing the programme to a Koppeltaal domain, idempotently.

Koppeltaal's rules (TOP-KT-002/-003, the FHIR server's ``resource-origin``): the server
assigns every id, so we create by POST only; every update is a PUT to the server's id with
``If-Match`` on the version we read; ``resource-origin`` is the server's, never sent on a
create and kept unchanged on an update.

Steps: the KT2_Endpoint first (found by its identifier), then each KT2_ActivityDefinition
(found by ``url`` alone, so a new package version updates the same resource: the portals'
Tasks point at its id). Not found: POST. Found and equal: nothing. Found and different: PUT
with If-Match. Running it twice writes nothing the second time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from fhir_burnout.errors import ValidationProblemsError
from fhir_burnout.koppeltaal._profiles import (
    RESOURCE_ORIGIN_EXTENSION,
    activity_definition_problems,
    canonical_base,
    endpoint_identifier,
    endpoint_problems,
    kt2_activity_definitions,
    kt2_endpoint,
)

#: What a dry run puts where the Endpoint's server id will be.
NEW_ENDPOINT = "Endpoint/(new)"


class FhirWriter(Protocol):
    """The part of :class:`fhir_burnout.fhir.FhirClient` publishing needs."""

    def search(self, resource_type: str, params: dict[str, str]) -> Iterable[dict[str, Any]]: ...
    def create(
        self, resource: dict[str, Any], *, if_none_exist: str | None = None
    ) -> dict[str, Any]: ...
    def update(
        self, resource: dict[str, Any], *, version_id: str | None = None
    ) -> dict[str, Any]: ...


@dataclass(frozen=True)
class KoppeltaalStep:
    """What publishing did (or, in a dry run, would do) with one resource."""

    action: str  # create | update | unchanged
    resource_type: str
    key: str  # the url (ActivityDefinition) or identifier (Endpoint) it was found by
    id: str | None  # the server's id (None: a dry run that would create it)
    version: str | None = None  # meta.versionId after the step, when the server said


def _origin(resource: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in resource.get("extension", []) if e.get("url") == RESOURCE_ORIGIN_EXTENSION]


def comparable(resource: dict[str, Any]) -> dict[str, Any]:
    """The part of a resource that is ours: without id, text, server meta (only
    ``meta.profile`` counts) and the server's resource-origin extension."""
    out = {k: v for k, v in resource.items() if k not in ("id", "meta", "text")}
    out["meta.profile"] = sorted(resource.get("meta", {}).get("profile", []))
    extensions = [
        e for e in resource.get("extension", []) if e.get("url") != RESOURCE_ORIGIN_EXTENSION
    ]
    if extensions:
        out["extension"] = extensions
    else:
        out.pop("extension", None)
    return out


def _put(client: FhirWriter, wanted: dict[str, Any], found: dict[str, Any]) -> dict[str, Any]:
    body = dict(wanted)
    body["id"] = found["id"]
    # The server set resource-origin on create; an update that drops or changes it is
    # refused (403), so send back exactly what it holds.
    origin = _origin(found)
    if origin:
        body["extension"] = [*wanted.get("extension", []), *origin]
    return client.update(body, version_id=found.get("meta", {}).get("versionId"))


def _sync_one(
    client: FhirWriter,
    wanted: dict[str, Any],
    matches: list[dict[str, Any]],
    key: str,
    *,
    dry_run: bool,
) -> KoppeltaalStep:
    rtype = str(wanted["resourceType"])
    if not matches:
        if dry_run:
            return KoppeltaalStep("create", rtype, key, None)
        created = client.create(wanted)
        return KoppeltaalStep("create", rtype, key, created.get("id"), _version(created))
    # More than one match should not happen (we create one per key); update the oldest id
    # deterministically rather than a random one.
    found = sorted(matches, key=lambda r: str(r.get("id")))[0]
    if comparable(found) == comparable(wanted):
        return KoppeltaalStep("unchanged", rtype, key, found.get("id"), _version(found))
    if dry_run:
        return KoppeltaalStep("update", rtype, key, found.get("id"), _version(found))
    updated = _put(client, wanted, found)
    return KoppeltaalStep("update", rtype, key, found.get("id"), _version(updated))


def _version(resource: dict[str, Any]) -> str | None:
    version = resource.get("meta", {}).get("versionId")
    return str(version) if version is not None else None


def publish_koppeltaal(
    resources: list[dict[str, Any]],
    client: FhirWriter,
    *,
    base_url: str,
    publisher_id: str,
    results: bool = False,
    dry_run: bool = False,
    progress: Callable[[KoppeltaalStep], None] | None = None,
) -> list[KoppeltaalStep]:
    """Publish the package's modules and tracks as KT2 resources; returns what was done,
    the Endpoint first. ``base_url`` is the app's (the launch URL is below it);
    ``publisher_id`` our client id (the Device id, and KT2PublisherId); ``results``: the
    definitions announce the results document (the domain's ``koppeltaal_results``)."""
    canonical = canonical_base(resources)
    steps: list[KoppeltaalStep] = []

    def record(step: KoppeltaalStep) -> None:
        steps.append(step)
        if progress:
            progress(step)

    endpoint = kt2_endpoint(base_url, canonical, publisher_id)
    # Check everything before the first write: a package the profile refuses writes nothing.
    planned = kt2_activity_definitions(
        resources, endpoint=NEW_ENDPOINT, publisher_id=publisher_id, results=results
    )
    _refuse_invalid(
        [endpoint_problems(endpoint)] + [activity_definition_problems(d) for d in planned]
    )
    ident = endpoint_identifier(canonical, publisher_id)
    token = f"{ident['system']}|{ident['value']}"
    found = [
        r
        for r in client.search("Endpoint", {"identifier": token})
        if ident in r.get("identifier", [])
    ]
    step = _sync_one(client, endpoint, found, token, dry_run=dry_run)
    if step.id is None and not dry_run:
        # A server that answered the POST without a body: read back what it stored.
        again = [
            r
            for r in client.search("Endpoint", {"identifier": token})
            if ident in r.get("identifier", [])
        ]
        if again:
            step = KoppeltaalStep(step.action, step.resource_type, token, again[0].get("id"))
    record(step)
    reference = f"Endpoint/{step.id}" if step.id else NEW_ENDPOINT

    definitions = kt2_activity_definitions(
        resources, endpoint=reference, publisher_id=publisher_id, results=results
    )
    for definition in definitions:
        url = str(definition["url"])
        # Exact matches only: some servers match uri parameters by prefix.
        found = [
            r for r in client.search("ActivityDefinition", {"url": url}) if r.get("url") == url
        ]
        record(_sync_one(client, definition, found, url, dry_run=dry_run))
    return steps


def _refuse_invalid(problem_lists: list[list[str]]) -> None:
    problems = [p for problems in problem_lists for p in problems]
    if problems:
        raise ValidationProblemsError(problems)
