"""The client's programme as a map and as a week: every phase and module of their track with
its state, the one thing to do now, and what is due this week, one entry per questionnaire.

Read-only, in the client's language. Why several Tasks of one questionnaire can be open at
once: a measure is asked at the start and at the end of each phase (``phq-9.start``,
``phq-9.end-recovery``), and homework belongs to each module that asks for it (the tension
log of two modules). A client who did not fill in the first before the phase ended has both;
the page shows the earliest and keeps the others for later, when it is sent.

The week is in order of importance, so that a client who is behind can start at the top
and a page may show only its first few: see :func:`_importance`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from fhir_burnout.questionnaire import localized
from fhir_burnout.workflow._definitions import Definitions
from fhir_burnout.workflow._tables import CURRENT, DraftRow, EnrolmentRow, TaskRow

#: A module's state on the map: to do, busy, done, not open yet; after the programme ended a
#: module that was open but not done is ``unfinished`` and one never opened ``closed``.
MODULE_STATES = ("todo", "busy", "done", "locked", "unfinished", "closed")
_STATE_OF = {"ready": "todo", "in-progress": "busy", "completed": "done"}
_OPEN = ("ready", "in-progress")
#: How far ahead "this week" looks, today included.
WEEK = timedelta(days=7)


@dataclass(frozen=True)
class ModuleEntry:
    """A module of the client's track and where the client is with it."""

    key: str
    action_id: str
    definition: str  # its ActivityDefinition (canonical|version)
    title: str
    state: str  # one of MODULE_STATES

    @property
    def readable(self) -> bool:
        """Whether the client may (re)read it: open now, done, or open when it ended."""
        return self.state not in ("locked", "closed")

    @property
    def opened(self) -> bool:
        """Whether the client has opened it (its exercises are theirs to do again)."""
        return self.state in ("busy", "done", "unfinished")


@dataclass(frozen=True)
class PhaseEntry:
    """A phase of the track: its number in the programme, title, status and modules."""

    code: str
    number: int
    title: str
    status: str  # locked | open | done
    modules: tuple[ModuleEntry, ...]
    opened_by_practitioner: bool = False


@dataclass(frozen=True)
class Moment:
    """Why a Task is there: ``phase-start``/``phase-end`` (of phase ``number``: a
    questionnaire), ``week`` ``number`` (the weekly check-in), ``module`` (homework of the
    module ``title``, or a module of phase ``number``)."""

    kind: str
    number: int = 0
    title: str = ""


@dataclass(frozen=True)
class ToDo:
    """Something for the client to do, with when and why."""

    key: str
    title: str
    kind: str  # module | homework | measure
    definition: str
    status: str
    since: date  # open since, or (in the future) open from
    moment: Moment
    draft: bool = False  # answers saved, not sent yet
    #: its moment has passed: open a week or longer, or asked at the start of a phase that
    #: is over (never said so to the client: it only puts it higher in the week)
    overdue: bool = False

    @property
    def open(self) -> bool:
        """Whether it can be done now (a later one opens on ``since``)."""
        return self.status in _OPEN


@dataclass(frozen=True)
class ProgrammeMap:
    """One enrolment as the client sees it: the map, the next step and this week."""

    enrolment: str
    track: str
    track_title: str
    status: str  # active | on-hold | completed | revoked
    phases: tuple[PhaseEntry, ...]
    next_step: ToDo | None
    this_week: tuple[ToDo, ...]  # the rest of this week, most important first
    later: int  # open Tasks of a questionnaire already on the list: after it is sent

    @property
    def paused(self) -> bool:
        """Paused by the care professional: nothing is due until it resumes."""
        return self.status == "on-hold"

    @property
    def ended(self) -> bool:
        """Finished or stopped: read-only, to reread and practise."""
        return self.status not in CURRENT

    @property
    def modules(self) -> tuple[ModuleEntry, ...]:
        """Every module of the track, in order."""
        return tuple(m for p in self.phases for m in p.modules)

    @property
    def current_phase(self) -> PhaseEntry | None:
        """The first open phase."""
        return next((p for p in self.phases if p.status == "open"), None)


@dataclass(frozen=True)
class ClientProgramme:
    """What the client's pages show: the current enrolments (or, when none is current, the
    last one that ended) and every module the client opened in any of them."""

    maps: tuple[ProgrammeMap, ...]
    opened: tuple[ModuleEntry, ...]  # newest enrolment first, each module once


def _action_titles(plan: Mapping[str, Any], lang: str) -> dict[str, str]:
    titles = {}
    for action in plan.get("action", []) or []:
        titles[str(action.get("id"))] = localized(action, "title", lang, "nl")
        for child in action.get("action", []) or []:
            titles[str(child.get("id"))] = localized(child, "title", lang, "nl")
    return titles


def _related(plan: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """Each action's first ``relatedAction`` (target, relationship): what it waits for."""
    found = {}
    for group in plan.get("action", []) or []:
        for action in group.get("action", []) or []:
            related = action.get("relatedAction") or []
            if related:
                found[str(action["id"])] = (
                    str(related[0]["actionId"]),
                    str(related[0]["relationship"]),
                )
    return found


def _module_state(task: TaskRow, was_open: bool, ended: bool) -> str:
    status = task.held_from if task.status == "on-hold" and task.held_from else task.status
    if status == "cancelled" or (ended and status not in ("completed",)):
        return "unfinished" if was_open else "closed"
    return _STATE_OF.get(status, "locked")


def _phases(
    enrolment: EnrolmentRow, titles: Mapping[str, str], ended: bool
) -> tuple[PhaseEntry, ...]:
    modules = [t for t in enrolment.tasks if t.kind == "module"]
    phases = []
    for number, phase in enumerate(sorted(enrolment.phases, key=lambda p: p.position), 1):
        entries, previous_done = [], True
        for task in (t for t in modules if t.phase == phase.code):
            # Ended or cancelled, a module was open when its phase was and the one before
            # it was done (the plan's rule: each module after the end of the one before).
            was_open = phase.status != "locked" and previous_done
            state = _module_state(task, was_open, ended)
            entries.append(
                ModuleEntry(
                    task.key,
                    task.action_id,
                    task.definition,
                    titles.get(task.action_id, task.title),
                    state,
                )
            )
            previous_done = task.status == "completed"
        phases.append(
            PhaseEntry(
                phase.code,
                number,
                titles.get(phase.code, phase.code),
                phase.status,
                tuple(entries),
                (phase.unlocked_by or "").startswith("Practitioner/"),
            )
        )
    return tuple(phases)


def _moment(  # noqa: PLR0917 - the facts of one Task, read once per enrolment
    task: TaskRow,
    start: date,
    related: Mapping[str, tuple[str, str]],
    numbers: Mapping[str, int],
    titles: Mapping[str, str],
    since: date,
) -> Moment:
    if task.kind == "module":
        return Moment("module", numbers.get(task.phase or "", 0))
    if task.action_id.endswith(".weekly"):
        return Moment("week", (since - start).days // 7 + 1)
    target, relationship = related.get(task.action_id, ("", ""))
    if target in numbers:
        kind = "phase-start" if relationship.startswith("before") else "phase-end"
        return Moment(kind, numbers[target])
    if target:
        return Moment("module", 0, titles.get(target, target))
    return Moment("none")


def _since(task: TaskRow) -> date:
    if task.ready_from is not None:
        return task.ready_from
    return task.updated_at.date()


#: A kind of Task's place in the week, other things equal: first what the care professional
#: reads (a questionnaire: a score missing at its moment leaves a gap in the course and in
#: the reliable change that no later answer fills), then the programme's next module, then
#: homework (practice for the client's own sake, which a later day makes up for).
_RANK = {"measure": 0, "module": 1, "homework": 2}


def _importance(todo: ToDo, today: date) -> tuple[bool, bool, int, bool, date]:
    """Where ``todo`` stands in the week, most important first: open now before what opens
    later this week; then what waited past its moment before what is due (the longer a
    measure waits, the less it says about the moment it measures); then by kind
    (``_RANK``); a form already begun before one not begun (little left to do); the oldest
    first. Python's sort is stable: the plan's order settles the rest."""
    return (
        todo.since > today,
        not todo.overdue,
        _RANK.get(todo.kind, len(_RANK)),
        not todo.draft,
        todo.since,
    )


def _overdue(since: date, moment: Moment, phase_status: Mapping[int, str], today: date) -> bool:
    """Whether a Task's moment has passed: open a week or more (a week's check-in when the
    next week has come), or a questionnaire for the start of a phase that is done."""
    if since + WEEK <= today:
        return True
    return moment.kind == "phase-start" and phase_status.get(moment.number) == "done"


def _agenda(
    enrolment: EnrolmentRow,
    plan: Mapping[str, Any],
    titles: Mapping[str, str],
    drafts: frozenset[str],
    today: date,
) -> tuple[ToDo | None, tuple[ToDo, ...], int]:
    """(the one next step, the rest of this week, how many wait behind an entry)."""
    if enrolment.status != "active":
        return None, (), 0  # paused or ended: nothing is asked meanwhile
    related = _related(plan)
    ordered = sorted(enrolment.phases, key=lambda p: p.position)
    numbers = {p.code: n for n, p in enumerate(ordered, 1)}
    phase_status = {n: p.status for n, p in enumerate(ordered, 1)}
    found: list[ToDo] = []
    for task in sorted(enrolment.tasks, key=lambda t: t.position):
        if task.kind == "practitioner" or task.status not in _OPEN:
            continue
        since = _since(task)
        if since >= today + WEEK:
            continue
        until = enrolment.measures_until
        if until is not None and today > until and task.action_id.endswith(".weekly"):
            continue  # its time is over: the worker closes it
        moment = _moment(task, enrolment.period_start, related, numbers, titles, since)
        title = titles.get(task.action_id, task.title)
        found.append(
            ToDo(task.key, title, task.kind, task.definition, task.status, since, moment,
                 task.key in drafts, _overdue(since, moment, phase_status, today))
        )  # fmt: skip
    now = [t for t in found if t.since <= today]
    steps = [t for t in now if t.kind in ("module", "homework")]
    # Begun first (a module half read, a form half filled in), then the next module (the
    # programme moves on), then homework, each in the plan's order.
    steps.sort(key=lambda t: (t.status != "in-progress" and not t.draft, t.kind != "module"))
    first = steps[0] if steps else None
    week, seen, later = [], {first.definition} if first else set(), 0
    for todo in found:
        if todo is first:
            continue
        if todo.kind != "module" and todo.definition in seen:
            later += 1  # the same questionnaire again: after this one is sent
            continue
        seen.add(todo.definition)
        week.append(todo)
    week.sort(key=lambda t: _importance(t, today))
    return first, tuple(week), later


def _enrolments(db: Session, fhir_base: str, patient: str) -> Sequence[EnrolmentRow]:
    return db.scalars(
        select(EnrolmentRow)
        .where(EnrolmentRow.fhir_base == fhir_base.rstrip("/"), EnrolmentRow.patient == patient)
        .options(selectinload(EnrolmentRow.phases), selectinload(EnrolmentRow.tasks))
        .order_by(EnrolmentRow.created_at.desc())
    ).all()


def client_programme(
    db: Session,
    definitions: Definitions,
    *,
    fhir_base: str,
    patient: str,
    lang: str = "nl",
    today: date | None = None,
) -> ClientProgramme:
    """The patient's programme on this EHR: the current enrolments (active or paused),
    newest first, or the last ended one when none is current; and every module they opened,
    in any enrolment (an exercise learnt on the waiting list stays theirs after a switch)."""
    today = today or datetime.now(UTC).date()
    enrolments = _enrolments(db, fhir_base, patient)
    shown = [e for e in enrolments if e.status in CURRENT] or list(enrolments[:1])
    open_keys = [t.key for e in shown for t in e.tasks if t.status in _OPEN]
    drafts = frozenset(
        db.scalars(select(DraftRow.task_key).where(DraftRow.task_key.in_(open_keys))).all()
        if open_keys
        else ()
    )
    maps, opened, seen = [], [], set()
    for enrolment in enrolments:
        plan = definitions.by_canonical[enrolment.plan_definition]
        titles = _action_titles(plan, lang)
        ended = enrolment.status not in CURRENT
        phases = _phases(enrolment, titles, ended)
        for module in (m for p in phases for m in p.modules):
            if module.opened and module.action_id not in seen:
                seen.add(module.action_id)
                opened.append(module)
        if enrolment in shown:
            first, week, later = _agenda(enrolment, plan, titles, drafts, today)
            maps.append(
                ProgrammeMap(
                    enrolment.key,
                    enrolment.track,
                    localized(plan, "title", lang, "nl"),
                    enrolment.status,
                    phases,
                    first,
                    week,
                    later,
                )
            )
    return ClientProgramme(tuple(maps), tuple(opened))
