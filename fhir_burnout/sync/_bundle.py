"""From an outbox entry's operations to one FHIR transaction Bundle, and back.

An entry holds operations (``sync._operations``, one class per kind):

- :class:`Create`: the resource carries the identifier :func:`key_identifier` ``(K)`` and is
  sent as a conditional create (``ifNoneExist: identifier=…``, R4 §3.1.0.8.1), so sending
  it again finds the first one;
- :class:`UpdateTask`: the Task created under key K gets status S (and outputs; a
  statusReason as text or as a CodeableConcept; a ``businessStatus`` text), sent as an
  update with ``ifMatch`` on the version we last saw (R4 §3.1.0.4.1); on 412 the worker
  reads the Task again and applies the change to what is there now, if it still moves the
  Task forward. With ``came_from`` F (a care professional resuming what they paused, which
  moves the Task back from on-hold) it is applied only while the EHR still has the Task at F;
- :class:`UpdateCarePlan`: the same for the CarePlan of an enrolment (paused, resumed,
  completed, stopped, with our extension saying why it ended); a completed or revoked
  CarePlan is never changed again, and ``came_from`` works as for a Task;
- the Koppeltaal kinds go only to a Koppeltaal domain (``koppeltaal._outbox``).

References between resources are written ``urn:uuid:K``: inside one Bundle the server
resolves them (R4 §3.1.0.11.2), to resources delivered earlier we resolve them here. Each
Bundle ends with a Provenance for the writes in it, tagged with the entry's key and sent as
a conditional create too (R4 Provenance has no identifier; ``_tag`` searches meta.tag).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, assert_never

from fhir_burnout.sync._operations import UpdateCarePlan, UpdateTask

#: The identifier system of write keys (UUIDs). Not "urn:ietf:rfc:3986" with "urn:uuid:K":
#: servers resolving a transaction rewrite every string equal to an entry's fullUrl (Medplum
#: does), and our fullUrls are "urn:uuid:K", so the identifier would become "Task/123".
KEY_SYSTEM = "https://fhir-burnout.org/fhir/write-key"
#: meta.tag system for the Provenance of an outbox entry
ENTRY_TAG = "https://fhir-burnout.org/fhir/outbox-entry"
#: The app itself, as the agent of changes no person made (a logical Device reference).
APP_DEVICE = {
    "identifier": {"system": "https://fhir-burnout.org/fhir/device", "value": "fhir-burnout"},
    "display": "fhir_burnout",
}


#: How far along a Task status is (R4 task-status); a delivery never moves a Task back.
#: A referral's Task goes received (waiting for triage) -> accepted | rejected.
_RANK = {
    "draft": 0, "requested": 1, "received": 2, "accepted": 3, "ready": 4, "in-progress": 5,
    "on-hold": 5, "completed": 6, "cancelled": 6, "failed": 6, "rejected": 6,
    "entered-in-error": 6,
}  # fmt: skip
TERMINAL_TASK_STATUSES = frozenset(
    {"completed", "cancelled", "failed", "rejected", "entered-in-error"}
)


def moves_forward(current: str, target: str) -> bool:
    """Whether setting ``target`` on a Task that is now ``current`` (perhaps changed by
    someone else in the EHR) takes it further: never out of a terminal state, never back."""
    if current == target or current in TERMINAL_TASK_STATUSES or current not in _RANK:
        return False
    return _RANK.get(target, -1) > _RANK[current]


def key_identifier(key: str) -> dict[str, str]:
    """The identifier that carries a write's idempotency key on its FHIR resource."""
    return {"system": KEY_SYSTEM, "value": key}


def key_reference(key: str) -> dict[str, str]:
    """A reference to the resource written under ``key`` (resolved at delivery)."""
    return {"reference": f"urn:uuid:{key}"}


@dataclass(frozen=True)
class Known:
    """A resource we wrote, as the EHR has it: id, version, and our last copy if we trust it."""

    key: str
    resource_type: str
    fhir_id: str
    version_id: str | None
    resource: dict[str, Any] | None


class Waiting(Exception):  # noqa: N818 -- a state, not an error: the entry waits
    """A reference to a resource the EHR does not have yet; the entry must wait for it."""

    def __init__(self, key: str) -> None:
        super().__init__(f"waiting for the resource written under {key}")
        self.key = key


def referenced_keys(value: Any) -> set[str]:
    """Every key referenced as ``urn:uuid:K`` inside ``value``."""
    found: set[str] = set()
    if isinstance(value, dict):
        reference = value.get("reference")
        if isinstance(reference, str) and reference.startswith("urn:uuid:"):
            found.add(reference[9:])
        for item in value.values():
            found |= referenced_keys(item)
    elif isinstance(value, list):
        for item in value:
            found |= referenced_keys(item)
    return found


def resolve(value: Any, local: set[str], known: Mapping[str, Known]) -> Any:
    """``value`` with references to keys outside this Bundle replaced by ``Type/id``."""
    if isinstance(value, dict):
        out = {k: resolve(v, local, known) for k, v in value.items()}
        reference = value.get("reference")
        if isinstance(reference, str) and reference.startswith("urn:uuid:"):
            key = reference[9:]
            if key not in local:
                if key not in known:
                    raise Waiting(key)
                out["reference"] = f"{known[key].resource_type}/{known[key].fhir_id}"
        return out
    if isinstance(value, list):
        return [resolve(v, local, known) for v in value]
    return value


def apply_task_change(
    task: Mapping[str, Any], change: UpdateTask, now: datetime
) -> dict[str, Any] | None:
    """The Task with our change applied, or None when it is already there or no longer makes
    sense (the status only moves forward: a Task cancelled in the EHR stays cancelled)."""
    target = change.status
    current = str(task.get("status"))
    missing = [o for o in change.output if o not in (task.get("output") or [])]
    if current == target and not missing:
        return None  # delivered before (perhaps the answer to our request was lost)
    if current != target and not _may_move(current, target, change.came_from):
        return None
    new = copy.deepcopy(dict(task))
    new["status"] = target
    new["lastModified"] = now.isoformat(timespec="seconds")
    if missing:
        new["output"] = [*(new.get("output") or []), *missing]
    reason = change.status_reason
    if isinstance(reason, Mapping):
        new["statusReason"] = copy.deepcopy(dict(reason))
    elif reason:
        new["statusReason"] = {"text": reason}
    if change.business_status:
        new["businessStatus"] = {"text": change.business_status}
    period = new.setdefault("executionPeriod", {})
    if target == "in-progress":
        period.setdefault("start", new["lastModified"])
    if target in ("completed", "failed", "cancelled"):
        period.setdefault("start", new["lastModified"])
        period["end"] = new["lastModified"]
    return new


def _may_move(current: str, target: str, expected: str | None) -> bool:
    if expected is not None:  # back from where we put it (a resume): only if it is still there
        return current == expected and current not in TERMINAL_TASK_STATUSES
    return moves_forward(current, target)


#: CarePlan statuses (R4 request-status) that are never left.
TERMINAL_CAREPLAN_STATUSES = frozenset({"completed", "revoked", "entered-in-error"})


def apply_careplan_change(
    careplan: Mapping[str, Any], change: UpdateCarePlan, now: datetime
) -> dict[str, Any] | None:
    """The CarePlan with its new status, or None when it has it already, has ended (completed,
    revoked) or, with ``from``, is no longer at the status we put it in."""
    target, current = change.status, str(careplan.get("status"))
    expected = change.came_from
    if current == target or current in TERMINAL_CAREPLAN_STATUSES:
        return None
    if expected is not None and current != expected:
        return None
    new = copy.deepcopy(dict(careplan))
    new["status"] = target
    for extension in change.extension:  # why it ended: ours, once
        kept = [e for e in new.get("extension", []) if e.get("url") != extension["url"]]
        new["extension"] = [*kept, dict(extension)]
    if target in TERMINAL_CAREPLAN_STATUSES:
        new.setdefault("period", {})["end"] = now.isoformat(timespec="seconds")
    return new


def apply_update(
    resource: Mapping[str, Any], change: UpdateTask | UpdateCarePlan, now: datetime
) -> dict[str, Any] | None:
    """The resource with the update applied (see :func:`apply_task_change` and
    :func:`apply_careplan_change`), or None when it changes nothing."""
    match change:
        case UpdateTask():
            return apply_task_change(resource, change, now)
        case UpdateCarePlan():
            return apply_careplan_change(resource, change, now)
        case _:
            assert_never(change)


def provenance(
    entry_key: str, targets: list[dict[str, str]], agent: Mapping[str, Any], recorded: str
) -> dict[str, Any]:
    """The Provenance of one delivery: what was written, by whom, for which practice."""
    who = {"reference": agent["who"]} if agent.get("who") else dict(APP_DEVICE)
    member: dict[str, Any] = {
        "type": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                    "code": "author",
                }
            ]
        },
        "who": who,
    }
    if agent.get("onBehalfOf"):
        member["onBehalfOf"] = {"reference": agent["onBehalfOf"]}
    return {
        "resourceType": "Provenance",
        "meta": {"tag": [{"system": ENTRY_TAG, "code": entry_key}]},
        "target": targets,
        "recorded": recorded,
        "agent": [member],
    }
