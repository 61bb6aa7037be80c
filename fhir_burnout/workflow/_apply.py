"""PlanDefinition $apply (R4 §12.18.4, "Applying a PlanDefinition"): a plan for one patient.

Pure: a PlanDefinition and the definitions it points at in, FHIR resources out. The result
is what R4 describes: a CarePlan that instantiates the PlanDefinition, a RequestGroup whose
actions mirror the plan's, and a Task per module, homework and measure, following the SDC
questionnaire-task pattern for questionnaires (code ``complete-questionnaire``, input the
Questionnaire's canonical). The resources reference each other by ``urn:uuid:<key>``, the
key also being their identifier, so they can travel in one transaction Bundle and be found
again after a retry.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from fhir_burnout.errors import FhirBurnoutError
from fhir_burnout.sync import key_identifier as identifier
from fhir_burnout.sync import key_reference as reference

SDC_TEMP = "http://hl7.org/fhir/uv/sdc/CodeSystem/temp"
TRANSLATION = "http://hl7.org/fhir/StructureDefinition/translation"


class PlanError(FhirBurnoutError, ValueError):
    """A PlanDefinition that cannot be applied (unknown track, a missing definition)."""

    code = "not-found"


@dataclass(frozen=True)
class PlannedPhase:
    """A phase of the plan and the rule that opens it (start, practitioner, automatic)."""

    code: str
    position: int
    unlock: str
    title: str


@dataclass(frozen=True)
class PlannedTask:
    """One Task of the plan with what the programme needs to move it along."""

    key: str
    action_id: str
    kind: str  # module | homework | measure
    phase: str | None
    definition: str
    title: str
    depends_on: tuple[tuple[str, str], ...]  # (action id, relationship)
    repeats_weekly: bool
    resource: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class Application:
    """The result of $apply: CarePlan, RequestGroup, Tasks, and the phases to track."""

    key: str
    request_group_key: str
    plan_definition: str
    track: str
    careplan: dict[str, Any] = field(repr=False)
    request_group: dict[str, Any] = field(repr=False)
    phases: tuple[PlannedPhase, ...]
    tasks: tuple[PlannedTask, ...]


def _ext_code(element: Mapping[str, Any], suffix: str) -> str | None:
    for ext in element.get("extension", []) or []:
        if str(ext.get("url", "")).endswith(suffix):
            return str(ext.get("valueCode"))
    return None


def _titled(target: dict[str, Any], key: str, action: Mapping[str, Any]) -> None:
    target[key] = action.get("title", "")
    if "_title" in action:
        target["_" + key] = action["_title"]


def _is_questionnaire_action(action: Mapping[str, Any]) -> bool:
    return any(
        c.get("code") == "complete-questionnaire"
        for concept in action.get("code", [])
        for c in concept.get("coding", [])
    )


# long: $apply in one pass (FHIR R4 PlanDefinition $apply, §12.18.3.4); the nested task_for
# and group_action share the CarePlan's key, the subject and the growing Task list.
def apply_plan(
    plan: Mapping[str, Any],
    definitions: Mapping[str, Mapping[str, Any]],
    *,
    patient: str,
    author: str | None = None,
    today: date,
    now: datetime,
    new_key: Callable[[], str] | None = None,
) -> Application:
    """Apply ``plan`` for Patient ``patient`` (an id); ``definitions`` maps canonicals
    (``url|version``) to the ActivityDefinitions and Questionnaires the plan names."""
    make_key = new_key or (lambda: str(uuid.uuid4()))
    canonical = f"{plan['url']}|{plan['version']}"
    track = str(plan.get("id") or plan.get("name"))
    subject = {"reference": f"Patient/{patient}"}
    authored = now.isoformat(timespec="seconds")
    careplan_key, group_key = make_key(), make_key()
    phases: list[PlannedPhase] = []
    tasks: list[PlannedTask] = []

    def task_for(action: Mapping[str, Any], phase: str | None, kind: str) -> str:
        definition = str(action.get("definitionCanonical", ""))
        if definition not in definitions:
            raise PlanError(f"{canonical}: action {action.get('id')!r} needs {definition!r}")
        key = make_key()
        resource: dict[str, Any] = {
            "resourceType": "Task",
            "identifier": [identifier(key)],
            "basedOn": [reference(careplan_key)],
            "groupIdentifier": identifier(careplan_key),
            "status": "draft",
            "intent": "order",
            "for": subject,
            "authoredOn": authored,
            "owner": subject,
        }
        if kind == "module":
            resource["instantiatesCanonical"] = definition
            resource["code"] = action["code"][0]
        else:
            resource["code"] = {"coding": [{"system": SDC_TEMP, "code": "complete-questionnaire"}]}
            resource["input"] = [
                {
                    "type": {"coding": [{"system": SDC_TEMP, "code": "questionnaire"}]},
                    "valueCanonical": definition,
                }
            ]
        _titled(resource, "description", action)
        if author:
            resource["requester"] = {"reference": author}
        repeats = bool(action.get("timingTiming", {}).get("repeat", {}).get("periodUnit"))
        if repeats:
            resource["restriction"] = {"period": {"start": today.isoformat()}}
        tasks.append(
            PlannedTask(
                key=key,
                action_id=str(action["id"]),
                kind=kind,
                phase=phase,
                definition=definition,
                title=str(action.get("title", "")),
                depends_on=tuple(
                    (str(r["actionId"]), str(r["relationship"]))
                    for r in action.get("relatedAction", [])
                ),
                repeats_weekly=repeats,
                resource=resource,
            )
        )
        return key

    def group_action(action: Mapping[str, Any], phase: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {"id": str(action["id"])}
        _titled(out, "title", action)
        for key in ("code", "relatedAction", "timingTiming"):
            if key in action:
                out[key] = action[key]
        children = []
        for child in action.get("action", []) or []:
            kind = "module" if not _is_questionnaire_action(child) else "homework"
            if phase is None:
                kind = "measure"
            task_key = task_for(child, phase, kind)
            entry: dict[str, Any] = {"id": str(child["id"])}
            _titled(entry, "title", child)
            for key in ("code", "relatedAction", "timingTiming"):
                if key in child:
                    entry[key] = child[key]
            entry["resource"] = reference(task_key)
            children.append(entry)
        if children:
            out["action"] = children
        return out

    group_actions = []
    for action in plan.get("action", []) or []:
        is_phase = bool(action.get("code"))  # the measures group has no code
        code = str(action["code"][0]["coding"][0]["code"]) if is_phase else None
        if code is not None:
            rule = "start" if not phases else _ext_code(action, "/unlock") or "practitioner"
            phases.append(PlannedPhase(code, len(phases), rule, str(action.get("title", ""))))
        group_actions.append(group_action(action, code))

    careplan: dict[str, Any] = {
        "resourceType": "CarePlan",
        "identifier": [identifier(careplan_key)],
        "instantiatesCanonical": [canonical],
        "status": "active",
        "intent": "plan",
        "category": [
            {
                "coding": [
                    {
                        "system": _programme_codes(plan),
                        "code": track,
                    }
                ]
            }
        ],
        "subject": subject,
        "period": {"start": today.isoformat()},
        "created": authored,
        "activity": [{"reference": reference(group_key)}],
    }
    _titled(careplan, "title", plan)
    if author:
        careplan["author"] = {"reference": author}
    request_group: dict[str, Any] = {
        "resourceType": "RequestGroup",
        "identifier": [identifier(group_key)],
        "instantiatesCanonical": [canonical],
        "basedOn": [reference(careplan_key)],
        "status": "active",
        "intent": "plan",
        "subject": subject,
        "authoredOn": authored,
        "action": group_actions,
    }
    if author:
        request_group["author"] = {"reference": author}
    return Application(
        key=careplan_key,
        request_group_key=group_key,
        plan_definition=canonical,
        track=track,
        careplan=careplan,
        request_group=request_group,
        phases=tuple(phases),
        tasks=tuple(tasks),
    )


def _programme_codes(plan: Mapping[str, Any]) -> str:
    # The tracks are codes of the programme's CodeSystem, next to the PlanDefinition.
    url = str(plan["url"])
    return url.split("/PlanDefinition/", maxsplit=1)[0] + "/CodeSystem/programme"


def measures_until(plan: Mapping[str, Any], start: date) -> date | None:
    """The last day a track's weekly measures run when it starts on ``start``: the weekly
    action's ``timingTiming.repeat.boundsDuration`` in weeks (None: as long as it runs)."""
    for group in plan.get("action", []) or []:
        for action in group.get("action", []) or []:
            bounds = action.get("timingTiming", {}).get("repeat", {}).get("boundsDuration")
            if bounds and bounds.get("code", bounds.get("unit")) == "wk":
                return start + timedelta(weeks=int(bounds["value"])) - timedelta(days=1)
    return None
