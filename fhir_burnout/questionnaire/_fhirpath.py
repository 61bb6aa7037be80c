"""FHIRPath over QuestionnaireResponses, with the SDC functions fhirpathpy lacks.

SDC (Structured Data Capture) scores answers with ``weight()`` (``ordinal()`` in older
releases): the weight of a coded answer is the ``itemWeight`` extension on the matching
answerOption of the Questionnaire, or the ``ordinalValue`` extension on the Coding.
fhirpathpy implements neither, so we register them as user functions.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from fhirpathpy import evaluate as fhirpath_evaluate
from fhirpathpy.models import models

ITEM_WEIGHT = "http://hl7.org/fhir/StructureDefinition/itemWeight"
ORDINAL_VALUE = "http://hl7.org/fhir/StructureDefinition/ordinalValue"


def _items(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for item in items:
        yield item
        yield from _items(item.get("item", []))


def answer_weights(questionnaire: dict[str, Any]) -> dict[tuple[str | None, str], Decimal]:
    """The weight of every coded answer option, keyed by (system, code)."""
    weights: dict[tuple[str | None, str], Decimal] = {}
    for item in _items(questionnaire.get("item", [])):
        for option in item.get("answerOption", []):
            coding = option.get("valueCoding")
            if not coding:
                continue
            found = [e for e in option.get("extension", []) if e.get("url") == ITEM_WEIGHT]
            found += [e for e in coding.get("extension", []) if e.get("url") == ORDINAL_VALUE]
            if found:
                key = (coding.get("system"), str(coding.get("code")))
                weights[key] = Decimal(str(found[0]["valueDecimal"]))
    return weights


def evaluate(
    expression: str,
    response: dict[str, Any],
    questionnaire: dict[str, Any],
    variables: dict[str, Any] | None = None,
) -> list[Any]:
    """Evaluate ``expression`` with %resource = the response and SDC's weight()."""
    weights = answer_weights(questionnaire)

    def weight(codings: list[Any]) -> list[Decimal]:
        found = []
        for coding in codings:
            if isinstance(coding, dict):
                key = (coding.get("system"), str(coding.get("code")))
                if key in weights:
                    found.append(weights[key])
        return found

    functions = {
        "weight": {"fn": weight, "arity": {0: []}},
        "ordinal": {"fn": weight, "arity": {0: []}},
    }
    context = {"resource": response, "questionnaire": questionnaire, **(variables or {})}
    result = fhirpath_evaluate(
        response, expression, context, models["r4"], {"userInvocationTable": functions}
    )
    return list(result)
