"""The reliable change index (Jacobson & Truax 1991) for the scored questionnaires we ship.

Jacobson NS, Truax P. Clinical significance: a statistical approach to defining meaningful
change in psychotherapy research. J Consult Clin Psychol 1991;59(1):12-19.

    SE     = SD * sqrt(1 - r)       standard error of measurement
    S_diff = sqrt(2) * SE           standard error of the difference of two scores
    RCI    = (after - before) / S_diff

|RCI| >= 1.96 is a change that measurement error alone would produce less than 5% of the
time. The figures (r, SD) are published ones, each with its source beside it; a score with
no published figures we could name has no entry and gets None. See docs/reliable-change.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from fhir_burnout.questionnaire._errors import QuestionnaireError

Z = 1.96  # two-sided 95%: Jacobson & Truax 1991
Direction = Literal["higher-is-worse", "higher-is-better"]
Verdict = Literal["improved", "no-change", "worse"]


@dataclass(frozen=True)
class Reliability:
    """Published figures for one score: its reliability ``r`` and the sample SD."""

    questionnaire: str  # the Questionnaire's id, the last part of its canonical url
    link_id: str  # the calculated item that holds the score
    r: float  # internal consistency or test-retest, as the source gives it
    sd: float  # standard deviation of the reference sample, in score points
    direction: Direction
    source: str  # authors, journal, year, table: where r and SD come from

    @property
    def s_diff(self) -> float:
        """Standard error of the difference between two measurements."""
        return math.sqrt(2) * self.sd * math.sqrt(1 - self.r)

    @property
    def threshold(self) -> float:
        """The smallest difference, in score points, that is reliable."""
        return Z * self.s_diff


_MOLEBATSI_2020 = (
    "Molebatsi K, Motlhatlhedi K, Wambua GN. The validity and reliability of the Patient "
    "Health Questionnaire-9 for screening depression in primary health care patients in "
    "Botswana. BMC Psychiatry 2020;20. doi:10.1186/s12888-020-02719-5. Table 2 (n = 257 "
    "adult primary-care attenders): Cronbach's alpha 0.799; total score mean 8.65, SD 6.1."
)
_LOWE_2008 = (
    "Löwe B, Decker O, Müller S, Brähler E, Schellberg D, Herzog W, Herzberg PY. Validation "
    "and standardization of the Generalized Anxiety Disorder Screener (GAD-7) in the general "
    "population. Med Care 2008;46(3):266-274. Abstract (German general population, "
    "n = 5030): alpha 0.89 in every subgroup; mean (SD) women 3.2 (3.5), men 2.7 (3.2); the "
    "larger SD, 3.5, is used."
)
_SAIPANISH_2009 = (
    "Saipanish R et al. Reliability and validity of the Thai version of the WHO-Five "
    "Well-Being Index in primary care patients. Psychiatry Clin Neurosci 2009. "
    "doi:10.1111/j.1440-1819.2009.01933.x. Abstract (n = 274 primary-care patients): "
    "Cronbach's alpha 0.87; raw score (0-25) mean 14.32, SD 5.26."
)

#: The published figures, one row per score. CBI: no figures found (see the docs).
RELIABILITY: tuple[Reliability, ...] = (
    Reliability("phq-9", "phq9-total", 0.799, 6.1, "higher-is-worse", _MOLEBATSI_2020),
    Reliability("gad-7", "gad7-total", 0.89, 3.5, "higher-is-worse", _LOWE_2008),
    Reliability("who-5", "who5-raw", 0.87, 5.26, "higher-is-better", _SAIPANISH_2009),
    # The percentage score is the raw score times 4, so its SD is 4 x 5.26.
    Reliability("who-5", "who5-percentage", 0.87, 4 * 5.26, "higher-is-better", _SAIPANISH_2009),
)

_BY_KEY = {(row.questionnaire, row.link_id): row for row in RELIABILITY}


@dataclass(frozen=True)
class ReliableChange:
    """The reliable change between two scores of one person on one instrument."""

    index: float  # RCI = (after - before) / S_diff, sign as the score's
    verdict: Verdict
    threshold: float  # the smallest difference in score points that is reliable (1.96 * S_diff)


def _questionnaire_id(canonical: str) -> str | None:
    """``.../Questionnaire/<id>`` (with or without ``|version``) to ``<id>``."""
    url = canonical.split("|", 1)[0].rstrip("/")
    head, sep, qid = url.rpartition("/Questionnaire/")
    return qid if sep and head and qid and "/" not in qid else None


def reliability(questionnaire: str, link_id: str) -> Reliability | None:
    """The published figures for a score, or None when we have none."""
    qid = _questionnaire_id(questionnaire)
    return _BY_KEY.get((qid, link_id)) if qid else None


def reliable_change(
    questionnaire: str, link_id: str, before: float, after: float
) -> ReliableChange | None:
    """Jacobson-Truax reliable change from ``before`` to ``after`` on one score.

    ``questionnaire`` is the Questionnaire's canonical url, with or without ``|version``;
    None for a score without published figures (our own check-in, say).
    """
    row = reliability(questionnaire, link_id)
    if row is None:
        return None
    for name, value in (("before", before), ("after", after)):
        if not math.isfinite(value):
            raise QuestionnaireError([(link_id, f"{name} score is not a number: {value!r}")])
    index = (after - before) / row.s_diff
    verdict: Verdict = "no-change"
    if abs(index) >= Z:
        rose = index > 0
        better = rose if row.direction == "higher-is-better" else not rose
        verdict = "improved" if better else "worse"
    return ReliableChange(index=index, verdict=verdict, threshold=row.threshold)
