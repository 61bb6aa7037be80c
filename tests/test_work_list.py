"""The practice's work list (``workflow.work_list``): which rows each filter shows and how
each column sorts, on rows made by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from fhir_burnout.workflow import FILTERS, SORTS, PracticeRow, work_list


def _row(patient, *, track="Tijdens de behandeling", phase=None, day=1, stuck=False,
         alerts=0, urgent=0, waiting=None, status="active"):  # fmt: skip
    return PracticeRow(
        enrolment=f"e-{patient}", patient=patient, track="standard", track_title=track,
        status=status, phase=phase, last_activity=datetime(2026, 10, day, 9, tzinfo=UTC),
        stuck=stuck, safety_alerts=alerts, alert_since=None, urgent_alerts=urgent,
        waiting_since=waiting,
    )  # fmt: skip


ROWS = (
    _row("p-urgent", alerts=2, urgent=1, day=5, phase="Fase 2"),
    _row("p-stuck", stuck=True, day=1, phase="Fase 1"),
    _row("p-waiting", track="Op de wachtlijst", waiting=date(2026, 9, 20), day=3),
    _row("p-paused", status="on-hold", day=2, phase="Fase 1"),
    _row("p-ended", status="completed", day=4),
)
NAMES = {"p-urgent": "Yara", "p-stuck": "anna", "p-waiting": "Bram", "p-ended": "Cato"}


def _ids(rows):
    return [r.patient for r in rows]


@pytest.mark.parametrize(
    ("show", "expected"),
    [
        ("all", ["p-urgent", "p-stuck", "p-waiting", "p-paused"]),  # ended left out
        ("signals", ["p-urgent"]),
        ("stuck", ["p-stuck"]),
        ("waiting", ["p-waiting"]),
        ("ended", ["p-ended"]),
        ("nonsense", ["p-urgent", "p-stuck", "p-waiting", "p-paused"]),
    ],
)
def test_each_filter_shows_its_rows_in_the_overviews_order(show, expected):
    assert _ids(work_list(ROWS, show=show)) == expected


def test_sorting_by_name_uses_the_names_case_blind_and_the_id_when_unknown():
    # anna, Bram, p-paused (no name: its id), Yara
    assert _ids(work_list(ROWS, sort="name", names=NAMES)) == [
        "p-stuck", "p-waiting", "p-paused", "p-urgent",
    ]  # fmt: skip
    assert _ids(work_list(ROWS, sort="name", names=NAMES, descending=True)) == [
        "p-urgent", "p-paused", "p-waiting", "p-stuck",
    ]  # fmt: skip


def test_sorting_by_the_other_columns():
    assert _ids(work_list(ROWS, sort="last", descending=True)) == [
        "p-urgent", "p-waiting", "p-paused", "p-stuck",
    ]  # fmt: skip
    assert _ids(work_list(ROWS, sort="signals", descending=True))[0] == "p-urgent"
    assert _ids(work_list(ROWS, sort="stuck", descending=True))[0] == "p-stuck"
    # an empty "waiting since" sorts last whichever way
    assert _ids(work_list(ROWS, sort="waiting"))[0] == "p-waiting"
    assert _ids(work_list(ROWS, sort="waiting", descending=True))[0] == "p-waiting"
    assert _ids(work_list(ROWS, sort="phase")) == [
        "p-waiting",
        "p-stuck",
        "p-paused",
        "p-urgent",
    ]
    assert _ids(work_list(ROWS, sort="track"))[0] == "p-waiting"  # "Op de wachtlijst" first


def test_every_filter_and_sort_the_page_offers_works_both_ways():
    for show in FILTERS:
        for sort in SORTS:
            for descending in (False, True):
                rows = work_list(ROWS, show=show, sort=sort, descending=descending, names=NAMES)
                assert sorted(_ids(rows)) == sorted(_ids(work_list(ROWS, show=show)))
