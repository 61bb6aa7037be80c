""" "Sinds de vorige sessie" (issue 21, point 1) on SQLite and PostgreSQL: a client with eight
weeks of fixed history (tests/session_history.py), and the summary's figures (changes,
bands, reliable and clinically significant change, the check-in's trend, look-backs,
homework in the client's words) checked against values worked out by hand here.

The figures (questionnaire/_change_figures.py, docs/reliable-change.md): PHQ-9 reliable
change 6 points, case at 10 or more; GAD-7 4 points, case at 8 or more (NHS Talking
Therapies); WHO-5 (0-100) a case at 50 or less (Topp et al. 2015), reliable change
1.96 x sqrt(2) x SD x sqrt(1 - r) with r = 0.87 and SD = 4 x 5.26 (Saipanish et al. 2009).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from fhir_burnout.sync import OutboxEntry
from fhir_burnout.workflow import (
    Definitions,
    VisitRow,
    enrol,
    last_visit,
    patient_overview,
    queue_summary_document,
    record_visit,
    session_summary,
    switch_track,
)

from .practitioners import PHQ9_ITEMS, submit
from .session_history import day_of, seed

EHR = "https://ehr.example/fhir"
TODAY = date(2026, 12, 7)
NOW = datetime(2026, 12, 7, 9, tzinfo=UTC)


@pytest.fixture(scope="module")
def definitions(resources):
    return Definitions.from_resources(resources)


def forms_of(definitions):
    from fhir_burnout.questionnaire import load_form  # noqa: PLC0415 - only here

    made = {}

    def forms(canonical, lang):
        if (canonical, lang) not in made:
            made[canonical, lang] = load_form(definitions.by_canonical[canonical], lang=lang)
        return made[canonical, lang]

    return forms


def summary_of(engine, definitions, patient, since, lang="nl"):
    with Session(engine) as db:
        overview = patient_overview(db, definitions, fhir_base=EHR, patient=patient, lang=lang)
        return session_summary(db, definitions, overview, since=since, lang=lang,
                               forms=forms_of(definitions), now=NOW)  # fmt: skip


@pytest.fixture
def eight_weeks(engine, definitions):
    with Session(engine) as db, db.begin():
        key, since = seed(db, definitions, fhir_base=EHR, patient="p8", today=TODAY)
    return key, since


def test_the_measures_change_from_the_first_score_as_worked_out_by_hand(
    engine, definitions, eight_weeks
):
    _, since = eight_weeks
    summary = summary_of(engine, definitions, "p8", since)
    measures = {m.link_id: m for m in summary.measures}
    # Only the banded scores: the WHO-5's 0-100, not also its raw 0-25; the CBI's parts.
    assert set(measures) == {
        "phq9-total", "gad7-total", "who5-percentage",
        "cbi-personal-score", "cbi-work-score",
    }  # fmt: skip

    # PHQ-9: 2+2+2+3+2+2+2+2+0 = 17 (15-19: moderately severe), then 8 x 1 + 0 = 8 (5-9:
    # mild). 8 - 17 = -9, at least the 6 points of reliable change: reliably improved.
    # A case at the start (17 >= 10), not at the end (8 < 10): recovered, and reliably.
    phq9 = measures["phq9-total"]
    assert (phq9.first.value, phq9.last.value) == (17, 8)
    assert (phq9.first.band, phq9.last.band) == ("moderately-severe", "mild")
    change = phq9.change
    assert change.reliable.verdict == "improved" and change.reliable.threshold == 6
    assert (change.case_before, change.case_after, change.cutoff) == (True, False, 10)
    assert change.recovered is True and change.reliably_recovered is True
    assert change.reliably_deteriorated is False

    # GAD-7: 2x6 + 1 = 13 (10-14: moderate), then 2+2+1+2+1+1+1 = 10 (moderate). 10 - 13 =
    # -3, short of the 4 points: no reliable change. Still a case at the end (10 >= 8).
    gad7 = measures["gad7-total"]
    assert (gad7.first.value, gad7.last.value) == (13, 10)
    assert (gad7.first.band, gad7.last.band) == ("moderate", "moderate")
    assert gad7.change.reliable.verdict == "no-change" and gad7.change.reliable.threshold == 4
    assert (gad7.change.case_before, gad7.change.case_after) == (True, True)
    assert gad7.change.recovered is False and gad7.change.reliably_recovered is False

    # WHO-5: raw 1+1+2+1+1 = 6, x 4 = 24 % (0-28: very low); then 2+3+2+2+3 = 12 = 48 %
    # (29-50: low). 48 - 24 = +24. Threshold 1.96 x sqrt(2) x 21.04 x sqrt(0.13) = 21.03:
    # reliably improved. But 48 <= 50 is still a case: not recovered.
    who5 = measures["who5-percentage"]
    assert (who5.first.value, who5.last.value) == (24, 48)
    assert (who5.first.band, who5.last.band) == ("very-low", "low")
    threshold = 1.96 * math.sqrt(2) * 21.04 * math.sqrt(1 - 0.87)
    assert round(threshold, 2) == 21.03
    assert who5.change.reliable.threshold == pytest.approx(threshold)
    assert who5.change.reliable.verdict == "improved"
    assert who5.change.recovered is False and who5.change.case_after is True

    # The CBI: one score, and no published figures: no change to tell.
    assert measures["cbi-personal-score"].change is None
    assert len(measures["cbi-personal-score"].points) == 1

    # New in the period: the three end-of-phase scores (day 51), not the CBI (day 0).
    assert {m.link_id for m in summary.new_measures} == {
        "phq9-total",
        "gad7-total",
        "who5-percentage",
    }


def test_a_client_who_was_no_case_at_the_start_has_no_recovery_but_can_deteriorate(
    engine, definitions
):
    """PHQ-9 5 (no case) -> 12: +7, past 6: reliably deteriorated; recovery: not
    applicable (None), never "recovered"."""
    start = NOW - timedelta(days=30)
    with Session(engine) as db, db.begin():
        waiting = enrol(db, definitions, fhir_base=EHR, patient="p9", track="waiting-list",
                        now=start)  # fmt: skip
        first = next(t.key for t in waiting.tasks if t.action_id == "phq-9.start")
        submit(db, definitions, first, {**dict.fromkeys(PHQ9_ITEMS, 0), "phq9-1": 2,
               "phq9-2": 2, "phq9-3": 1}, patient="p9", now=start)  # fmt: skip
        standard = switch_track(db, definitions, waiting.key, "standard", by="Practitioner/x",
                                now=start + timedelta(days=20))  # fmt: skip
        again = next(t.key for t in standard.tasks if t.action_id == "phq-9.start")
        submit(db, definitions, again, {**dict.fromkeys(PHQ9_ITEMS, 1), "phq9-9": 0,
               "phq9-1": 3, "phq9-2": 3}, patient="p9", now=NOW - timedelta(days=1))  # fmt: skip
    summary = summary_of(engine, definitions, "p9", NOW - timedelta(days=7))
    [phq9] = [m for m in summary.measures if m.link_id == "phq9-total"]
    # 2 + 2 + 1 = 5; then 3 + 3 + 1 x 6 = 12.
    assert (phq9.first.value, phq9.last.value) == (5, 12)
    assert phq9.change.reliable.verdict == "worse" and phq9.change.reliably_deteriorated
    assert phq9.change.case_before is False and phq9.change.recovered is None
    assert phq9.change.reliably_recovered is None


def test_the_period_holds_the_check_ins_look_backs_modules_and_homework_since_the_session(
    engine, definitions, eight_weeks
):
    _, since = eight_weeks
    summary = summary_of(engine, definitions, "p8", since)
    assert summary.since == since and not summary.quiet
    # The trend: all eight check-ins (days 0, 7, ..., 49); two in the period (42, 49).
    assert [c.energy for c in summary.checkins] == [2, 3, 3, 2, 4, 4, 5, 6]
    assert [c.tension for c in summary.checkins] == [8, 7, 7, 8, 6, 6, 5, 4]
    assert summary.sleep_names == ("Heel slecht", "Slecht", "Redelijk", "Goed")
    assert [c.sleep_label for c in summary.checkins_since] == ["Redelijk", "Goed"]
    before = summary.checkin_before  # day 35: what the period is compared with
    assert (before.energy, before.sleep_label, before.tension) == (4, "Slecht", 6)
    assert [c.went_well for c in summary.checkins_since] == [
        "Ik zei nee tegen een extra klus.",
        "Met een vriend koffie gedronken.",
    ]
    # Look-backs in the period only (not those of days 5 and 12), before -> after.
    assert [(b.exercise, b.before, b.after, b.noticed) for b in summary.look_backs] == [
        ("paced-breathing", 7, 4, "Mijn schouders werden zachter."),
        ("mindful-walk", 6, 3, "Even niet gepiekerd."),
    ]
    # Modules finished in the period: days 45 and 50.
    assert [m.completed_at.date() for m in summary.modules_done] == [
        day_of(TODAY, 45),
        day_of(TODAY, 50),
    ]
    # Homework: the energy diary of day 43, the client's own words marked as theirs, its
    # day written as a date (never the ISO text the response keeps).
    [diary] = summary.homework
    assert diary.questionnaire == "energy-diary"
    own = [a.answer for a in diary.own_words]
    assert own == ["Werkmail lezen", "Wandelen met de hond", "Na het wandelen sliep ik beter."]
    day = day_of(TODAY, 43)
    assert f"{day.day}-{day.month}-{day.year}" in [a.answer for a in diary.answers]
    assert day.isoformat() not in json.dumps([a.answer for a in diary.answers])
    # The two parts of the day are two entries of the diary's repeating group.
    assert sorted({a.entry for a in diary.answers if a.link_id == "energy-activity"}) == [1, 2]


def test_a_period_with_nothing_in_it_is_quiet_but_keeps_the_trend(
    engine, definitions, eight_weeks
):
    summary = summary_of(engine, definitions, "p8", NOW - timedelta(hours=1))
    assert summary.quiet and summary.checkins and not summary.homework
    assert summary.new_measures == () and len(summary.measures) == 5


def test_the_last_visit_is_the_first_look_of_an_earlier_day_and_only_two_days_are_kept(engine):
    who = {"fhir_base": EHR, "patient": "p1", "practitioner": "Practitioner/prac-1"}
    monday = datetime(2026, 12, 7, 8, 55, tzinfo=UTC)
    with Session(engine) as db, db.begin():
        assert last_visit(db, now=monday, **who) is None
        for moment in (monday, monday + timedelta(hours=2)):  # before and after a session
            record_visit(db, now=moment, **who)
    with Session(engine) as db, db.begin():
        assert last_visit(db, now=monday + timedelta(hours=3), **who) is None  # same day
        # Next week: since Monday's first look, when the last session was prepared.
        assert last_visit(db, now=monday + timedelta(days=7), **who) == monday
        record_visit(db, now=monday + timedelta(days=7), **who)
        record_visit(db, now=monday + timedelta(days=14), **who)
        days = db.scalars(select(VisitRow.day).order_by(VisitRow.day)).all()
    assert days == ["2026-12-14", "2026-12-21"]
    with Session(engine) as db:  # another care professional's looks are their own
        other = {**who, "practitioner": "Practitioner/prac-2"}
        assert last_visit(db, now=monday + timedelta(days=30), **other) is None


def test_the_summary_goes_to_the_ehr_as_one_document_reference_through_the_outbox(
    engine, definitions, eight_weeks
):
    key, since = eight_weeks
    html = "<!doctype html><title>x</title><p>Sinds de vorige sessie</p>"
    with Session(engine) as db, db.begin():
        queue_summary_document(
            db, key, html=html, title="Samenvatting", lang="nl", since=since, until=NOW,
            by="Practitioner/prac-1", now=NOW,
        )  # fmt: skip
    with Session(engine) as db:
        [entry] = db.scalars(select(OutboxEntry).where(OutboxEntry.kind == "session-summary"))
        [operation] = json.loads(entry.payload)["operations"]
    document = operation["resource"]
    assert document["resourceType"] == "DocumentReference"
    assert document["status"] == "current" and document["docStatus"] == "final"
    assert document["type"]["coding"][0]["code"] == "11506-3"
    assert document["subject"] == {"reference": "Patient/p8"}
    assert document["author"] == [{"reference": "Practitioner/prac-1"}]
    assert document["context"]["related"] == [{"reference": f"urn:uuid:{key}"}]
    assert document["context"]["period"]["start"] == since.isoformat(timespec="seconds")
    attachment = document["content"][0]["attachment"]
    body = base64.b64decode(attachment["data"])
    assert body.decode() == html and attachment["size"] == len(body)
    assert attachment["hash"] == base64.b64encode(hashlib.sha1(body).digest()).decode()
    assert attachment["contentType"] == "text/html" and attachment["language"] == "nl"
