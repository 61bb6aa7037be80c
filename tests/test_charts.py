"""The progress page's charts as values (web/_charts.py): readings spaced by date, the y
axis on the measure's own range, ticks that never crowd, bands that meet, numbers in the
page's language."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

import pytest

from fhir_burnout.web._charts import Band, Reading, Scale, draw, number

DAY = date(2026, 9, 1)


def test_readings_are_spaced_by_date_not_by_order():
    days = (0, 1, 2, 9)
    chart = draw([Reading(DAY + timedelta(days=d), 5) for d in days], Scale(0, 10), lang="nl")
    xs = [dot.x for dot in chart.dots]
    for d, x in zip(days, xs, strict=True):
        assert (x - xs[0]) / (xs[-1] - xs[0]) == pytest.approx(d / 9, abs=0.01)


@pytest.mark.parametrize(
    ("value", "scale", "height"),
    [
        (40, Scale(0, 100), 0.4),
        (10, Scale(0, 25), 0.4),
        (27, Scale(0, 27), 1.0),
        (0, Scale(0, 27), 0),
    ],
)
def test_a_value_stands_at_its_share_of_the_measures_own_range(value, scale, height):
    chart = draw([Reading(DAY, value)], scale, lang="nl")
    [dot] = chart.dots
    assert (chart.bottom - dot.y) / (chart.bottom - chart.top) == pytest.approx(height, abs=0.01)


def test_the_y_axis_labels_its_ends_and_round_steps_between():
    ticks = draw([Reading(DAY, 3)], Scale(0, 27), lang="nl").y_ticks
    assert [t.label for t in ticks] == ["0", "5", "10", "15", "20", "27"]
    named = draw([Reading(DAY, 1)], Scale(0, 2, ("Slecht", "Redelijk", "Goed")), lang="nl")
    assert [t.label for t in named.y_ticks] == ["Slecht", "Redelijk", "Goed"]


@pytest.mark.parametrize("span", [1, 5, 7, 10, 29, 35, 180])
def test_the_time_axis_has_at_most_five_dates_that_never_crowd(span):
    readings = [Reading(DAY, 1), Reading(DAY + timedelta(days=span), 2)]
    ticks = draw(readings, Scale(0, 10), lang="nl").x_ticks
    assert 2 <= len(ticks) <= 5
    gaps = [b.at - a.at for a, b in itertools.pairwise(ticks)]
    assert min(gaps) >= 0.6 * max(gaps)
    assert ticks[0].label == "1 sep" and ticks[-1].at == max(d.x for d in draw(
        readings, Scale(0, 10), lang="nl").dots)  # fmt: skip


def test_bands_meet_and_cover_the_range():
    bands = [Band(0, 28, "erg laag"), Band(29, 50, "laag"), Band(51, None, "voldoende")]
    chart = draw([Reading(DAY, 40)], Scale(0, 100), lang="nl", bands=bands)
    stripes = sorted(chart.stripes, key=lambda s: -s.y)
    assert stripes[0].y + stripes[0].height == pytest.approx(chart.bottom)
    for lower, upper in itertools.pairwise(stripes):
        assert upper.y + upper.height == pytest.approx(lower.y, abs=0.2)
    assert stripes[-1].y == chart.top
    assert [s.range for s in stripes] == ["0\N{EN DASH}28", "29\N{EN DASH}50", "51\N{EN DASH}100"]


def test_a_pair_is_drawn_without_a_line_through_time():
    chart = draw([Reading(DAY, 7, 4), Reading(DAY + timedelta(days=7), 6, 3)], Scale(0, 10),
                 lang="nl")  # fmt: skip
    assert chart.pairs and chart.line == ""
    assert all(d.after_y is not None and d.after_y > d.y for d in chart.dots)


@pytest.mark.parametrize(("lang", "comma"), [("nl", ","), ("en", ".")])
def test_numbers_are_written_as_the_language_writes_them(lang, comma):
    assert number(6.5, lang) == f"6{comma}5"
    assert number(58.3333, lang) == f"58{comma}3"  # one decimal at most
    assert number(40.0, lang) == "40"
