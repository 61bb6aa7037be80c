"""Building a QuestionnaireResponse from answers, and scoring it (SDC calculatedExpression).

The response mirrors the Questionnaire's nesting (groups hold items, a question's child
items sit under its answer), leaves out disabled items, and names its questionnaire by
``url|version``. Scores are evaluated with FHIRPath and written into the response as the
answers of the calculated items, so the EHR sees them; their band comes from the
``score-band`` extension shipped with the questionnaire.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fhir_burnout.questionnaire._enable import answers_by_link, enabled_items
from fhir_burnout.questionnaire._fhirpath import evaluate
from fhir_burnout.questionnaire._form import FormItem, FormModel, localized

Answers = Mapping[str, Any]  # linkId -> [answer dicts] or, for repeating groups, [Answers]


def _node(item: FormItem, answers: Answers, enabled: set[str] | None) -> list[dict[str, Any]]:
    if enabled is not None and item.link_id not in enabled:
        return []
    given = answers.get(item.link_id)
    if item.type == "group":
        instances = given if item.repeats and isinstance(given, list) else [answers]
        nodes = []
        for instance in instances:
            children = [n for c in item.children for n in _node(c, instance, enabled)]
            if children:
                nodes.append({"linkId": item.link_id, "item": children})
        return nodes
    if not given:
        return []
    node: dict[str, Any] = {"linkId": item.link_id, "answer": [dict(a) for a in given]}
    children = [n for c in item.children for n in _node(c, answers, enabled)]
    if children:
        node["answer"][0]["item"] = children
    return [node]


_VALUE_KEYS = {
    "boolean": "valueBoolean", "decimal": "valueDecimal", "integer": "valueInteger",
    "date": "valueDate", "dateTime": "valueDateTime", "time": "valueTime",
    "string": "valueString", "text": "valueString", "url": "valueUri",
    "choice": "valueCoding", "open-choice": "valueCoding", "quantity": "valueQuantity",
}  # fmt: skip


def initial_answers(
    form: FormModel, *, patient: Mapping[str, Any] | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Answers a form starts with: ``initial``, ``initialSelected`` options, and SDC
    ``initialExpression`` (with ``%patient`` from the launch context when given)."""
    answers: dict[str, list[dict[str, Any]]] = {}
    empty: dict[str, Any] = {"resourceType": "QuestionnaireResponse", "item": []}
    variables = {"patient": dict(patient)} if patient else {}
    for item in form.walk():
        found = [{f"value{t[0].upper()}{t[1:]}": v} for t, v in item.initial]
        found += [
            {f"value{o.value_type.capitalize()}": o.value}
            for o in item.options
            if o.initial_selected
        ]
        if not found and item.initial_expression and item.type in _VALUE_KEYS:
            if "%patient" in item.initial_expression and not patient:
                continue  # no launch context: leave the item empty rather than guess
            values = evaluate(
                item.initial_expression, empty, dict(form.questionnaire), variables,
                weights=dict(form.weights),
            )  # fmt: skip
            found = [{_VALUE_KEYS[item.type]: v} for v in values]
        if found:
            answers[item.link_id] = found if item.repeats else found[:1]
    return answers


def build_response(
    form: FormModel,
    answers: Answers,
    *,
    status: str = "in-progress",
    subject: str | None = None,
    author: str | None = None,
    authored: str | None = None,
) -> dict[str, Any]:
    """A QuestionnaireResponse for ``answers``, without disabled items, scores included."""
    response: dict[str, Any] = {"resourceType": "QuestionnaireResponse"}
    if form.canonical:
        response["questionnaire"] = form.canonical
    response["status"] = status
    if subject:
        response["subject"] = {"reference": subject}
    if authored:
        response["authored"] = authored
    if author:
        response["author"] = {"reference": author}
    draft = {**response, "item": [n for i in form.items for n in _node(i, answers, None)]}
    enabled = enabled_items(form, draft)
    response["item"] = [n for i in form.items for n in _node(i, answers, enabled)]
    return with_scores(form, response)


@dataclass(frozen=True)
class Score:
    """A calculated item's value and the band it falls in (if the questionnaire has bands)."""

    link_id: str
    value: Decimal | None
    band: str | None
    label: str | None


def _band(form: FormModel, item: FormItem, value: Decimal) -> tuple[str | None, str | None]:
    chosen: tuple[Decimal, str, str] | None = None
    for ext in item.raw.get("extension", []) or []:
        if not str(ext.get("url", "")).endswith("/StructureDefinition/score-band"):
            continue
        parts = {p.get("url"): p for p in ext.get("extension", [])}
        low = Decimal(str(parts.get("min", {}).get("valueDecimal", 0)))
        if low <= value and (chosen is None or low > chosen[0]):
            label_part = parts.get("label", {}).get("valueCodeableConcept", {})
            primary = str(form.questionnaire.get("language") or "nl")
            label = localized(label_part, "text", form.lang, primary)
            chosen = (low, str(parts.get("code", {}).get("valueCode", "")), label)
    return (chosen[1], chosen[2]) if chosen else (None, None)


def _set_answer(items: list[dict[str, Any]], link: str, value: Decimal | None) -> bool:
    for node in items:
        if node.get("linkId") == link:
            if value is None:
                node.pop("answer", None)
            else:
                node["answer"] = [{"valueDecimal": float(value)}]
            return True
        if _set_answer(node.get("item", []), link, value):
            return True
        for answer in node.get("answer", []):
            if _set_answer(answer.get("item", []), link, value):
                return True
    return False


def _place(
    form: FormModel, response: dict[str, Any], item: FormItem, value: Decimal | None
) -> None:
    if _set_answer(response.setdefault("item", []), item.link_id, value) or value is None:
        return
    # Not in the response yet: add it where the questionnaire has it (top level or group).
    path = _path(form.items, item.link_id) or [item.link_id]
    items = response["item"]
    for link in path[:-1]:
        group = next((n for n in items if n.get("linkId") == link), None)
        if group is None:
            group = {"linkId": link, "item": []}
            items.append(group)
        items = group.setdefault("item", [])
    items.append({"linkId": item.link_id, "answer": [{"valueDecimal": float(value)}]})


def _path(items: tuple[FormItem, ...], link: str) -> list[str] | None:
    for item in items:
        if item.link_id == link:
            return [link]
        below = _path(item.children, link)
        if below:
            return [item.link_id, *below]
    return None


def with_scores(form: FormModel, response: Mapping[str, Any]) -> dict[str, Any]:
    """The response with every calculated item's answer (re)computed."""
    result = copy.deepcopy(dict(response))
    calculated = [i for i in form.walk() if i.calculated_expression]
    # Calculated items may use each other (never in a cycle: load_form refuses that), so
    # evaluate until nothing changes, at most once per item.
    questionnaire, weights = dict(form.questionnaire), dict(form.weights)
    for _ in range(len(calculated) + 1):
        changed = False
        current = answers_by_link(result)
        variables = _variables(form, result)
        for item in calculated:
            assert item.calculated_expression is not None
            found = evaluate(
                item.calculated_expression, result, questionnaire, variables, weights=weights
            )
            value = _first_number(found)
            before = current.get(item.link_id)
            if value != (_first_number([v for _, v in before]) if before else None):
                _place(form, result, item, value)
                changed = True
        if not changed:
            break
    return result


def _variables(form: FormModel, response: dict[str, Any]) -> dict[str, Any]:
    """The questionnaire-level SDC variables, each evaluated once, in order."""
    values: dict[str, Any] = {}
    for name, expression in form.variables:
        values[name] = evaluate(
            expression, response, dict(form.questionnaire), values, weights=dict(form.weights)
        )
    return values


def _first_number(values: list[Any]) -> Decimal | None:
    for value in values:
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float | Decimal):
            return Decimal(str(value)).quantize(Decimal("0.01")).normalize()
    return None


def score(form: FormModel, response: Mapping[str, Any]) -> list[Score]:
    """Every calculated item's value and band, for this response."""
    current = answers_by_link(with_scores(form, response))
    scores = []
    for item in form.walk():
        if not item.calculated_expression:
            continue
        found = current.get(item.link_id)
        value = _first_number([v for _, v in found]) if found else None
        band = _band(form, item, value) if value is not None else (None, None)
        scores.append(Score(item.link_id, value, *band))
    return scores
