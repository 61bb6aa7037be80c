"""The questionnaire engine (grows in its own issue): FHIRPath scoring with SDC weight()."""

from __future__ import annotations

from fhir_burnout.questionnaire._fhirpath import answer_weights, evaluate

__all__ = ["answer_weights", "evaluate"]
