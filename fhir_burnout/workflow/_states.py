"""The Task lifecycle (R4 Task.status, §12.1 of the Task page), and who may move it.

    draft ──► requested ──► ready ──► in-progress ──► completed
      │           │           │  ▲        │  ▲
      │           │           ▼  │        ▼  │
      │           └──────► on-hold ◄──────┘  │      (on-hold goes back to where it was)
      └──────────────────────────────────────┴──► cancelled / failed

- ``system``: the programme itself (a phase opens, the previous module is done);
- ``practitioner``: the care professional, who may also pause, cancel and reopen;
- ``client``: starts and completes their own ready Tasks, nothing else.

Terminal states (completed, cancelled, failed) are never left, except that a care
professional may reopen a cancelled Task. The outbox decides with ``moves_forward`` whether
our change still makes sense on a Task someone else changed in the EHR.
"""

from __future__ import annotations

from typing import Literal

from fhir_burnout.errors import FhirBurnoutError
from fhir_burnout.sync import moves_forward

__all__ = ["TERMINAL", "TRANSITIONS", "Actor", "TaskTransitionError", "check_transition"]
__all__ += ["moves_forward"]  # the outbox's rule, re-exported: one lifecycle, one place to read

Actor = Literal["client", "practitioner", "system"]

STATUSES = (
    "draft", "requested", "ready", "in-progress", "on-hold", "completed", "cancelled", "failed",
)  # fmt: skip
TERMINAL = frozenset({"completed", "cancelled", "failed"})

_ANYONE_BUT_CLIENT: frozenset[Actor] = frozenset({"practitioner", "system"})
_DOERS: frozenset[Actor] = frozenset({"client", "practitioner"})
_PRACTITIONER: frozenset[Actor] = frozenset({"practitioner"})

#: (from, to) -> the actors who may make that move
TRANSITIONS: dict[tuple[str, str], frozenset[Actor]] = {
    ("draft", "requested"): _ANYONE_BUT_CLIENT,
    ("draft", "ready"): _ANYONE_BUT_CLIENT,
    ("requested", "ready"): _ANYONE_BUT_CLIENT,
    ("ready", "in-progress"): _DOERS,
    ("ready", "completed"): _DOERS,  # a questionnaire sent in one go
    ("in-progress", "completed"): _DOERS,
    ("requested", "on-hold"): _PRACTITIONER,
    ("ready", "on-hold"): _PRACTITIONER,
    ("in-progress", "on-hold"): _PRACTITIONER,
    ("on-hold", "requested"): _PRACTITIONER,
    ("on-hold", "ready"): _PRACTITIONER,
    ("on-hold", "in-progress"): _PRACTITIONER,
    ("in-progress", "failed"): _ANYONE_BUT_CLIENT,
    ("cancelled", "ready"): _PRACTITIONER,  # reopened by the care professional
    **{
        (status, "cancelled"): _ANYONE_BUT_CLIENT
        for status in ("draft", "requested", "ready", "in-progress", "on-hold")
    },
}


class TaskTransitionError(FhirBurnoutError, ValueError):
    """A Task status change that the lifecycle or the actor's role does not allow."""

    code = "business-rule"

    def __init__(self, current: str, target: str, actor: Actor) -> None:
        self.current, self.target, self.actor = current, target, actor
        if target not in STATUSES:
            reason = f"{target!r} is not a Task status this programme uses"
        elif (current, target) in TRANSITIONS:
            reason = f"a {actor} may not move a Task from {current} to {target}"
        else:
            reason = f"a Task cannot go from {current} to {target}"
        super().__init__(reason)


def check_transition(current: str, target: str, actor: Actor) -> None:
    """Raise :class:`TaskTransitionError` unless ``actor`` may move ``current`` to ``target``."""
    if actor not in TRANSITIONS.get((current, target), frozenset()):
        raise TaskTransitionError(current, target, actor)
