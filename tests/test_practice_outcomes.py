"""The practice's outcomes (issue 21): per questionnaire, how many clients with a first and a
last score improved, showed no reliable change, deteriorated, were cases at the start,
recovered and reliably recovered; counted by hand for seeded clients, on SQLite and
PostgreSQL, with no client identifiable in the result."""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from fhir_burnout.workflow import (
    Definitions,
    OutcomeCounts,
    ResponseRow,
    enrol,
    practice_outcomes,
    shown_count,
    stop,
    switch_track,
)

from .practitioners import PHQ9_ITEMS, PRACTICE, submit

BASE = "https://ehr.example/fhir"
START = datetime(2026, 9, 1, 9, tzinfo=UTC)

#: Per client: (first, last) per score; one value: a single score (not counted).
SEEDED = {
    "anna": {"phq9-total": (18, 8), "gad7-total": (11, 7), "who5-percentage": (28, 52)},
    "bram": {"phq9-total": (12, 8), "gad7-total": (9, 6), "who5-percentage": (40, 56)},
    "cato": {"phq9-total": (6, 13), "gad7-total": (10, 14), "who5-percentage": (60, 36)},
    "daan": {"phq9-total": (22, 14)},  # his programme ended: still counted
    "eva": {"phq9-total": (15,)},  # one score: nothing to compare
    "elsewhere": {"phq9-total": (20, 2)},  # another practice's client
}


@pytest.fixture(scope="module")
def definitions(resources):
    return Definitions.from_resources(resources)


def _canonical(definitions: Definitions, questionnaire: str) -> str:
    return next(c for c in definitions.by_canonical if f"/Questionnaire/{questionnaire}|" in c)


def _seed(db: Session, definitions: Definitions) -> None:
    ids = {"phq9-total": "phq-9", "gad7-total": "gad-7", "who5-percentage": "who-5"}
    for patient, scores in SEEDED.items():
        practice = "Organization/other" if patient == "elsewhere" else PRACTICE
        row = enrol(db, definitions, fhir_base=BASE, patient=patient, track="standard",
                    practice=practice, now=START)  # fmt: skip
        for link_id, values in scores.items():
            for week, value in enumerate(values):
                extra = [{"linkId": "who5-raw", "value": value / 4}] if "who5" in link_id else []
                db.add(ResponseRow(
                    key=str(uuid.uuid4()), task_key=None, enrolment_key=row.key,
                    questionnaire=_canonical(definitions, ids[link_id]), status="completed",
                    resource="{}", authored=START + timedelta(weeks=week),
                    scores=json.dumps([{"linkId": link_id, "value": value, "band": None},
                                       *extra]),
                ))  # fmt: skip
        if patient == "daan":
            db.flush()
            stop(db, row.key, by="Practitioner/x", now=START + timedelta(weeks=3))
    # Fenna: through the app's own path, over two enrolments (waiting list, then treatment):
    # every PHQ-9 item 3 but item 9 at 2 = 26, later item 1 at 1 = 1.
    waiting = enrol(db, definitions, fhir_base=BASE, patient="fenna", track="waiting-list",
                    practice=PRACTICE, now=START)  # fmt: skip
    tasks = {t.action_id: t.key for t in waiting.tasks}
    submit(db, definitions, tasks["phq-9.start"], {**dict.fromkeys(PHQ9_ITEMS, 3),
           "phq9-9": 2}, patient="fenna", now=START)  # fmt: skip
    treatment = switch_track(db, definitions, waiting.key, "standard", by="Practitioner/x",
                             now=START + timedelta(days=30))  # fmt: skip
    again = next(t.key for t in treatment.tasks if t.action_id == "phq-9.start")
    submit(db, definitions, again, {**dict.fromkeys(PHQ9_ITEMS, 0), "phq9-1": 1},
           patient="fenna", now=START + timedelta(days=31))  # fmt: skip


def _counts(outcomes: tuple[OutcomeCounts, ...]) -> dict[str, tuple[int, ...]]:
    return {
        o.link_id: (o.clients, o.improved, o.no_change, o.deteriorated, o.cases_at_start,
                    o.recovered, o.reliably_recovered)
        for o in outcomes
    }  # fmt: skip


def test_the_practice_outcomes_match_the_counts_worked_out_by_hand(engine, definitions):
    with Session(engine) as db, db.begin():
        _seed(db, definitions)
    with Session(engine) as db:
        outcomes = practice_outcomes(db, fhir_base=BASE, practice=PRACTICE)
    # PHQ-9 (reliable 6, case >= 10):
    #   anna 18 -> 8: improved, case, recovered, reliably recovered
    #   bram 12 -> 8: fall 4, no change; case -> no case: recovered, not reliably
    #   cato 6 -> 13: rise 7, deteriorated; no case at the start: recovery n/a
    #   daan 22 -> 14: improved, case, still a case: not recovered
    #   fenna 26 -> 1 (two enrolments): improved, case, recovered, reliably recovered
    #   eva (one score) and elsewhere (another practice): not counted
    # -> 5 clients: 3 improved, 1 no change, 1 deteriorated; 4 cases, 3 recovered, 2 reliably
    # GAD-7 (reliable 4, case >= 8):
    #   anna 11 -> 7 improved, recovered, reliably; bram 9 -> 6 no change, recovered;
    #   cato 10 -> 14 deteriorated, a case still -> 3 clients, 1/1/1, 3 cases, 2 rec., 1 rel.
    # WHO-5 (reliable 21.03, case <= 50):
    #   anna 28 -> 52 improved, recovered, reliably; bram 40 -> 56 no change, recovered;
    #   cato 60 -> 36 deteriorated, no case at the start -> 3 clients, 1/1/1, 2 cases, 2, 1
    assert _counts(outcomes) == {
        "phq9-total": (5, 3, 1, 1, 4, 3, 2),
        "gad7-total": (3, 1, 1, 1, 3, 2, 1),
        "who5-percentage": (3, 1, 1, 1, 2, 2, 1),
    }
    # Only these clients (a care professional who may see anna and bram only):
    with Session(engine) as db:
        mine = practice_outcomes(db, fhir_base=BASE, practice=PRACTICE, patients={"anna", "bram"})
    assert _counts(mine)["phq9-total"] == (2, 1, 1, 0, 2, 2, 1)


def test_the_result_names_nobody(engine, definitions):
    with Session(engine) as db, db.begin():
        _seed(db, definitions)
    with Session(engine) as db:
        outcomes = practice_outcomes(db, fhir_base=BASE, practice=PRACTICE)
    text = json.dumps([asdict(o) for o in outcomes])
    for patient in [*SEEDED, "fenna"]:
        assert patient not in text
    assert all(set(asdict(o)) == set(asdict(outcomes[0])) for o in outcomes)
    assert {type(v) for o in outcomes for k, v in asdict(o).items() if k not in (
        "questionnaire", "link_id")} == {int}  # fmt: skip


def test_a_practice_without_scores_counts_zero(engine):
    with Session(engine) as db:
        outcomes = practice_outcomes(db, fhir_base=BASE, practice=PRACTICE)
    assert [o.questionnaire for o in outcomes] == ["phq-9", "gad-7", "who-5"]
    assert all(o.clients == 0 for o in outcomes)


@pytest.mark.parametrize(
    ("count", "shown"), [(0, "0"), (1, "< 5"), (4, "< 5"), (5, "5"), (12, "12")]
)
def test_small_counts_are_shown_as_fewer_than_five(count, shown):
    assert shown_count(count) == shown
