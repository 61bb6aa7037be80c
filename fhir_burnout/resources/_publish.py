"""Loading the package into a FHIR server, idempotently.

For each resource: search by canonical ``url`` and ``version``; none found: conditional create
(``If-None-Exist: url=..&version=..``, so two publishers racing still store one); found and
equal: leave it; found and different: update it with ``If-Match`` on the version we read.
Running it twice creates and changes nothing the second time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode

# What the server adds or may rewrite, and so is not ours to compare.
_SERVER_OWNED = ("id", "meta", "text")


class FhirWriter(Protocol):
    """The part of :class:`fhir_burnout.fhir.FhirClient` publishing needs."""

    def search(self, resource_type: str, params: dict[str, str]) -> Any: ...
    def create(self, resource: dict[str, Any], *, if_none_exist: str | None = None) -> Any: ...
    def update(self, resource: dict[str, Any], *, version_id: str | None = None) -> Any: ...


@dataclass(frozen=True)
class PublishStep:
    """What publishing did (or, in a dry run, would do) with one resource."""

    action: str  # create | update | unchanged
    resource_type: str
    url: str
    version: str


def _comparable(resource: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in resource.items() if k not in _SERVER_OWNED}


def plan_request(resource: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """The search that finds a resource on the server by its canonical URL and version."""
    return str(resource["resourceType"]), {
        "url": str(resource["url"]),
        "version": str(resource.get("version", "")),
    }


def publish(
    resources: list[dict[str, Any]],
    client: FhirWriter,
    *,
    dry_run: bool = False,
    progress: Callable[[PublishStep], None] | None = None,
) -> list[PublishStep]:
    """Publish every resource; returns what was done, in package order."""
    steps = []
    for resource in resources:
        rtype, params = plan_request(resource)
        # Keep exact matches only: some servers match uri parameters by prefix (Medplum's
        # router finds .../cbi-frequency-reversed when asked for .../cbi-frequency).
        found = [
            r
            for r in client.search(rtype, params)
            if r.get("url") == params["url"] and str(r.get("version", "")) == params["version"]
        ]
        if not found:
            action = "create"
            if not dry_run:
                client.create(resource, if_none_exist=urlencode(params))
        elif _comparable(found[0]) == _comparable(resource):
            action = "unchanged"
        else:
            action = "update"
            if not dry_run:
                current = found[0]
                body = {**resource, "id": current["id"]}
                client.update(body, version_id=current.get("meta", {}).get("versionId"))
        step = PublishStep(action, rtype, params["url"], params["version"])
        steps.append(step)
        if progress:
            progress(step)
    return steps
