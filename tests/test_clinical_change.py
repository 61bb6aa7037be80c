"""Recovery, reliable recovery and reliable deterioration as NHS Talking Therapies defines
them, per instrument, with every expected value worked out by hand in the test."""

from __future__ import annotations

import math

import pytest

from fhir_burnout.questionnaire import ClinicalChange, QuestionnaireError, clinical_change

BASE = "https://fhir-burnout.org/fhir/Questionnaire/"
PHQ9, GAD7, WHO5 = (BASE + q for q in ("phq-9", "gad-7", "who-5"))


def _change(url: str, link_id: str, first: float, last: float) -> ClinicalChange:
    change = clinical_change(url, link_id, first, last)
    assert change is not None
    return change


def test_phq9_from_case_to_no_case_by_a_reliable_fall_is_reliable_recovery():
    # 18 >= 10: a case; 8 < 10: not a case -> recovered.
    # 18 -> 8 is a fall of 10 >= 6 -> reliable improvement; index -10 / (6 / 1.96) = -3.2667.
    change = _change(PHQ9, "phq9-total", 18, 8)
    assert change.case_before and not change.case_after
    assert change.recovered is True and change.reliably_recovered is True
    assert change.reliable.verdict == "improved" and not change.reliably_deteriorated
    assert change.reliable.index == pytest.approx(-3.2667, abs=1e-4)
    assert change.cutoff == 10


def test_phq9_recovered_without_a_reliable_change_is_not_reliable_recovery():
    # 12 -> 8: a case, then not (recovered); a fall of 4 < 6 is within measurement error.
    change = _change(PHQ9, "phq9-total", 12, 8)
    assert change.recovered is True and change.reliably_recovered is False
    assert change.reliable.verdict == "no-change"


def test_phq9_reliable_improvement_that_stays_a_case_is_not_recovery():
    # 22 -> 14: a fall of 8 >= 6 is reliable, but 14 >= 10 is still a case.
    change = _change(PHQ9, "phq9-total", 22, 14)
    assert change.reliable.verdict == "improved"
    assert change.case_before and change.case_after
    assert change.recovered is False and change.reliably_recovered is False


def test_a_client_not_a_case_at_the_start_is_not_counted_as_recovered():
    # 6 < 10 at the start: recovery does not apply, whatever happens after.
    # 6 -> 13 is a rise of 7 >= 6: reliable deterioration, and now a case.
    worse = _change(PHQ9, "phq9-total", 6, 13)
    assert not worse.case_before and worse.case_after
    assert worse.recovered is None and worse.reliably_recovered is None
    assert worse.reliably_deteriorated and worse.reliable.verdict == "worse"
    # 9 -> 2: a fall of 7 is a reliable improvement, but not a recovery (never a case).
    better = _change(PHQ9, "phq9-total", 9, 2)
    assert better.reliable.verdict == "improved"
    assert better.recovered is None and better.reliably_recovered is None


def test_phq9_the_cutoff_itself_is_a_case():
    # NHS Talking Therapies: 10 or more is a case; 16 -> 10 (a fall of 6) stays a case.
    change = _change(PHQ9, "phq9-total", 16, 10)
    assert change.case_after and change.recovered is False
    assert change.reliable.verdict == "improved"  # exactly 6 is reliable


@pytest.mark.parametrize(
    ("first", "last", "recovered", "reliably", "verdict"),
    [
        (11, 7, True, True, "improved"),  # 11 >= 8 case, 7 < 8 not; fall 4 >= 4
        (9, 6, True, False, "no-change"),  # case -> not; fall 3 < 4
        (8, 4, True, True, "improved"),  # 8 is a case (>= 8); fall 4
        (7, 3, None, None, "improved"),  # 7 < 8: never a case; fall 4 reliable
        (10, 14, False, False, "worse"),  # rise 4: reliable deterioration
    ],
)
def test_gad7_recovery_with_caseness_8_and_threshold_4(first, last, recovered, reliably, verdict):
    change = _change(GAD7, "gad7-total", first, last)
    assert change.recovered is recovered
    assert change.reliably_recovered is reliably
    assert change.reliable.verdict == verdict
    assert change.reliably_deteriorated is (verdict == "worse")
    assert change.cutoff == 8


def test_who5_higher_is_better_case_at_or_below_50():
    # Threshold 1.96 * sqrt(2) * 21.04 * sqrt(1 - 0.87) = 21.0275 points.
    # 28 -> 52: 28 <= 50 a case, 52 > 50 not; a rise of 24 >= 21.03 -> reliable recovery.
    change = _change(WHO5, "who5-percentage", 28, 52)
    assert change.case_before and not change.case_after
    assert change.recovered is True and change.reliably_recovered is True
    assert change.reliable.verdict == "improved"
    assert change.reliable.index == pytest.approx(24 / (21.0275 / 1.96), abs=1e-3)
    # 40 -> 56: recovered, but a rise of 16 < 21.03 is not reliable.
    partly = _change(WHO5, "who5-percentage", 40, 56)
    assert partly.recovered is True and partly.reliably_recovered is False
    # 50 is still a case (at or below the cut-off): 36 -> 50 is not a recovery.
    assert _change(WHO5, "who5-percentage", 36, 50).recovered is False
    # 60 -> 36: not a case at the start; a fall of 24 is reliable deterioration.
    worse = _change(WHO5, "who5-percentage", 60, 36)
    assert worse.recovered is None and worse.reliably_deteriorated and worse.case_after


def test_who5_raw_score_agrees_with_the_percentage():
    # Raw 12 (= 48%) is a case, raw 13 (= 52%) is not; threshold 21.0275 / 4 = 5.2569.
    for raw_first, raw_last in [(7, 13), (12, 13), (13, 12), (10, 16), (20, 14)]:
        raw = _change(WHO5, "who5-raw", raw_first, raw_last)
        percentage = _change(WHO5, "who5-percentage", 4 * raw_first, 4 * raw_last)
        assert raw.case_before == percentage.case_before
        assert raw.case_after == percentage.case_after
        assert raw.recovered == percentage.recovered
        assert raw.reliable.verdict == percentage.reliable.verdict
    assert _change(WHO5, "who5-raw", 7, 13).reliably_recovered is True  # rise 6 >= 5.26


@pytest.mark.parametrize(
    ("url", "link_id"),
    [(BASE + "weekly-checkin", "energy"), (BASE + "cbi", "cbi-work-score"), ("", "phq9-total")],
)
def test_a_score_without_figures_has_no_clinical_change(url, link_id):
    assert clinical_change(url, link_id, 10, 20) is None


def test_a_versioned_canonical_and_a_bad_score():
    assert clinical_change(PHQ9 + "|0.4.0", "phq9-total", 18, 8) == clinical_change(
        PHQ9, "phq9-total", 18, 8
    )
    with pytest.raises(QuestionnaireError, match="after score"):
        clinical_change(PHQ9, "phq9-total", 18, math.nan)
