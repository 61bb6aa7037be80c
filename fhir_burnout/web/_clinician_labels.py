"""Words for the care professional where the content speaks to the client.

A questionnaire asks the client ("Wat gebeurde er op dat moment?") and names its score
bands for the client ("Je welbevinden is laag."); the care professional's pages name the
same things as clinicians do: a short label per question of our own homework and check-in
(``answer_<linkId>``) and per score band (``band_<questionnaire>_<code>``), in the
catalogues. A question or band without one (a questionnaire added later, a standard
instrument's item) is shown as it was asked, quoted, never rephrased in the client's voice.
"""

from __future__ import annotations

from fhir_burnout.web._i18n import N_, translate
from fhir_burnout.workflow import Answer

#: The bands as clinicians name them, per questionnaire and band code.
BAND_KEYS = (
    N_("band_phq-9_minimal"), N_("band_phq-9_mild"), N_("band_phq-9_moderate"),
    N_("band_phq-9_moderately-severe"), N_("band_phq-9_severe"),
    N_("band_gad-7_minimal"), N_("band_gad-7_mild"), N_("band_gad-7_moderate"),
    N_("band_gad-7_severe"),
    N_("band_who-5_very-low"), N_("band_who-5_low"), N_("band_who-5_ok"),
    N_("band_cbi_lower"), N_("band_cbi_high"),
)  # fmt: skip

#: A short label per question of our own homework, look-back and check-in.
ANSWER_KEYS = (
    N_("answer_boundary-date"), N_("answer_boundary-situation"), N_("answer_boundary-kept"),
    N_("answer_boundary-body"), N_("answer_boundary-action"), N_("answer_boundary-result"),
    N_("answer_boundary-next"),
    N_("answer_energy-date"), N_("answer_energy-daypart"), N_("answer_energy-activity"),
    N_("answer_energy-level"), N_("answer_energy-mood"), N_("answer_energy-overall"),
    N_("answer_energy-reflection"),
    N_("answer_reflection-tension-before"), N_("answer_reflection-tension-after"),
    N_("answer_reflection-noticed"), N_("answer_reflection-again"),
    N_("answer_eval-what-happened"), N_("answer_eval-prediction"),
    N_("answer_eval-belief-strength"), N_("answer_eval-learned"), N_("answer_eval-next-step"),
    N_("answer_plan-belief"), N_("answer_plan-belief-strength"), N_("answer_plan-what"),
    N_("answer_plan-when"), N_("answer_plan-with-whom"), N_("answer_plan-prediction"),
    N_("answer_plan-safety-behaviours"), N_("answer_plan-date"),
    N_("answer_rpp-green-well"), N_("answer_rpp-green-habits"),
    N_("answer_rpp-orange-signals"), N_("answer_rpp-orange-actions"),
    N_("answer_rpp-red-signals"), N_("answer_rpp-red-contact"),
    N_("answer_rpp-helper-name"), N_("answer_rpp-helper-role"), N_("answer_rpp-helper-phone"),
    N_("answer_rpp-professional"),
    N_("answer_tension-datetime"), N_("answer_tension-level"), N_("answer_tension-body"),
    N_("answer_tension-situation"), N_("answer_tension-exercise"), N_("answer_tension-after"),
    N_("answer_values-choice"), N_("answer_values-name"), N_("answer_values-room"),
    N_("answer_values-step"),
    N_("answer_checkin-energy"), N_("answer_checkin-sleep"), N_("answer_checkin-tension"),
    N_("answer_checkin-went-well"), N_("answer_checkin-safety"),
)  # fmt: skip
_ANSWERS = frozenset(ANSWER_KEYS)
_BANDS = frozenset(BAND_KEYS)


def answer_label(answer: Answer, lang: str) -> str | None:
    """The clinician's label of a question, or None: show the question as asked, quoted."""
    key = f"answer_{answer.link_id}"
    return translate(key, lang) if key in _ANSWERS else None


def band_name(questionnaire: str, code: str | None, lang: str) -> str | None:
    """A score band as clinicians name it (``questionnaire``: the id), or None."""
    key = f"band_{questionnaire}_{code}"
    return translate(key, lang) if key in _BANDS else None
