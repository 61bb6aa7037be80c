"""What the care professional reads of the whole practice: one row per client enrolled,
the stuck and the open safety alerts first, and the EHR's dead letters; and the work list
built from those rows (``work_list``: one filter, one column to sort by).

Read-only and free of Flask, like the one client's overview (``_overview``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, selectinload

from fhir_burnout.questionnaire import localized
from fhir_burnout.sync import Blocked, OutboxEntry, blocked_entries
from fhir_burnout.workflow._definitions import Definitions
from fhir_burnout.workflow._overview import _aware, _titles
from fhir_burnout.workflow._tables import CURRENT, EnrolmentRow, ResponseRow, TaskRow

#: The waiting-list track (referral.WAITING_LIST; referral imports workflow, not back).
_WAITING_LIST = "waiting-list"

#: A client counts as stuck when nothing was completed for this long while something is
#: ready for them (a paused programme is never stuck: nothing is theirs to do).
STUCK_AFTER = timedelta(days=14)

#: Task statuses that mean "the client can do this now".
_READY = ("ready", "in-progress")


@dataclass(frozen=True)
class PracticeRow:
    """One current enrolment in the practice's list."""

    enrolment: str
    patient: str
    track: str
    track_title: str
    status: str  # active | on-hold
    phase: str | None  # the title of the phase the client is in
    last_activity: datetime
    stuck: bool
    safety_alerts: int
    alert_since: datetime | None  # when the oldest open safety alert was raised
    urgent_alerts: int = 0  # of the open safety alerts, the urgent ones
    #: on the waiting-list track: the day it started; None on any other track
    waiting_since: date | None = None

    @property
    def ended(self) -> bool:
        """The programme ended (finished or stopped)."""
        return self.status not in CURRENT


@dataclass(frozen=True)
class DeadLetter:
    """A write the sync worker gave up on, with the EHR's own message."""

    id: int
    patient: str | None
    kind: str
    status: int | None
    message: str
    created_at: datetime


@dataclass(frozen=True)
class PracticeOverview:
    """Everyone enrolled at a practice on one EHR; safety alerts and the stuck on top."""

    rows: tuple[PracticeRow, ...]
    dead_letters: tuple[DeadLetter, ...]
    #: writes that cannot be delivered before something changes, per reason (sync.WAITING)
    blocked: tuple[Blocked, ...] = ()

    @property
    def alerts(self) -> tuple[PracticeRow, ...]:
        """The clients with an open safety alert."""
        return tuple(r for r in self.rows if r.safety_alerts)

    @property
    def stuck(self) -> tuple[PracticeRow, ...]:
        """The clients who are stuck."""
        return tuple(r for r in self.rows if r.stuck)


# long: one row per enrolment from a few aggregate queries read once; the stuck rule and
# the sort order need all of them together.
def practice_overview(
    db: Session,
    definitions: Definitions,
    *,
    fhir_base: str,
    practice: str | None,
    lang: str = "nl",
    now: datetime | None = None,
    patients: Collection[str] | None = None,
    ended: bool = False,
) -> PracticeOverview:
    """One row per current enrolment of the practice (``practice``, an Organization
    reference; enrolments that name no practice belong to the EHR's) and the EHR's dead
    letters. Sorted: open safety alerts first, then the stuck, then the longest quiet.
    ``patients``: only these clients (Patient ids), and only their dead letters and those
    of no client; None: everyone. ``ended``: the ended enrolments too."""
    fhir_base = fhir_base.rstrip("/")
    now = now or datetime.now(UTC)
    today = now.date()
    mine = [EnrolmentRow.fhir_base == fhir_base]
    if not ended:
        mine.append(EnrolmentRow.status.in_(CURRENT))
    if practice is not None:
        mine.append(or_(EnrolmentRow.practice == practice, EnrolmentRow.practice.is_(None)))
    if patients is not None:
        mine.append(EnrolmentRow.patient.in_(sorted(patients)))
    # Phases in one more statement, not one per client.
    enrolments = db.scalars(
        select(EnrolmentRow).where(*mine).options(selectinload(EnrolmentRow.phases))
    ).all()
    keys = [e.key for e in enrolments]
    client = TaskRow.kind != "practitioner"
    alert = and_(
        TaskRow.kind == "practitioner",
        TaskRow.status == "requested",
        TaskRow.action_id.like("safety:%"),
    )
    facts = {
        key: (last_done, last_change, ready, alerts, alert_since, urgent)
        for key, last_done, last_change, ready, alerts, alert_since, urgent in db.execute(
            select(
                TaskRow.enrolment_key,
                func.max(TaskRow.updated_at).filter(client, TaskRow.status == "completed"),
                func.max(TaskRow.updated_at).filter(
                    client, TaskRow.status.in_(("in-progress", "completed"))
                ),
                func.count().filter(
                    client,
                    TaskRow.status.in_(_READY),
                    or_(TaskRow.ready_from.is_(None), TaskRow.ready_from <= today),
                ),
                func.count().filter(alert),
                func.min(TaskRow.updated_at).filter(alert),
                func.count().filter(alert, TaskRow.priority != "routine"),
            )
            .where(TaskRow.enrolment_key.in_(keys))
            .group_by(TaskRow.enrolment_key)
        )
    }
    answered = dict(
        db.execute(
            select(ResponseRow.enrolment_key, func.max(ResponseRow.authored))
            .where(ResponseRow.enrolment_key.in_(keys))
            .group_by(ResponseRow.enrolment_key)
        ).all()
    )
    rows = []
    for enrolment in enrolments:
        plan = definitions.by_canonical[enrolment.plan_definition]
        titles = _titles(plan, lang)
        last_done, last_change, ready, alerts, alert_since, urgent = facts.get(
            enrolment.key, (None, None, 0, 0, None, 0)
        )
        started = _aware(enrolment.created_at)
        times = [started, *(_aware(t) for t in (last_change, answered.get(enrolment.key)) if t)]
        quiet_since = _aware(last_done) if last_done else started
        phase = next(
            (p for p in sorted(enrolment.phases, key=lambda p: p.position) if p.status == "open"),
            None,
        )
        rows.append(
            PracticeRow(
                enrolment=enrolment.key,
                patient=enrolment.patient,
                track=enrolment.track,
                track_title=localized(plan, "title", lang, "nl"),
                status=enrolment.status,
                phase=titles.get(phase.code, phase.code) if phase else None,
                last_activity=max(times),
                stuck=enrolment.status == "active"
                and bool(ready)
                and now - quiet_since >= STUCK_AFTER,
                safety_alerts=int(alerts),
                alert_since=_aware(alert_since) if alert_since else None,
                urgent_alerts=int(urgent),
                waiting_since=enrolment.period_start if enrolment.track == _WAITING_LIST else None,
            )
        )
    rows.sort(
        key=lambda r: (-r.urgent_alerts, -r.safety_alerts, not r.stuck, r.last_activity, r.patient)
    )
    dead = db.scalars(
        select(OutboxEntry)
        .where(OutboxEntry.fhir_base == fhir_base, OutboxEntry.state == "dead")
        .order_by(OutboxEntry.id)
    ).all()
    letters = (
        DeadLetter(
            id=entry.id,
            patient=entry.partition.rsplit("#Patient/", 1)[1]
            if "#Patient/" in entry.partition
            else None,
            kind=entry.kind,
            status=entry.last_status,
            message=entry.last_error or "",
            created_at=_aware(entry.created_at),
        )
        for entry in dead
    )
    return PracticeOverview(
        rows=tuple(rows),
        dead_letters=tuple(
            d for d in letters if patients is None or d.patient is None or d.patient in patients
        ),
        blocked=blocked_entries(db, fhir_base),
    )


#: The work list's filters: everyone current, or only those with open safety signals, the
#: stuck, those on the waiting list; or the ended programmes (which the others leave out).
FILTERS = ("all", "signals", "stuck", "waiting", "ended")

#: The columns the work list sorts by; "priority" is the overview's own order (signals,
#: then the stuck, then the longest quiet).
SORTS = ("priority", "name", "track", "phase", "last", "signals", "stuck", "waiting")


def _shows(row: PracticeRow, show: str) -> bool:
    if show == "ended":
        return row.ended
    if row.ended:
        return False
    return {
        "signals": row.safety_alerts > 0,
        "stuck": row.stuck,
        "waiting": row.waiting_since is not None,
    }.get(show, True)


def work_list(
    rows: tuple[PracticeRow, ...],
    *,
    show: str = "all",
    sort: str = "priority",
    descending: bool = False,
    names: Mapping[str, str] | None = None,
) -> tuple[PracticeRow, ...]:
    """The rows one filter of ``FILTERS`` shows, sorted by one column of ``SORTS``
    (``names``: the clients' names by Patient id, for sorting by name; an unknown name sorts
    by its id). Ties keep the overview's order, so the urgent stay above the rest."""
    kept = [r for r in rows if _shows(r, show)]
    if sort not in SORTS or sort == "priority":
        return tuple(reversed(kept)) if descending else tuple(kept)
    names = names or {}
    keys = {
        "name": lambda r: (names.get(r.patient) or r.patient).casefold(),
        "track": lambda r: r.track_title.casefold(),
        "phase": lambda r: (r.phase or "").casefold(),
        "last": lambda r: r.last_activity,
        "signals": lambda r: (r.urgent_alerts, r.safety_alerts),
        "stuck": lambda r: r.stuck,
        # an empty cell sorts last, whichever way
        "waiting": lambda r: r.waiting_since or (date.min if descending else date.max),
    }
    return tuple(sorted(kept, key=keys[sort], reverse=descending))
