"""The published figures behind reliable and clinically significant change, each with its source.

One row per score: the reliable change threshold (in score points) and the caseness cut-off,
each with the text that justifies it. Read this beside docs/reliable-change.md, which
explains them for the care professional; ``tests/test_change_figures.py`` fails when a figure
here changes while the source text beside it does not (change both in one commit, and say
in the source where the new figure comes from).

Two kinds of threshold:

- *Published*: the threshold a large clinical service uses and publishes (NHS Talking
  Therapies for PHQ-9 and GAD-7). We take it as it stands, so that a practice's figures mean
  what the same words mean in that service's reports. ``r`` is the instrument developers'
  reliability, kept for the cross-check in the docs; ``sd`` is None.
- *Computed* (Jacobson & Truax 1991): ``1.96 x sqrt(2) x SD x sqrt(1 - r)`` from a
  reliability and a standard deviation of one named sample (WHO-5).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

Z = 1.96  # two-sided 95%: Jacobson & Truax 1991
Direction = Literal["higher-is-worse", "higher-is-better"]


@dataclass(frozen=True)
class ChangeFigures:
    """The figures for one score: when a change is reliable and when a score is a case."""

    questionnaire: str  # the Questionnaire's id, the last part of its canonical url
    link_id: str  # the calculated item that holds the score
    direction: Direction
    #: a case is a score at or above (higher-is-worse) / at or below (higher-is-better) it
    cutoff: float
    cutoff_source: str
    threshold_source: str
    r: float  # the reliability the source gives (Cronbach's alpha)
    sd: float | None = None  # the sample's SD for a computed threshold; None: published
    published_threshold: float | None = None  # in score points; None: computed from r, SD

    @property
    def threshold(self) -> float:
        """The smallest difference, in score points, that is a reliable change."""
        if self.published_threshold is not None:
            return self.published_threshold
        assert self.sd is not None  # a row has one or the other (a test checks it)
        return Z * math.sqrt(2) * self.sd * math.sqrt(1 - self.r)

    @property
    def s_diff(self) -> float:
        """Standard error of the difference of two scores (the threshold divided by 1.96)."""
        return self.threshold / Z

    def is_case(self, value: float) -> bool:
        """At or past the caseness cut-off."""
        if self.direction == "higher-is-worse":
            return value >= self.cutoff
        return value <= self.cutoff


_NHS_TT = (
    "NHS England / National Collaborating Centre for Mental Health. The Improving Access to "
    "Psychological Therapies (NHS Talking Therapies for anxiety and depression) Manual, "
    "version 6, February 2023, chapter 6 (monitoring clinical outcomes)"
)
_PHQ9_THRESHOLD = (
    f"{_NHS_TT}: reliable improvement is a fall of 6 points or more on the PHQ-9, reliable "
    "deterioration a rise of 6 points or more. Cross-check with the developers' "
    "reliability: Kroenke K, Spitzer RL, Williams JBW. The PHQ-9: validity of a brief "
    "depression severity measure. J Gen Intern Med 2001;16(9):606-613, Cronbach's alpha "
    "0.89."
)
_PHQ9_CUTOFF = (
    f"{_NHS_TT}: a PHQ-9 score of 10 or more is a case (clinical range). Kroenke, Spitzer & "
    "Williams, J Gen Intern Med 2001;16(9):606-613, abstract: a PHQ-9 score of 10 or more "
    "had a sensitivity of 88% and a specificity of 88% for major depression (580 patients "
    "with an independent interview by a mental health professional)."
)
_GAD7_THRESHOLD = (
    f"{_NHS_TT}: reliable improvement is a fall of 4 points or more on the GAD-7, reliable "
    "deterioration a rise of 4 points or more. Cross-check with the developers' "
    "reliability: Spitzer RL, Kroenke K, Williams JBW, Lowe B. A brief measure for "
    "assessing generalized anxiety disorder: the GAD-7. Arch Intern Med "
    "2006;166(10):1092-1097, Cronbach's alpha 0.92."
)
_GAD7_CUTOFF = (
    f"{_NHS_TT}: a GAD-7 score of 8 or more is a case (clinical range). Spitzer et al., "
    "Arch Intern Med 2006;166(10):1092-1097, give 10 as the cut point that balances "
    "sensitivity (89%) and specificity (82%) for generalised anxiety disorder; Talking "
    "Therapies' caseness cut-off is the lower 8."
)
_SAIPANISH_2009 = (
    "Saipanish R et al. Reliability and validity of the Thai version of the WHO-Five "
    "Well-Being Index in primary care patients. Psychiatry Clin Neurosci 2009. "
    "doi:10.1111/j.1440-1819.2009.01933.x. Abstract (274 primary-care "
    "patients): Cronbach's alpha 0.87; raw score (0-25) mean 14.32, SD 5.26."
)
_WHO5_PERCENTAGE_THRESHOLD = (
    f"{_SAIPANISH_2009} The percentage score is the raw score times 4, so its SD is "
    "4 x 5.26 = 21.04."
)
_TOPP_2015 = (
    "Topp CW, Ostergaard SD, Sondergaard S, Bech P. The WHO-5 Well-Being Index: a "
    "systematic review of the literature. Psychother Psychosom 2015;84(3):167-176. "
    "doi:10.1159/000376585: a percentage score of 50 or less is the cut-off for poor "
    "well-being and for screening for depression"
)
_WHO5_PERCENTAGE_CUTOFF = f"{_TOPP_2015}."
_WHO5_RAW_CUTOFF = (
    f"{_TOPP_2015}; on the raw score (0-25) that is 12 or less, the 'raw score below 13' of "
    "the scoring notes of the WHO Collaborating Centre in Mental Health (Psychiatric "
    "Research Unit, Hillerod)."
)

#: One row per score. CBI and our own check-ins: no figures (see docs/reliable-change.md).
FIGURES: tuple[ChangeFigures, ...] = (
    ChangeFigures(
        "phq-9",
        "phq9-total",
        "higher-is-worse",
        cutoff=10,
        cutoff_source=_PHQ9_CUTOFF,
        threshold_source=_PHQ9_THRESHOLD,
        r=0.89,
        published_threshold=6,
    ),
    ChangeFigures(
        "gad-7",
        "gad7-total",
        "higher-is-worse",
        cutoff=8,
        cutoff_source=_GAD7_CUTOFF,
        threshold_source=_GAD7_THRESHOLD,
        r=0.92,
        published_threshold=4,
    ),
    ChangeFigures(
        "who-5",
        "who5-percentage",
        "higher-is-better",
        cutoff=50,
        cutoff_source=_WHO5_PERCENTAGE_CUTOFF,
        threshold_source=_WHO5_PERCENTAGE_THRESHOLD,
        r=0.87,
        sd=4 * 5.26,
    ),
    ChangeFigures(
        "who-5",
        "who5-raw",
        "higher-is-better",
        cutoff=12,
        cutoff_source=_WHO5_RAW_CUTOFF,
        threshold_source=_SAIPANISH_2009,
        r=0.87,
        sd=5.26,
    ),
)
