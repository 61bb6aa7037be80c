"""Reliable and clinically significant change between a client's first and last score.

Jacobson NS, Truax P. Clinical significance: a statistical approach to defining meaningful
change in psychotherapy research. J Consult Clin Psychol 1991;59(1):12-19.

    S_diff = sqrt(2) * SD * sqrt(1 - r)     standard error of the difference of two scores
    RCI    = (last - first) / S_diff

|RCI| >= 1.96 is a change that measurement error alone would produce less than 5% of the
time: a *reliable* change. Where a clinical service publishes the threshold in score points
(NHS Talking Therapies for PHQ-9 and GAD-7), S_diff is that threshold divided by 1.96, so
the index and the published rule agree. *Clinically significant* change is read, as NHS
Talking Therapies does, from the caseness cut-off instead of Jacobson & Truax's criterion c:
recovery is a case at the first score and not at the last; reliable recovery is recovery
with a reliable improvement. The figures, each with its source, are in
``_change_figures.FIGURES``; docs/reliable-change.md explains them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from fhir_burnout.questionnaire._change_figures import FIGURES, ChangeFigures
from fhir_burnout.questionnaire._errors import QuestionnaireError

Verdict = Literal["improved", "no-change", "worse"]

# Scores are sums or means of answers; a float difference of 6 may come out as 5.999...
_EPSILON = 1e-9

_BY_KEY = {(row.questionnaire, row.link_id): row for row in FIGURES}


@dataclass(frozen=True)
class ReliableChange:
    """The reliable change between two scores of one person on one instrument."""

    index: float  # RCI = (after - before) / S_diff, sign as the score's
    verdict: Verdict
    threshold: float  # the smallest difference in score points that is reliable (1.96 * S_diff)


@dataclass(frozen=True)
class ClinicalChange:
    """Reliable change and recovery, as NHS Talking Therapies defines them, for one score."""

    reliable: ReliableChange
    case_before: bool  # at or past the caseness cut-off at the first score
    case_after: bool
    recovered: bool | None  # None: not a case at the start (recovery does not apply)
    reliably_recovered: bool | None  # recovered and reliably improved; None as above
    reliably_deteriorated: bool
    cutoff: float  # the caseness cut-off in score points


def _questionnaire_id(canonical: str) -> str | None:
    """``.../Questionnaire/<id>`` (with or without ``|version``) to ``<id>``."""
    url = canonical.split("|", 1)[0].rstrip("/")
    head, sep, qid = url.rpartition("/Questionnaire/")
    return qid if sep and head and qid and "/" not in qid else None


def change_figures(questionnaire: str, link_id: str) -> ChangeFigures | None:
    """The published figures for a score, or None when we have none."""
    qid = _questionnaire_id(questionnaire)
    return _BY_KEY.get((qid, link_id)) if qid else None


def _checked(link_id: str, before: float, after: float) -> None:
    for name, value in (("before", before), ("after", after)):
        if not math.isfinite(value):
            raise QuestionnaireError([(link_id, f"{name} score is not a number: {value!r}")])


def _reliable(row: ChangeFigures, before: float, after: float) -> ReliableChange:
    difference = after - before
    verdict: Verdict = "no-change"
    if abs(difference) >= row.threshold - _EPSILON:
        better = difference > 0 if row.direction == "higher-is-better" else difference < 0
        verdict = "improved" if better else "worse"
    return ReliableChange(index=difference / row.s_diff, verdict=verdict, threshold=row.threshold)


def reliable_change(
    questionnaire: str, link_id: str, before: float, after: float
) -> ReliableChange | None:
    """Jacobson-Truax reliable change from ``before`` to ``after`` on one score.

    ``questionnaire`` is the Questionnaire's canonical url, with or without ``|version``;
    None for a score without published figures (our own check-in, say).
    """
    row = change_figures(questionnaire, link_id)
    if row is None:
        return None
    _checked(link_id, before, after)
    return _reliable(row, before, after)


def clinical_change(
    questionnaire: str, link_id: str, first: float, last: float
) -> ClinicalChange | None:
    """Reliable change, recovery and reliable recovery from a client's first to last score.

    As NHS Talking Therapies defines them, per instrument: *recovered* is a case at the first
    score and not a case at the last; *reliably recovered* is recovered with a reliable
    improvement; *reliably deteriorated* is a reliable change in the bad direction, case or
    not. For a client who was not a case at the start, recovery does not apply (None), so
    such a client is never counted as recovered. None for a score without figures.
    """
    row = change_figures(questionnaire, link_id)
    if row is None:
        return None
    _checked(link_id, first, last)
    reliable = _reliable(row, first, last)
    case_before, case_after = row.is_case(first), row.is_case(last)
    recovered = (not case_after) if case_before else None
    reliably_recovered = (recovered and reliable.verdict == "improved") if case_before else None
    return ClinicalChange(
        reliable=reliable,
        case_before=case_before,
        case_after=case_after,
        recovered=recovered,
        reliably_recovered=reliably_recovered,
        reliably_deteriorated=reliable.verdict == "worse",
        cutoff=row.cutoff,
    )
