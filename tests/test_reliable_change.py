"""The Jacobson-Truax reliable change index: the formula, its boundaries, and that every score
in the table of published figures is a calculated item of the questionnaire we ship.
Recovery and reliable recovery are in test_clinical_change.py; the figures' sources in
test_change_figures.py."""

from __future__ import annotations

import math

import pytest

from fhir_burnout.questionnaire import QuestionnaireError, ReliableChange, reliable_change
from fhir_burnout.questionnaire._change_figures import FIGURES

BASE = "https://fhir-burnout.org/fhir/Questionnaire/"
PHQ9, GAD7, WHO5, CBI = (BASE + q for q in ("phq-9", "gad-7", "who-5", "cbi"))
CALCULATED = (
    "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression"
)


def test_phq9_index_matches_a_hand_computed_example():
    # NHS Talking Therapies: 6 points is reliable. S_diff = 6 / 1.96 = 3.06122;
    # 18 -> 8 is -10 / 3.06122 = -3.2667.
    change = reliable_change(PHQ9, "phq9-total", 18, 8)
    assert change == ReliableChange(
        index=pytest.approx(-3.2667, abs=1e-4),
        verdict="improved",
        threshold=6,
    )


def test_gad7_index_matches_a_hand_computed_example():
    # NHS Talking Therapies: 4 points is reliable. S_diff = 4 / 1.96 = 2.04082;
    # 6 -> 11 is +5 / 2.04082 = +2.45.
    change = reliable_change(GAD7, "gad7-total", 6, 11)
    assert change == ReliableChange(
        index=pytest.approx(2.45, abs=1e-4), verdict="worse", threshold=4
    )


def test_who5_percentage_threshold_is_four_times_the_raw_threshold():
    raw = reliable_change(WHO5, "who5-raw", 10, 10)
    percentage = reliable_change(WHO5, "who5-percentage", 40, 40)
    assert raw and percentage
    # alpha 0.87, raw SD 5.26: 1.96 * sqrt(2) * 5.26 * sqrt(0.13)
    # = 2.771859 * 5.26 * 0.360555 = 5.2569 points
    assert raw.threshold == pytest.approx(5.2569, abs=1e-4)
    assert percentage.threshold == pytest.approx(4 * raw.threshold)
    assert percentage.threshold == pytest.approx(21.0275, abs=1e-4)  # 4 x 5.2569, rounded
    assert raw.verdict == percentage.verdict == "no-change" and raw.index == 0


def _threshold(url: str, link_id: str) -> float:
    change = reliable_change(url, link_id, 0, 0)
    assert change is not None
    return change.threshold


@pytest.mark.parametrize(
    ("url", "link_id", "start", "step", "verdict"),
    [
        # higher is worse: a fall is an improvement, a rise is a worsening
        (PHQ9, "phq9-total", 20, -1, "improved"),
        (PHQ9, "phq9-total", 4, +1, "worse"),
        (GAD7, "gad7-total", 15, -1, "improved"),
        (GAD7, "gad7-total", 2, +1, "worse"),
        # higher is better: a rise is an improvement, a fall is a worsening
        (WHO5, "who5-percentage", 28, +1, "improved"),
        (WHO5, "who5-percentage", 80, -1, "worse"),
        (WHO5, "who5-raw", 20, -1, "worse"),
    ],
)
def test_verdict_changes_just_past_the_threshold(url, link_id, start, step, verdict):
    threshold = _threshold(url, link_id)
    under = reliable_change(url, link_id, start, start + step * (threshold - 0.01))
    over = reliable_change(url, link_id, start, start + step * (threshold + 0.01))
    assert under and over
    assert under.verdict == "no-change" and abs(under.index) < 1.96
    assert over.verdict == verdict and abs(over.index) > 1.96
    assert math.copysign(1, over.index) == step  # the index keeps the score's sign


def test_whole_points_of_phq9_and_gad7_around_their_thresholds():
    # PHQ-9 threshold 6: a fall of 5 points is not reliable, one of exactly 6 is.
    assert reliable_change(PHQ9, "phq9-total", 15, 10).verdict == "no-change"
    assert reliable_change(PHQ9, "phq9-total", 15, 9).verdict == "improved"
    assert reliable_change(PHQ9, "phq9-total", 4, 10).verdict == "worse"
    # GAD-7 threshold 4: a rise of 3 points is not reliable, one of exactly 4 is.
    assert reliable_change(GAD7, "gad7-total", 5, 8).verdict == "no-change"
    assert reliable_change(GAD7, "gad7-total", 5, 9).verdict == "worse"
    assert reliable_change(GAD7, "gad7-total", 12, 8).verdict == "improved"


def test_a_mean_score_just_short_of_the_threshold_by_rounding_still_counts():
    # A score summed from floats: 15 -> 2.7 * 3 + 0.9 is a fall of 5.999999999999998.
    assert reliable_change(PHQ9, "phq9-total", 15, 2.7 * 3 + 0.9).verdict == "improved"


@pytest.mark.parametrize(
    ("url", "link_id"),
    [
        (BASE + "weekly-checkin", "phq9-total"),  # our own check-in has no published figures
        (CBI, "cbi-personal-score"),  # no CBI figures found with a source we can name
        (PHQ9, "phq9-1"),  # an item, not the score
        ("https://example.org/fhir/Questionnaire/unknown", "phq9-total"),
        ("not a url", "phq9-total"),
        ("", "phq9-total"),
    ],
)
def test_unknown_questionnaire_or_score_gives_none(url, link_id):
    assert reliable_change(url, link_id, 10, 20) is None


def test_versioned_canonical_gives_the_same_answer():
    plain = reliable_change(PHQ9, "phq9-total", 20, 10)
    assert plain is not None
    assert reliable_change(PHQ9 + "|0.4.0", "phq9-total", 20, 10) == plain
    assert reliable_change(PHQ9 + "|2.0.0-beta", "phq9-total", 20, 10) == plain


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_score_that_is_not_a_number_is_refused(bad):
    with pytest.raises(QuestionnaireError, match="phq9-total"):
        reliable_change(PHQ9, "phq9-total", bad, 10)
    with pytest.raises(QuestionnaireError, match="after score"):
        reliable_change(PHQ9, "phq9-total", 10, bad)


def _items(items):
    for item in items:
        yield item
        yield from _items(item.get("item", []))


def test_every_score_in_the_table_is_a_numeric_calculated_item_we_ship(resources, programme):
    by_url = {r["url"]: r for r in resources if r["resourceType"] == "Questionnaire"}
    assert FIGURES
    for row in FIGURES:
        url = programme.url("Questionnaire", row.questionnaire)
        assert url in by_url, f"{row.questionnaire}: no shipped Questionnaire at {url}"
        items = {i["linkId"]: i for i in _items(by_url[url].get("item", []))}
        item = items.get(row.link_id)
        assert item is not None, f"{row.questionnaire}: no item {row.link_id}"
        assert item["type"] in ("decimal", "integer"), f"{row.link_id} is {item['type']}"
        assert any(e.get("url") == CALCULATED for e in item.get("extension", [])), (
            f"{row.link_id} has no calculatedExpression"
        )
        # and the canonical the app stores (url|version) finds it
        versioned = f"{url}|{by_url[url]['version']}"
        assert reliable_change(versioned, row.link_id, 0, 0) is not None


def test_every_row_names_its_sources_and_plausible_figures():
    for row in FIGURES:
        assert 0 < row.r < 1
        # a threshold is either published or computed from an SD, never both or neither
        assert (row.sd is None) != (row.published_threshold is None), row.link_id
        assert row.threshold > 0
        for source in (row.threshold_source, row.cutoff_source):
            assert len(source) > 40 and any(ch.isdigit() for ch in source)
