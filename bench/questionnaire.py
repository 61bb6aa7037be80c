"""The questionnaire engine on a synthetic questionnaire with enableWhen chains and scores.

For N items (100, then 200 and 400 to see growth): build the form model, re-evaluate
enableWhen after one answer, and validate + score a full response; each as a ratio of the
time fhir.resources takes just to parse the same response (measured in the same run).
Targets: re-evaluation well under the parse time; every step grows at most linearly.

Last line: one JSON object with the figures.
"""

from __future__ import annotations

import copy
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse  # noqa: E402

from fhir_burnout.questionnaire import (  # noqa: E402
    build_response,
    enabled_items,
    load_form,
    score,
    validate,
)

CORE = "http://hl7.org/fhir/StructureDefinition/"
SDC = "http://hl7.org/fhir/uv/sdc/StructureDefinition/"
GROUP = 10


def synthetic(n: int) -> dict[str, Any]:
    """n items in groups of ten: a chain of integers, weighted choices and a group score."""
    groups = []
    for g in range(n // GROUP):
        items: list[dict[str, Any]] = []
        for k in range(GROUP - 1):
            link = f"g{g}-q{k}"
            if k % 2 == 0:
                item: dict[str, Any] = {"linkId": link, "type": "integer", "text": f"Vraag {link}"}
                item["extension"] = [
                    {"url": CORE + "minValue", "valueInteger": 0},
                    {"url": CORE + "maxValue", "valueInteger": 10},
                ]
            else:
                item = {"linkId": link, "type": "choice", "text": f"Keuze {link}"}
                item["answerOption"] = [
                    {
                        "valueCoding": {"system": "urn:bench", "code": str(w)},
                        "extension": [{"url": CORE + "itemWeight", "valueDecimal": w}],
                    }
                    for w in range(4)
                ]
            if k:  # each item shows only when the one before it was answered
                item["enableWhen"] = [
                    {"question": f"g{g}-q{k - 1}", "operator": "exists", "answerBoolean": True}
                ]
            items.append(item)
        choices = " | ".join(f"'g{g}-q{k}'" for k in range(1, GROUP - 1, 2))
        # A subscale scoped to its own group, as SDC has authors write it: a variable on the
        # group reads %context (this group's response item), the score item uses it.
        subscale = {
            "url": CORE + "variable",
            "valueExpression": {
                "name": "choices",
                "language": "text/fhirpath",
                "expression": f"%context.item.where(linkId in ({choices})).answer.value",
            },
        }
        items.append(
            {
                "linkId": f"g{g}-score",
                "type": "decimal",
                "readOnly": True,
                "extension": [
                    {
                        "url": SDC + "sdc-questionnaire-calculatedExpression",
                        "valueExpression": {
                            "language": "text/fhirpath",
                            "expression": "%choices.weight().sum()",
                        },
                    }
                ],
            }
        )
        groups.append(
            {
                "linkId": f"g{g}",
                "type": "group",
                "text": f"Deel {g}",
                "extension": [subscale],
                "item": items,
            }
        )
    return {
        "resourceType": "Questionnaire",
        "status": "active",
        "url": "urn:bench",
        "item": groups,
    }


def answers_for(n: int) -> dict[str, Any]:
    answers: dict[str, Any] = {}
    for g in range(n // GROUP):
        for k in range(GROUP - 1):
            link = f"g{g}-q{k}"
            if k % 2 == 0:
                answers[link] = [{"valueInteger": 5}]
            else:
                answers[link] = [{"valueCoding": {"system": "urn:bench", "code": "2"}}]
    return answers


def best(repeats: int, action: Callable[[], object]) -> float:
    fastest = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        fastest = min(fastest, time.perf_counter() - start)
    return fastest


def measure(n: int) -> dict[str, float]:
    questionnaire = synthetic(n)
    form = load_form(questionnaire)
    response = build_response(form, answers_for(n), status="completed")
    assert not [i for i in validate(form, response) if i.severity == "error"]
    # by hand: four choices a group, each answered with weight 2
    assert {s.value for s in score(form, response)} == {8}
    changed = copy.deepcopy(response)
    changed["item"][0]["item"][0]["answer"] = []  # one answer taken back: a chain switches off
    parse = best(20, lambda: QuestionnaireResponse.model_validate(response))
    return {
        "items": n,
        "parse_ms": parse * 1000,
        "form_model_ms": best(10, lambda: load_form(questionnaire)) * 1000,
        "reevaluate_ms": best(20, lambda: enabled_items(form, changed)) * 1000,
        "validate_and_score_ms": best(5, lambda: (validate(form, response), score(form, response)))
        * 1000,
    }


def main() -> None:
    rows = [measure(n) for n in (100, 200, 400)]
    steps = ("form_model_ms", "reevaluate_ms", "validate_and_score_ms")
    print(f"{'items':>6} {'parse ms':>9} " + " ".join(f"{s:>22}" for s in steps))
    for row in rows:
        ratios = " ".join(
            f"{row[s]:>9.2f} ({row[s] / row['parse_ms']:>5.2f}x)" + " " * 5 for s in steps
        )
        print(f"{row['items']:>6} {row['parse_ms']:>9.2f} {ratios}")
    base = rows[0]
    growth = {
        s: round((rows[-1][s] / base[s]) / (rows[-1]["items"] / base["items"]), 2) for s in steps
    }
    print("growth from 100 to 400 items, per item (1.0 = linear):", growth)
    result = {
        "bench": "questionnaire",
        "items": 100,
        "parse_ms": round(base["parse_ms"], 3),
        **{f"{s}_ratio_to_parse": round(base[s] / base["parse_ms"], 3) for s in steps},
        "growth_per_item_100_to_400": growth,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
