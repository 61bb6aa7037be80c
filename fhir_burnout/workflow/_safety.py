"""What the safety rules need from the programme's state: the client's previous scores.

The rules themselves are evaluated by ``questionnaire.safety_signals`` (pure); their Tasks
are made by ``submit_response`` and ``alert_care_professional``.
"""

from __future__ import annotations

import json

from sqlalchemy import select
from sqlalchemy.orm import Session

from fhir_burnout.workflow._tables import EnrolmentRow, ResponseRow, TaskRow


def previous_scores(db: Session, task: TaskRow, questionnaire: str) -> dict[str, float]:
    """The client's latest scores (by linkId) on ``questionnaire`` (its url, with or
    without version) before now, over all their enrolments at this EHR: the baseline a
    reliable deterioration is measured against. Empty when there is none."""
    enrolment = task.enrolment
    url = questionnaire.split("|", 1)[0]
    rows = db.execute(
        select(ResponseRow.questionnaire, ResponseRow.scores)
        .join(EnrolmentRow, ResponseRow.enrolment_key == EnrolmentRow.key)
        .where(
            EnrolmentRow.fhir_base == enrolment.fhir_base,
            EnrolmentRow.patient == enrolment.patient,
            ResponseRow.questionnaire.like(f"{url}%"),
        )
        .order_by(ResponseRow.authored.desc(), ResponseRow.key.desc())
    )
    for canonical, scores in rows:
        if canonical.split("|", 1)[0] != url or not scores:
            continue
        found = {str(s["linkId"]): float(s["value"]) for s in json.loads(scores)}
        if found:
            return found
    return {}
