"""enableWhen (R4 Questionnaire.item.enableWhen) and SDC enableWhenExpression.

R4 semantics: ``exists`` compares "has an answer" with answerBoolean; ``=`` is true when at
least one answer equals the given answer, ``!=`` when at least one answer differs; the
orderings compare numbers, dates and times. No answer makes every operator but ``exists``
false. ``enableBehavior`` any/all combines conditions. An item under a disabled item is
disabled, and answers in disabled items do not count for other items' conditions (SDC).
Evaluated per linkId over the whole response; enableWhenExpression sees the whole response.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from fhir_burnout.questionnaire._fhirpath import evaluate
from fhir_burnout.questionnaire._form import EnableCondition, FormItem, FormModel


def answers_by_link(response: Mapping[str, Any]) -> dict[str, list[tuple[str, Any]]]:
    """Every answer in a response as (type, value), grouped by linkId (all instances)."""
    found: dict[str, list[tuple[str, Any]]] = {}

    def walk(items: list[Mapping[str, Any]]) -> None:
        for item in items:
            for answer in item.get("answer", []) or []:
                for key, value in answer.items():
                    if key.startswith("value"):
                        found.setdefault(str(item.get("linkId")), []).append((key[5:], value))
                walk(answer.get("item", []) or [])
            walk(item.get("item", []) or [])

    walk(list(response.get("item", []) or []))
    return found


def as_number(value: Any) -> Decimal | None:
    """A number, or a Quantity's value, as Decimal; None when it is neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, Mapping):  # Quantity
        value = value.get("value")
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def _equal(answer_type: str, answer: Any, wanted_type: str, wanted: Any) -> bool:
    if wanted_type == "Coding" and isinstance(answer, Mapping) and isinstance(wanted, Mapping):
        if wanted.get("system") and answer.get("system") != wanted.get("system"):
            return False
        return bool(answer.get("code") == wanted.get("code"))
    number_a, number_w = as_number(answer), as_number(wanted)
    if wanted_type in ("Decimal", "Integer", "Quantity") and None not in (number_a, number_w):
        return number_a == number_w
    return bool(answer == wanted) and answer_type.lower() in (
        wanted_type.lower(),
        "string",
        "coding",
    )


def _ordered(a: Any, operator: str, w: Any) -> bool:
    if operator == ">":
        return bool(a > w)
    if operator == "<":
        return bool(a < w)
    if operator == ">=":
        return bool(a >= w)
    return bool(a <= w)


def _compare(answer: Any, operator: str, wanted_type: str, wanted: Any) -> bool:
    if wanted_type in ("Decimal", "Integer", "Quantity"):
        a, w = as_number(answer), as_number(wanted)
        return a is not None and w is not None and _ordered(a, operator, w)
    if isinstance(answer, str) and isinstance(wanted, str):
        return _ordered(answer, operator, wanted)  # ISO dates and times sort as text
    return False


def condition_holds(cond: EnableCondition, answers: list[tuple[str, Any]]) -> bool:
    """One enableWhen against the answers given to its question."""
    if cond.operator == "exists":
        return bool(answers) == bool(cond.answer)
    if not answers:
        return False
    if cond.operator == "=":
        return any(_equal(t, v, cond.answer_type, cond.answer) for t, v in answers)
    if cond.operator == "!=":
        return any(not _equal(t, v, cond.answer_type, cond.answer) for t, v in answers)
    return any(_compare(v, cond.operator, cond.answer_type, cond.answer) for _, v in answers)


def enabled_items(model: FormModel, response: Mapping[str, Any]) -> set[str]:
    """The linkIds that are enabled for this response (one pass, linear in the items)."""
    given = answers_by_link(response)
    enabled: set[str] = set()
    # enable_order puts every item after its parent and after the questions it reads, so
    # each decision can rely on theirs, and answers in disabled items are simply not seen.
    for link in model.enable_order:
        parent = model.parents.get(link)
        if parent is not None and parent not in enabled:
            continue
        counted = {q: given.get(q, []) if q in enabled else [] for q in _questions(model, link)}
        if _item_enabled(model, model.index[link], response, counted):
            enabled.add(link)
    return enabled


def _questions(model: FormModel, link: str) -> list[str]:
    return [c.question for c in model.index[link].enable_when]


def _item_enabled(
    model: FormModel,
    item: FormItem,
    response: Mapping[str, Any],
    answers: Mapping[str, list[tuple[str, Any]]],
) -> bool:
    if item.enable_when_expression:
        result = evaluate(
            item.enable_when_expression,
            dict(response),
            dict(model.questionnaire),
            weights=dict(model.weights),
        )
        return bool(result) and result[0] is True
    if not item.enable_when:
        return True
    outcomes = [condition_holds(c, answers.get(c.question, [])) for c in item.enable_when]
    return any(outcomes) if item.enable_behavior == "any" else all(outcomes)
