"""The programme's published resources as the workflow reads them: plans, their actions' order
and repeats, and phase titles.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fhir_burnout.questionnaire import localized
from fhir_burnout.workflow._apply import PlanError


@dataclass(frozen=True)
class Definitions:
    """The programme's published resources: PlanDefinitions by track, all by canonical."""

    plans: Mapping[str, Mapping[str, Any]]
    by_canonical: Mapping[str, Mapping[str, Any]] = field(repr=False)
    _waited_on: dict[str, frozenset[str]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @classmethod
    def from_resources(cls, resources: Iterable[Mapping[str, Any]]) -> Definitions:
        """Index a built package (a list of FHIR resources)."""
        plans: dict[str, Mapping[str, Any]] = {}
        by_canonical: dict[str, Mapping[str, Any]] = {}
        for resource in resources:
            if "url" not in resource:
                continue
            by_canonical[str(resource["url"])] = resource
            by_canonical[f"{resource['url']}|{resource.get('version')}"] = resource
            if resource.get("resourceType") == "PlanDefinition":
                plans[str(resource["id"])] = resource
        return cls(plans, by_canonical)

    def waited_on(self, canonical: str) -> frozenset[str]:
        """The ids of the actions that other actions of a PlanDefinition wait for (the
        targets of its ``relatedAction``s): only a change to one of these, or to a module
        (which closes its phase), can move anything else."""
        if canonical not in self._waited_on:
            depends = _dependencies(self.by_canonical[canonical])
            targets = frozenset(t for related in depends.values() for t, _ in related)
            self._waited_on[canonical] = targets
        return self._waited_on[canonical]

    def plan(self, track: str) -> Mapping[str, Any]:
        """The PlanDefinition of ``track``."""
        if track not in self.plans:
            known = ", ".join(sorted(self.plans))
            raise PlanError(f"there is no track {track!r} (tracks: {known})")
        return self.plans[track]


def _dependencies(plan: Mapping[str, Any]) -> dict[str, tuple[tuple[str, str], ...]]:
    found: dict[str, tuple[tuple[str, str], ...]] = {}

    def walk(actions: Sequence[Mapping[str, Any]]) -> None:
        for action in actions:
            found[str(action.get("id"))] = tuple(
                (str(r["actionId"]), str(r["relationship"]))
                for r in action.get("relatedAction", [])
            )
            walk(action.get("action", []) or [])

    walk(plan.get("action", []) or [])
    return found


def _repeat(plan: Mapping[str, Any], action_id: str) -> Mapping[str, Any]:
    """The action's ``timingTiming.repeat`` (empty when it is done once)."""
    for group in plan.get("action", []) or []:
        for action in group.get("action", []) or []:
            if action.get("id") == action_id:
                return dict(action.get("timingTiming", {}).get("repeat") or {})
    return {}


def _phase_titles(plan: Mapping[str, Any], code: str) -> tuple[str, str]:
    """A phase's title in Dutch and English, from the PlanDefinition."""
    action: Mapping[str, Any] = next(
        (a for a in plan.get("action", []) if a.get("id") == code), {}
    )
    return localized(action, "title", "nl", "nl") or code, localized(
        action, "title", "en", "nl"
    ) or code
