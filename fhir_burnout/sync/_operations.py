"""Outbox operations: one frozen dataclass per kind, and their stored JSON, in one place.

An outbox entry's payload (``OutboxEntry.payload``) holds a list of operations as JSON
objects with an ``op`` naming the kind. Everything that queues a write builds one of the
classes below; :meth:`to_json` writes the stored shape and :func:`operation_from_json` reads
it back, so entries stored before the classes existed (the same shape) still deliver:

- :class:`Create` (``create``): a resource written under a key (a conditional create);
- :class:`UpdateTask` (``update-task``): a new status (outputs, statusReason, businessStatus;
  ``from``: only while the EHR still has the Task there) for the Task written under a key;
- :class:`UpdateCarePlan` (``update-careplan``): the same for an enrolment's CarePlan, with
  our extension saying why it ended;
- :class:`KoppeltaalTaskStatus` (``koppeltaal-task``): a status for a Koppeltaal domain's
  KT2_Task, by its id there;
- :class:`KoppeltaalResults` (``koppeltaal-results``): the client's results for a domain as
  a DocumentReference, about its KT2_Task (``removed``: its retention ended).

How the SMART delivery sends them: ``sync._bundle``; the Koppeltaal delivery:
``koppeltaal._outbox`` (docs/architecture.md, "The adapter seam"). Optional fields that are
empty are left out of the JSON, as the code before the classes wrote them. Fields this
version does not know are ignored when read (an older entry's delivery ignored them too);
an unknown ``op`` or a missing field is an :class:`OperationError`, which the worker keeps
as a dead letter with that message instead of failing its round.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeAlias

from fhir_burnout.errors import FhirBurnoutError


class OperationError(FhirBurnoutError, ValueError):
    """A stored operation this version cannot read (an unknown ``op``, a missing field), or
    one that cannot go to the EHR it was queued for."""

    code = "invalid"


@dataclass(frozen=True)
class Create:
    """Create ``resource`` under the write key ``key`` (sent as a conditional create on the
    key's identifier, R4 §3.1.0.8.1)."""

    OP: ClassVar[str] = "create"
    key: str
    resource: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """The stored shape."""
        return {"op": self.OP, "key": self.key, "resource": self.resource}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Create:
        """Read the stored shape."""
        resource = data.get("resource")
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            raise OperationError("a create without a resource (no resourceType)")
        return cls(_text(data, "key"), resource)


#: Task.statusReason: a text, or a CodeableConcept (a coded reason, as triage gives).
Reason: TypeAlias = str | dict[str, Any]


@dataclass(frozen=True)
class UpdateTask:
    """Set ``status`` on the Task written under ``key`` (sent with If-Match, R4 §3.1.0.4.1);
    ``came_from``: only while the EHR still has the Task at that status (a resume)."""

    OP: ClassVar[str] = "update-task"
    RESOURCE: ClassVar[str] = "Task"
    key: str
    status: str
    output: tuple[dict[str, Any], ...] = ()
    status_reason: Reason | None = None
    business_status: str | None = None
    came_from: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The stored shape (empty optional fields left out)."""
        return _with(
            {"op": self.OP, "key": self.key, "status": self.status},
            output=list(self.output), statusReason=self.status_reason,
            businessStatus=self.business_status, **{"from": self.came_from},
        )  # fmt: skip

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> UpdateTask:
        """Read the stored shape."""
        reason = data.get("statusReason") or None
        if reason is not None and not isinstance(reason, str | dict):
            raise OperationError("statusReason is neither a text nor a CodeableConcept")
        return cls(
            _text(data, "key"), _text(data, "status"), _objects(data, "output"), reason,
            _optional_text(data, "businessStatus"), _optional_text(data, "from"),
        )  # fmt: skip


@dataclass(frozen=True)
class UpdateCarePlan:
    """Set ``status`` on the CarePlan written under ``key`` (an enrolment's): paused,
    resumed (``came_from``), completed or revoked with ``extension`` saying why."""

    OP: ClassVar[str] = "update-careplan"
    RESOURCE: ClassVar[str] = "CarePlan"
    key: str
    status: str
    came_from: str | None = None
    extension: tuple[dict[str, Any], ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The stored shape (empty optional fields left out)."""
        return _with(
            {"op": self.OP, "key": self.key, "status": self.status},
            extension=list(self.extension),
            **{"from": self.came_from},
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> UpdateCarePlan:
        """Read the stored shape."""
        return cls(
            _text(data, "key"), _text(data, "status"), _optional_text(data, "from"),
            _objects(data, "extension"),
        )  # fmt: skip


@dataclass(frozen=True)
class KoppeltaalTaskStatus:
    """A status for a Koppeltaal domain's KT2_Task ``task_id`` (the launch's in-progress);
    ``came_from``: only while the Task is still there."""

    OP: ClassVar[str] = "koppeltaal-task"
    key: str
    task_id: str
    status: str
    came_from: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The stored shape."""
        data = {"op": self.OP, "key": self.key, "task_id": self.task_id, "status": self.status}
        return _with(data, **{"from": self.came_from})

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> KoppeltaalTaskStatus:
        """Read the stored shape."""
        return cls(
            _text(data, "key"), _text(data, "task_id"), _text(data, "status"),
            _optional_text(data, "from"),
        )  # fmt: skip


@dataclass(frozen=True)
class KoppeltaalResults:
    """The client's results as a DocumentReference about KT2_Task ``task_id`` of
    ``patient`` (a reference), for a domain that takes them; ``removed``: its retention
    ended, the DocumentReference goes."""

    OP: ClassVar[str] = "koppeltaal-results"
    key: str
    task_id: str
    patient: str
    removed: bool = False

    def to_json(self) -> dict[str, Any]:
        """The stored shape."""
        data = {"op": self.OP, "key": self.key, "task_id": self.task_id, "patient": self.patient}
        return _with(data, removed=self.removed)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> KoppeltaalResults:
        """Read the stored shape."""
        return cls(
            _text(data, "key"), _text(data, "task_id"), _text(data, "patient"),
            data.get("removed") is True,
        )  # fmt: skip


#: Every kind of operation; dispatch on it with ``match`` and ``assert_never``.
Operation: TypeAlias = (
    Create | UpdateTask | UpdateCarePlan | KoppeltaalTaskStatus | KoppeltaalResults
)

_KINDS: dict[str, type[Operation]] = {
    kind.OP: kind
    for kind in (Create, UpdateTask, UpdateCarePlan, KoppeltaalTaskStatus, KoppeltaalResults)
}


def operation_from_json(data: Any) -> Operation:
    """One stored operation as its class; OperationError when this version cannot read it."""
    if not isinstance(data, Mapping):
        raise OperationError("an operation that is not a JSON object")
    kind = data.get("op")
    if kind not in _KINDS:
        # Only the op's name is quoted (never a resource: it may hold health data).
        named = repr(kind)[:40]
        raise OperationError(f"unknown op {named} (known: {', '.join(sorted(_KINDS))})")
    return _KINDS[kind].from_json(data)


def operations_of(payload: Mapping[str, Any]) -> tuple[Operation, ...]:
    """The operations of a stored entry payload; OperationError naming the first one that
    cannot be read (by its place in the entry)."""
    stored = payload.get("operations")
    if not isinstance(stored, list):
        raise OperationError("the entry has no list of operations")
    operations = []
    for number, data in enumerate(stored, start=1):
        try:
            operations.append(operation_from_json(data))
        except OperationError as error:
            raise OperationError(f"operation {number} of the entry: {error}") from None
    return tuple(operations)


def _with(data: dict[str, Any], **optional: Any) -> dict[str, Any]:
    """``data`` with the optional fields that are not empty (as the stored shape has them)."""
    data.update((name, value) for name, value in optional.items() if value)
    return data


def _text(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise OperationError(f"a {data.get('op')} without {name}")
    return value


def _optional_text(data: Mapping[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise OperationError(f"{name} of a {data.get('op')} is not a text")
    return value


def _objects(data: Mapping[str, Any], name: str) -> tuple[dict[str, Any], ...]:
    value = data.get(name) or []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise OperationError(f"{name} of a {data.get('op')} is not a list of objects")
    return tuple(value)
