"""The practice's own outcomes: per questionnaire, how many clients improved, recovered or
deteriorated from their first to their last score, with nobody identifiable in the result.

Read-only and free of Flask. Per client (a Patient on one EHR), over all their enrolments
at the practice, ended ones included (a client who moved from the waiting list to
treatment keeps one line of scores); the verdicts are ``questionnaire.clinical_change``'s
(reliable change and recovery as NHS Talking Therapies defines them, see
docs/reliable-change.md). The result holds counts only: no names, ids or dates. A count from
1 to 4 is shown as "< 5" (``shown_count``), so that a small practice's table does not point at one
client ("the one who deteriorated"); 0 is shown as it is. This keeps a glance at the table
from naming anyone; it is no defence against someone who reads every client's chart and
subtracts, and is not meant to be.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from fhir_burnout.questionnaire import clinical_change
from fhir_burnout.workflow._tables import EnrolmentRow, ResponseRow

#: The questionnaires the practice's outcomes count, and the score of each (WHO-5: the
#: 0-100 score the care professional reads, not the raw one, so no client counts twice).
OUTCOME_SCORES: tuple[tuple[str, str], ...] = (
    ("phq-9", "phq9-total"),
    ("gad-7", "gad7-total"),
    ("who-5", "who5-percentage"),
)

#: Counts below this are shown as "< 5".
SMALL = 5


def shown_count(count: int) -> str:
    """A count as the page shows it: 0, "< 5" for 1 to 4, else the number."""
    return f"< {SMALL}" if 0 < count < SMALL else str(count)


@dataclass(frozen=True)
class OutcomeCounts:
    """One questionnaire's outcomes over the clients with a first and a last score."""

    questionnaire: str  # the Questionnaire's id: phq-9, gad-7, who-5
    link_id: str
    clients: int  # clients with two scores or more
    improved: int  # reliably improved
    no_change: int  # no reliable change
    deteriorated: int  # reliably deteriorated
    cases_at_start: int  # a case at the first score (recovery applies to them only)
    recovered: int
    reliably_recovered: int


def _empty(questionnaire: str, link_id: str) -> OutcomeCounts:
    return OutcomeCounts(questionnaire, link_id, 0, 0, 0, 0, 0, 0, 0)


def practice_outcomes(
    db: Session,
    *,
    fhir_base: str,
    practice: str | None,
    patients: Collection[str] | None = None,
) -> tuple[OutcomeCounts, ...]:
    """Per questionnaire of ``OUTCOME_SCORES``, the practice's counts (``practice``: an
    Organization reference; enrolments that name none belong to the EHR's, as on the
    practice's list). ``patients``: only these clients (Patient ids); None: everyone."""
    mine = [EnrolmentRow.fhir_base == fhir_base.rstrip("/")]
    if practice is not None:
        mine.append(or_(EnrolmentRow.practice == practice, EnrolmentRow.practice.is_(None)))
    if patients is not None:
        mine.append(EnrolmentRow.patient.in_(sorted(patients)))
    wanted = {link_id for _, link_id in OUTCOME_SCORES}
    # first and last value per (client, score), oldest first
    found: dict[tuple[str, str], list[tuple[str, float]]] = defaultdict(list)
    for patient, questionnaire, scores in db.execute(
        select(EnrolmentRow.patient, ResponseRow.questionnaire, ResponseRow.scores)
        .join(ResponseRow, ResponseRow.enrolment_key == EnrolmentRow.key)
        .where(*mine, ResponseRow.scores != "[]")
        .order_by(ResponseRow.authored, ResponseRow.key)
    ):
        for kept in json.loads(scores or "[]"):
            link_id = kept.get("linkId")
            if link_id in wanted and kept.get("value") is not None:
                found[patient, link_id].append((questionnaire, float(kept["value"])))
    counts = {link_id: _empty(q, link_id) for q, link_id in OUTCOME_SCORES}
    for (_, link_id), values in found.items():
        if len(values) < 2:
            continue
        (questionnaire, first), (_, last) = values[0], values[-1]
        change = clinical_change(questionnaire, link_id, first, last)
        if change is None:  # another system's questionnaire that names its score alike
            continue
        now = counts[link_id]
        verdict = change.reliable.verdict
        counts[link_id] = OutcomeCounts(
            now.questionnaire,
            link_id,
            clients=now.clients + 1,
            improved=now.improved + (verdict == "improved"),
            no_change=now.no_change + (verdict == "no-change"),
            deteriorated=now.deteriorated + (verdict == "worse"),
            cases_at_start=now.cases_at_start + change.case_before,
            recovered=now.recovered + bool(change.recovered),
            reliably_recovered=now.reliably_recovered + bool(change.reliably_recovered),
        )
    return tuple(counts[link_id] for _, link_id in OUTCOME_SCORES)
