"""What the care professional reads: one client's programme at a glance, and the practice's
list of everyone enrolled.

Read-only and free of Flask, in the care professional's language (texts from the
PlanDefinition's and the Questionnaires' translation extensions). Scores come from the
questionnaire engine, bands from each questionnaire's ``score-band`` extension, and the
reliable change (Jacobson-Truax) from ``questionnaire.reliable_change``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fhir_burnout.questionnaire import (
    FormModel,
    ReliableChange,
    load_form,
    localized,
    reliable_change,
    score,
)
from fhir_burnout.workflow._definitions import Definitions
from fhir_burnout.workflow._endings import MeasureView, ending_label, measure_views
from fhir_burnout.workflow._practitioner_tasks import MEASURES_END
from fhir_burnout.workflow._readable import ResponseOverview, readable
from fhir_burnout.workflow._tables import (
    CURRENT,
    EnrolmentRow,
    InvitationRow,
    NoteRow,
    ResponseRow,
    TaskRow,
)

#: The form model of a Questionnaire (canonical, language); the web layer passes its memo.
Forms = Callable[[str, str], FormModel]


@dataclass(frozen=True)
class PhaseOverview:
    """A phase of an enrolment and who opened it, when."""

    code: str
    title: str
    status: str  # locked | open | done
    unlock: str  # start | practitioner | previous-phase
    unlocked_at: datetime | None
    unlocked_by: str | None


@dataclass(frozen=True)
class ModuleDone:
    """A module the client finished, and when."""

    key: str
    title: str
    phase: str | None
    completed_at: datetime


@dataclass(frozen=True)
class NoteOverview:
    """A note the care professional sent the client."""

    key: str
    text: str
    author: str
    created_at: datetime


@dataclass(frozen=True)
class EnrolmentOverview:
    """One enrolment (current or ended), with its phases, modules done and notes."""

    key: str
    track: str
    track_title: str
    status: str  # active | on-hold | completed | revoked
    period_start: date
    created_at: datetime
    author: str | None
    follows: str | None  # the enrolment this one carries on from (a switch)
    followed_by: str | None  # the enrolment that carries this one on
    phases: tuple[PhaseOverview, ...]
    modules_done: tuple[ModuleDone, ...]
    modules_total: int
    notes: tuple[NoteOverview, ...]
    invitation: str | None  # a referral's invitation code, when there is one
    invitation_accepted: bool
    #: what the track measures and how often (content: the track's ``measures:``)
    measures: tuple[MeasureView, ...] = ()
    ending_reason: str | None = None  # why it was stopped or finished, in the page's language
    #: its measures have run their time: the care professional closes or extends the track
    measures_ended: bool = False

    @property
    def current(self) -> bool:
        """Active or paused: it still holds the client's place in its track."""
        return self.status in CURRENT

    @property
    def next_phase(self) -> PhaseOverview | None:
        """The first phase still locked: the one the care professional can open next."""
        return next((p for p in self.phases if p.status == "locked"), None)


@dataclass(frozen=True)
class ScorePoint:
    """One score at one moment, with the band it falls in."""

    authored: datetime
    value: float
    band: str | None
    label: str | None


@dataclass(frozen=True)
class ScoreSeries:
    """A score over time and the reliable change from the first to the latest point."""

    questionnaire: str
    link_id: str
    title: str
    points: tuple[ScorePoint, ...]
    change: ReliableChange | None  # None: one point only, or no published reliability


@dataclass(frozen=True)
class CareTask:
    """An open to-do of the care professional's: a safety review or a phase to open."""

    key: str
    enrolment: str
    kind: str  # safety | unlock
    text: str
    raised_at: datetime
    response: str | None = None  # safety: the response that gave the signal, if any
    phase: str | None = None  # unlock: the phase to open
    #: safety: urgent (contact today) | routine (review before or at the next contact)
    priority: str = "urgent"


@dataclass(frozen=True)
class PatientOverview:
    """One client on one EHR: everything the care professional needs before a session."""

    patient: str
    enrolments: tuple[EnrolmentOverview, ...]  # newest first
    safety_alerts: tuple[CareTask, ...]  # urgent first, then oldest first
    unlock_requests: tuple[CareTask, ...]
    scores: tuple[ScoreSeries, ...]
    responses: tuple[ResponseOverview, ...]  # newest first
    tracks: Mapping[str, str]  # every track of the programme: code -> title

    @property
    def current(self) -> tuple[EnrolmentOverview, ...]:
        """The enrolments that are active or paused."""
        return tuple(e for e in self.enrolments if e.current)

    @property
    def tracks_to_enrol(self) -> tuple[str, ...]:
        """The tracks the care professional may enrol the client in: every track while the
        client is in none (never, or all ended), after-care first once treatment was
        finished; none while a programme is current (a waiting-list client moves into
        treatment by switching, a treated client into after-care by finishing)."""
        if self.current:
            return ()
        finished = any(e.track == "standard" and e.status == "completed" for e in self.enrolments)
        first = ("after-care",) if finished and "after-care" in self.tracks else ()
        return first + tuple(t for t in self.tracks if t not in first)


def _forms_from(definitions: Definitions) -> Forms:
    value_sets = {
        str(r["url"]): r
        for r in definitions.by_canonical.values()
        if r.get("resourceType") == "ValueSet"
    }
    made: dict[tuple[str, str], FormModel] = {}

    def forms(canonical: str, lang: str) -> FormModel:
        if (canonical, lang) not in made:
            questionnaire = definitions.by_canonical[canonical]
            made[canonical, lang] = load_form(questionnaire, lang=lang, value_sets=value_sets)
        return made[canonical, lang]

    return forms


def _titles(plan: Mapping[str, Any], lang: str) -> dict[str, str]:
    titles = {}
    for action in plan.get("action", []) or []:
        titles[str(action.get("id"))] = localized(action, "title", lang, "nl")
        for child in action.get("action", []) or []:
            titles[str(child.get("id"))] = localized(child, "title", lang, "nl")
    return titles


def _aware(value: datetime) -> datetime:
    # SQLite hands timezone-aware columns back naive; they were written in UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# long: the client's whole overview from four queries (enrolments, notes, invitations,
# responses), read once and joined in memory; each part uses the maps the ones before built.
def patient_overview(
    db: Session,
    definitions: Definitions,
    *,
    fhir_base: str,
    patient: str,
    lang: str = "nl",
    forms: Forms | None = None,
) -> PatientOverview:
    """Everything about one patient's programme on this EHR, for the care professional."""
    fhir_base = fhir_base.rstrip("/")
    forms = forms or _forms_from(definitions)
    rows = db.scalars(
        select(EnrolmentRow)
        .where(EnrolmentRow.fhir_base == fhir_base, EnrolmentRow.patient == patient)
        .order_by(EnrolmentRow.created_at.desc())
    ).all()
    keys = [e.key for e in rows]
    notes: dict[str, list[NoteOverview]] = defaultdict(list)
    for note in db.scalars(
        select(NoteRow).where(NoteRow.enrolment_key.in_(keys)).order_by(NoteRow.created_at.desc())
    ):
        notes[note.enrolment_key].append(
            NoteOverview(note.key, note.text, note.author, _aware(note.created_at))
        )
    invitations = {
        i.enrolment_key: i
        for i in db.scalars(select(InvitationRow).where(InvitationRow.enrolment_key.in_(keys)))
    }
    followed_by = {e.follows: e.key for e in rows if e.follows}
    enrolments = []
    alerts, requests = [], []
    titles_of: dict[str, dict[str, str]] = {}
    for row in rows:
        plan = definitions.by_canonical[row.plan_definition]
        titles = titles_of[row.key] = _titles(plan, lang)
        modules = [t for t in row.tasks if t.kind == "module"]
        invitation = invitations.get(row.key)
        enrolments.append(
            EnrolmentOverview(
                key=row.key,
                track=row.track,
                track_title=localized(plan, "title", lang, "nl"),
                status=row.status,
                period_start=row.period_start,
                created_at=_aware(row.created_at),
                author=row.author,
                follows=row.follows,
                followed_by=followed_by.get(row.key),
                phases=tuple(
                    PhaseOverview(
                        p.code,
                        titles.get(p.code, p.code),
                        p.status,
                        p.unlock,
                        _aware(p.unlocked_at) if p.unlocked_at else None,
                        p.unlocked_by,
                    )
                    for p in sorted(row.phases, key=lambda p: p.position)
                ),
                modules_done=tuple(
                    ModuleDone(
                        t.key, titles.get(t.action_id, t.title), t.phase, _aware(t.updated_at)
                    )
                    for t in modules
                    if t.status == "completed"
                ),
                modules_total=len(modules),
                notes=tuple(notes[row.key]),
                invitation=invitation.code if invitation else None,
                invitation_accepted=bool(invitation and invitation.accepted_at),
                measures=measure_views(plan, row, lang),
                ending_reason=ending_label(definitions, row.ending_reason, lang),
                measures_ended=any(
                    t.action_id == MEASURES_END and t.status == "requested" for t in row.tasks
                ),
            )
        )
        for task in row.tasks:
            if task.kind != "practitioner" or task.status != "requested":
                continue
            if task.action_id.startswith("safety:"):
                alerts.append(task)
            elif task.action_id.startswith("unlock:") and row.status in CURRENT:
                phase = task.action_id.removeprefix("unlock:")
                requests.append(
                    CareTask(
                        task.key,
                        row.key,
                        "unlock",
                        titles.get(phase, phase),
                        _aware(task.updated_at),
                        phase=phase,
                    )
                )
    responses = list(
        db.scalars(
            select(ResponseRow)
            .where(ResponseRow.enrolment_key.in_(keys))
            .order_by(ResponseRow.authored, ResponseRow.key)
        )
    )
    return PatientOverview(
        patient=patient,
        enrolments=tuple(enrolments),
        safety_alerts=tuple(
            sorted(
                (
                    _safety(db, definitions, forms, t, responses=responses, lang=lang)
                    for t in alerts
                ),
                key=lambda a: (a.priority != "urgent", a.raised_at),
            )
        ),
        unlock_requests=tuple(requests),
        scores=tuple(_series(definitions, forms, responses, lang)),
        responses=tuple(_readable(definitions, forms, r, lang) for r in reversed(responses)),
        tracks={
            code: localized(plan, "title", lang, "nl")
            for code, plan in sorted(definitions.plans.items())
        },
    )


def _title_of(definitions: Definitions, forms: Forms, canonical: str, lang: str) -> str:
    if canonical in definitions.by_canonical:
        resource = definitions.by_canonical[canonical]
        if resource.get("resourceType") == "Questionnaire":
            return forms(canonical, lang).title
        return localized(resource, "title", lang, "nl")
    return canonical.rsplit("/", 1)[-1]


def _safety(
    db: Session,
    definitions: Definitions,
    forms: Forms,
    task: TaskRow,
    *,
    responses: list[ResponseRow],
    lang: str,
) -> CareTask:
    """A safety review: named for the questionnaire whose answers gave the signal."""
    # safety:<response key> after a sent response; safety:<task key>:<time> for answers
    # that could not be sent (kept as a draft).
    # safety:<response key>[:<rule>] after a sent response; safety:<task key>:<rule> (or
    # :<time>, before the rules were data) for answers that could not be sent.
    reference = task.action_id.removeprefix("safety:").split(":", 1)[0]
    response = next((r for r in responses if r.key == reference), None)
    if response is not None:
        title = _title_of(definitions, forms, response.questionnaire, lang)
    else:
        source = db.get(TaskRow, reference.split(":", 1)[0])
        title = _title_of(definitions, forms, source.definition, lang) if source else task.title
    return CareTask(
        task.key,
        task.enrolment_key,
        "safety",
        title,
        _aware(task.updated_at),
        response=response.key if response else None,
        priority=task.priority or "urgent",
    )


def _series(
    definitions: Definitions, forms: Forms, rows: list[ResponseRow], lang: str
) -> list[ScoreSeries]:
    """Each calculated score over time (oldest first), with bands and the reliable change."""
    found: dict[tuple[str, str], list[ScorePoint]] = defaultdict(list)
    titles: dict[tuple[str, str], str] = {}
    for row in rows:
        if not json.loads(row.scores or "[]") or row.questionnaire not in definitions.by_canonical:
            continue
        form = forms(row.questionnaire, lang)
        # Kept as built: its calculated answers are current, read rather than computed again.
        for result in score(form, json.loads(row.resource), current=True):
            if result.value is None or result.instance:
                continue
            key = (row.questionnaire, result.link_id)
            item = form.index[result.link_id]
            titles[key] = f"{form.title}: {item.text}" if item.text else form.title
            found[key].append(
                ScorePoint(_aware(row.authored), float(result.value), result.band, result.label)
            )
    series = []
    for (questionnaire, link_id), points in found.items():
        change = None
        if len(points) > 1:
            change = reliable_change(questionnaire, link_id, points[0].value, points[-1].value)
        series.append(
            ScoreSeries(
                questionnaire, link_id, titles[questionnaire, link_id], tuple(points), change
            )
        )
    return series


def _readable(
    definitions: Definitions, forms: Forms, row: ResponseRow, lang: str
) -> ResponseOverview:
    """A response as question/answer pairs, in the Questionnaire's order and texts."""
    form = (
        forms(row.questionnaire, lang) if row.questionnaire in definitions.by_canonical else None
    )
    return readable(form, row, _aware(row.authored), lang)
