"""The figures behind reliable and clinically significant change stay tied to their sources
and to the page that explains them (docs/reliable-change.md)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from fhir_burnout.questionnaire._change_figures import FIGURES, ChangeFigures

DOC = Path(__file__).resolve().parents[1] / "docs" / "reliable-change.md"

#: Per score: a digest of its source texts, and the figures those texts give.
PINNED = {
    ("phq-9", "phq9-total"): ("9b12f66a069a9de1", ("higher-is-worse", 10, 0.89, None, 6)),
    ("gad-7", "gad7-total"): ("7cc4599fafab63bf", ("higher-is-worse", 8, 0.92, None, 4)),
    ("who-5", "who5-percentage"): (
        "3fa9a40c8aef2910",
        ("higher-is-better", 50, 0.87, 21.04, None),
    ),
    ("who-5", "who5-raw"): ("66cbdf960222a81e", ("higher-is-better", 12, 0.87, 5.26, None)),
}


def _digest(row: ChangeFigures) -> str:
    text = f"{row.threshold_source}\n{row.cutoff_source}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _figures(row: ChangeFigures) -> tuple[object, ...]:
    return (row.direction, row.cutoff, row.r, row.sd, row.published_threshold)


def test_a_figure_changes_only_together_with_its_source():
    """A threshold or cut-off decides whether a client counts as recovered: it must never
    change on its own.

    Each score's figures are pinned here together with a digest of the source texts that
    justify them. While a row's source text is the pinned one, its figures must be the
    pinned ones: editing a figure alone fails. Editing the figure *and* its source (the
    citation saying where the new figure comes from) passes, because the digest no longer
    matches the pin; then update the pin, so that the next change is guarded again. A new
    score needs a pin too.
    """
    assert {(row.questionnaire, row.link_id) for row in FIGURES} == set(PINNED)
    for row in FIGURES:
        digest, figures = PINNED[row.questionnaire, row.link_id]
        if _digest(row) == digest:
            assert _figures(row) == figures, (
                f"{row.link_id}: a figure changed but its source text did not: "
                "cite the new figure's source beside it"
            )


def _doc_rows() -> dict[str, list[str]]:
    """The figures table of the doc, by linkId: the cells of each row."""
    rows = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 7 and (match := re.match(r"`([a-z0-9-]+)`", cells[1])):
            rows[match[1]] = cells
    return rows


def _shown(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def test_the_doc_table_shows_the_codes_figures():
    rows = _doc_rows()
    for row in FIGURES:
        cells = rows.get(row.link_id)
        assert cells is not None, f"docs/reliable-change.md has no row for {row.link_id}"
        _, _, threshold, caseness, r, sd, kind = cells
        assert threshold == _shown(row.threshold), row.link_id
        sign = "≥" if row.direction == "higher-is-worse" else "≤"
        assert caseness == f"{sign} {_shown(row.cutoff)}", row.link_id
        assert r == _shown(row.r), row.link_id
        assert sd == (_shown(row.sd) if row.sd is not None else "—"), row.link_id
        published = row.published_threshold is not None
        assert kind.startswith("published" if published else "computed"), row.link_id


def test_the_doc_quotes_the_thresholds_in_its_plain_explanation():
    text = DOC.read_text(encoding="utf-8")
    assert "6 on the PHQ-9, 4 on the GAD-7" in text
    assert "10 or more on the\nPHQ-9, 8 or more on the GAD-7, 50 or less on the WHO-5" in text
