"""Where a client stands: which phases are open and which Tasks are ready, from the rules.

Pure. The PlanDefinition's ``relatedAction``s say when each action may start: a module after
the end of the one before it, homework once its module has started, a phase after the end
of the previous one, a measure before the start or after the end of a phase. A phase opens
at enrolment (the first), when the care professional opens it (``practitioner``), or as
soon as the previous phase is done (``automatic``). A phase is done when all its modules
are done; homework does not hold a phase back.

Tasks only move forward here (draft → requested → ready); what a person did (started,
completed, paused, cancelled) is never undone by the rules.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

FINISHED = frozenset({"completed", "cancelled"})
_WAITING = ("draft", "requested", "ready")


@dataclass(frozen=True)
class PhaseState:
    """A phase: its code, order, unlock rule and status (locked | open | done)."""

    code: str
    position: int
    unlock: str
    status: str


@dataclass(frozen=True)
class TaskState:
    """What the rules need of a Task."""

    key: str
    action_id: str
    kind: str
    phase: str | None
    status: str
    depends_on: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Progress:
    """The changes the rules make: new phase statuses and new Task statuses, by key."""

    phases: dict[str, str]
    tasks: dict[str, str]


def advance(phases: Iterable[PhaseState], tasks: Iterable[TaskState]) -> Progress:
    """Apply the rules until nothing changes; return what changed."""
    phase_status = {p.code: p.status for p in phases}
    ordered = sorted((p for p in phases), key=lambda p: p.position)
    task_list = list(tasks)
    task_status = {t.key: t.status for t in task_list}
    before_phases, before_tasks = dict(phase_status), dict(task_status)

    # By action and by phase, once: an enrolment gathers Tasks week by week, and the rules
    # look up an action for every dependency of every waiting Task.
    by_action: dict[str, list[str]] = {}
    modules_of: dict[str | None, list[str]] = {}
    for t in task_list:
        by_action.setdefault(t.action_id, []).append(t.key)
        if t.kind == "module":
            modules_of.setdefault(t.phase, []).append(t.key)

    def action_statuses(action_id: str) -> list[str]:
        return [task_status[key] for key in by_action.get(action_id, ())]

    def satisfied(target: str, relationship: str) -> bool:
        if target in phase_status:
            if relationship == "after-start":
                return phase_status[target] in ("open", "done")
            if relationship == "after-end":
                return phase_status[target] == "done"
            return True  # before-start and the like: any time from now
        found = action_statuses(target)
        if relationship == "after-start":
            return any(s in ("in-progress", *FINISHED) for s in found)
        if relationship == "after-end":
            return any(s in FINISHED for s in found)
        return True

    def waits_on_locked_phase(task: TaskState) -> bool:
        if task.phase is not None:
            return phase_status.get(task.phase) == "locked"
        return any(phase_status.get(target) == "locked" for target, _ in task.depends_on)

    changed = True
    while changed:
        changed = False
        for index, phase in enumerate(ordered):
            status = phase_status[phase.code]
            modules = [task_status[key] for key in modules_of.get(phase.code, ())]
            if status == "open" and modules and all(s in FINISHED for s in modules):
                phase_status[phase.code] = "done"
                changed = True
            previous = ordered[index - 1].code if index else None
            if (
                status == "locked"
                and phase.unlock == "automatic"
                and previous is not None
                and phase_status[previous] == "done"
            ):
                phase_status[phase.code] = "open"
                changed = True
        for task in task_list:
            current = task_status[task.key]
            if current not in _WAITING:
                continue
            if waits_on_locked_phase(task):
                wanted = "draft"
            elif all(satisfied(target, rel) for target, rel in task.depends_on):
                wanted = "ready"
            else:
                wanted = "requested"
            if _WAITING.index(wanted) > _WAITING.index(current):
                task_status[task.key] = wanted
                changed = True
    return Progress(
        phases={k: v for k, v in phase_status.items() if before_phases[k] != v},
        tasks={k: v for k, v in task_status.items() if before_tasks[k] != v},
    )
