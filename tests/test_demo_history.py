"""The demo's seeded clients have weeks behind them (issue 20, point 8): after the demo's
enrolment the progress pages have lines to draw, a reliable change to tell and diaries with
days in them, all dated in the past and queued for the EHR as a real history would be."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from fhir_burnout import demo
from fhir_burnout._demo_history import HISTORIES
from fhir_burnout.workflow import (
    Definitions,
    EnrolmentRow,
    NoteRow,
    ResponseRow,
    partition,
    patient_overview,
)

EHR = "https://ehr.example/fhir"
TODAY = date(2026, 12, 7)


@pytest.fixture
def enrolled(engine, resources):
    """The demo's clients enrolled on a fixed day; (engine, definitions, printed lines)."""
    definitions = Definitions.from_resources(resources)
    lines = demo.enrol_demo_patients(engine, definitions, EHR, {"pat-04": "Daan"}, today=TODAY)
    return engine, definitions, lines


def _responses(db, patient, questionnaire=""):
    """A client's responses, oldest first: to one questionnaire, or (``""``) all."""
    enrolment = db.scalar(select(EnrolmentRow.key).where(EnrolmentRow.patient == patient))
    rows = db.scalars(
        select(ResponseRow)
        .where(ResponseRow.enrolment_key == enrolment)
        .order_by(ResponseRow.authored)
    ).all()
    return [r for r in rows if not questionnaire or f"/{questionnaire}|" in r.questionnaire]


def _answers(resource):
    """linkId -> first answer value, depth first, of a QuestionnaireResponse (or an entry)."""
    found = {}
    for item in resource.get("item", []):
        for answer in item.get("answer", []):
            found.setdefault(item["linkId"], next(iter(answer.values())))
        for key, value in _answers(item).items():
            found.setdefault(key, value)
    return found


def _day(row):
    return row.authored.date()


def test_daan_has_seven_weeks_of_weekly_check_ins_that_improve_unevenly(enrolled):
    engine, _, lines = enrolled
    assert "pat-04 (Daan): standard, 7 week(s) in, 5 module(s) done, 20 questionnaire(s)" in (
        "\n".join(lines)
    )
    with Session(engine) as db:
        checkins = _responses(db, "pat-04", "weekly-checkin")
    days = [_day(r) for r in checkins]
    assert len(checkins) >= 6
    assert days[-1] - days[0] >= timedelta(weeks=5)
    assert len(set(days)) == len(days)  # one a week, not several on one day
    assert all(r.authored.replace(tzinfo=UTC) < datetime.now(UTC) for r in checkins)
    energy = [_answers(json.loads(r.resource))["checkin-energy"] for r in checkins]
    tension = [_answers(json.loads(r.resource))["checkin-tension"] for r in checkins]
    assert energy[-1] > energy[0] and tension[-1] < tension[0]  # better, slowly
    steps = {b - a for a, b in pairwise(energy)}
    assert len(steps) > 1 and min(steps) < 0  # not a straight line: a dip on the way


def test_daan_improved_reliably_on_a_questionnaire_from_the_start_to_the_end_of_phase_1(
    enrolled,
):
    engine, definitions, _ = enrolled
    with Session(engine) as db:
        overview = patient_overview(db, definitions, fhir_base=EHR, patient="pat-04")
    changes = {s.link_id: s.change for s in overview.scores if len(s.points) > 1}
    assert {"phq9-total", "gad7-total", "who5-raw"} <= set(changes)
    assert changes["phq9-total"].verdict == "improved"
    assert any(c is not None and c.verdict == "improved" for c in changes.values())
    phq9 = next(s for s in overview.scores if s.link_id == "phq9-total")
    assert phq9.points[-1].authored - phq9.points[0].authored >= timedelta(weeks=4)


def test_daan_s_diaries_and_look_backs_have_entries_over_several_days(enrolled):
    engine, _, _ = enrolled
    with Session(engine) as db:
        logs = _responses(db, "pat-04", "tension-log")
        diary = _responses(db, "pat-04", "energy-diary")
        look_backs = _responses(db, "pat-04", "exercise-reflection")
        notes = db.scalars(select(NoteRow.text)).all()
    moments = [
        entry
        for log in logs
        for item in json.loads(log.resource)["item"]
        if item["linkId"] == "tension-moment"
        for entry in [_answers({"item": item["item"]})]
    ]
    assert len({m["tension-datetime"][:10] for m in moments}) >= 5
    assert any("tension-after" in m for m in moments)  # an exercise helped, and how much
    assert len({_answers(json.loads(r.resource))["energy-date"] for r in diary}) >= 3
    pairs = [_answers(json.loads(r.resource)) for r in look_backs]
    assert len(pairs) >= 4
    assert all(p["reflection-tension-after"] < p["reflection-tension-before"] for p in pairs)
    assert len({_day(r) for r in look_backs}) == len(look_backs)
    assert any("ademhalingsoefening" in n for n in notes)  # the care professional's note


def test_the_history_is_queued_for_the_ehr_with_its_own_dates(enrolled):
    """Stored through the workflow, so the outbox sends every answer to the EHR too."""
    engine, _, _ = enrolled
    with Session(engine) as db:
        sent = _responses(db, "pat-04")
        payloads = db.execute(
            text("select payload from outbox_entry where partition = :p"),
            {"p": partition(EHR, "pat-04")},
        ).scalars()
        entries = [json.loads(payload) for payload in payloads]
    queued = [
        op["resource"]
        for entry in entries
        for op in entry["operations"]
        if op.get("resource", {}).get("resourceType") == "QuestionnaireResponse"
    ]
    assert len(queued) == len(sent) >= 26
    authored = sorted(r["authored"][:10] for r in queued)
    assert authored[0] == "2026-10-19" and authored[-1] < TODAY.isoformat()
    # Each write's Provenance is recorded when it happened, not when the demo started.
    recorded = sorted(entry["recorded"][:10] for entry in entries)
    assert recorded[0] == "2026-10-19" and recorded[-1] < TODAY.isoformat()


def test_anna_and_cato_have_a_shorter_history_fitting_where_they_are(enrolled):
    engine, _, lines = enrolled
    with Session(engine) as db:
        anna = _responses(db, "pat-01", "weekly-checkin")
        cato = _responses(db, "pat-03", "weekly-checkin")
        cato_diary = _responses(db, "pat-03", "energy-diary")
    assert len(anna) == 2 and _day(anna[-1]) - _day(anna[0]) == timedelta(days=7)
    assert len(cato) == 4 and len(cato_diary) == 3
    assert lines[0].startswith("pat-01: standard, 1 week(s) in, 1 module(s) done")
    assert lines[2].startswith("pat-03: after-care, 3 week(s) in, 2 module(s) done")


def test_every_history_is_in_time_order_and_before_the_demo_s_day():
    for history in HISTORIES:
        times = [(e.day, e.hour) for e in history.events]
        assert times == sorted(times), history.patient
        assert all(0 <= day < history.days_ago for day, _ in times), history.patient
