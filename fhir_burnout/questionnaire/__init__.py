"""The questionnaire engine: a Questionnaire in, a form model out; enableWhen; scoring.

Free of Flask. Works on FHIR JSON so that it loads questionnaires other systems wrote.
"""

from __future__ import annotations

from fhir_burnout.questionnaire._change import (
    ClinicalChange,
    ReliableChange,
    clinical_change,
    reliable_change,
)
from fhir_burnout.questionnaire._enable import (
    Enablement,
    answer_values,
    answers_by_link,
    enabled_items,
    enablement,
    plain_number,
)
from fhir_burnout.questionnaire._errors import QuestionnaireError
from fhir_burnout.questionnaire._fhirpath import answer_weights, evaluate
from fhir_burnout.questionnaire._form import (
    AnswerOption,
    EnableCondition,
    FormItem,
    FormModel,
    load_form,
    localized,
)
from fhir_burnout.questionnaire._response import (
    Score,
    build_response,
    initial_answers,
    score,
    with_scores,
)
from fhir_burnout.questionnaire._safety import (
    SafetyRule,
    Signal,
    parse_safety_rules,
    safety_signals,
)
from fhir_burnout.questionnaire._validate import ValidationIssue, validate

__all__ = [
    "AnswerOption",
    "EnableCondition",
    "Enablement",
    "FormItem",
    "FormModel",
    "QuestionnaireError",
    "ReliableChange",
    "SafetyRule",
    "Score",
    "Signal",
    "ValidationIssue",
    "answer_values",
    "answer_weights",
    "answers_by_link",
    "build_response",
    "enabled_items",
    "enablement",
    "evaluate",
    "initial_answers",
    "load_form",
    "parse_safety_rules",
    "plain_number",
    "reliable_change",
    "safety_signals",
    "score",
    "validate",
    "with_scores",
]
__all__ += [  # imports18: the workflow's views
    "localized",
]
__all__ += [  # issue 21: recovery beside reliable change, for the care professional
    "ClinicalChange",
    "clinical_change",
]
