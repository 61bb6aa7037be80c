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
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from fhir_burnout.questionnaire._enable import Enablement, enablement
from fhir_burnout.questionnaire._form import FormItem, FormModel, localized
from fhir_burnout.questionnaire._scope import (
    Expressions,
    Key,
    ResponseIndex,
    first_instance,
    index_response,
    repeating_group,
)

Answers = Mapping[str, Any]  # linkId -> [answer dicts] or, for repeating groups, [Answers]


def _node(item: FormItem, answers: Answers) -> list[dict[str, Any]]:
    given = answers.get(item.link_id)
    if item.type == "group":
        instances = given if item.repeats and isinstance(given, list) else [answers]
        nodes = []
        for instance in instances:
            children = [n for c in item.children for n in _node(c, instance)]
            if children:
                nodes.append({"linkId": item.link_id, "item": children})
        return nodes
    if not given:
        return []
    node: dict[str, Any] = {"linkId": item.link_id, "answer": [dict(a) for a in given]}
    children = [n for c in item.children for n in _node(c, answers)]
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
    context: dict[str, Any] = {"patient": dict(patient) if patient else []}
    expressions = Expressions(form, empty, index_response(form, empty), extra=context)
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
            key = first_instance(form, item.link_id)
            values = expressions.item(item.initial_expression, item.link_id, key)
            found = [a for v in values if (a := calculated_answer(item, [v])) is not None]
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
    keep_disabled: bool = False,
) -> dict[str, Any]:
    """A QuestionnaireResponse for ``answers``, without disabled items (unless
    ``keep_disabled``: to show a person which of their answers do not apply), scores
    included."""
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
    draft = {**response, "item": [n for i in form.items for n in _node(i, answers)]}
    if keep_disabled:
        response["item"] = draft["item"]
        return _score_in_place(form, response)
    index = index_response(form, draft)
    state = enablement(form, draft, index=index)
    response["item"] = _prune(form, draft["item"], (), index, state)
    return _score_in_place(form, response)


def _prune(
    form: FormModel,
    items: list[dict[str, Any]],
    key: Key,
    index: ResponseIndex,
    state: Enablement,
) -> list[dict[str, Any]]:
    """``items`` without what is disabled in its instance, and without emptied groups."""
    kept = []
    for node in items:
        link = str(node.get("linkId"))
        if (key, link) not in state.pairs:
            continue
        inner = index.opens.get(id(node), key)
        pruned = dict(node)
        if "item" in pruned:
            pruned["item"] = _prune(form, pruned["item"], inner, index, state)
            if not pruned["item"]:
                continue
        if "answer" in pruned:
            pruned["answer"] = [
                {**a, "item": _prune(form, a["item"], key, index, state)} if "item" in a else a
                for a in pruned["answer"]
            ]
            for answer in pruned["answer"]:
                if "item" in answer and not answer["item"]:
                    del answer["item"]
        kept.append(pruned)
    return kept


@dataclass(frozen=True)
class Score:
    """A calculated item's value and the band it falls in (if the questionnaire has bands).

    ``instance`` says which repeating-group instance it belongs to (``()``: the response).
    """

    link_id: str
    value: Decimal | None
    band: str | None
    label: str | None
    instance: Key = ()

    def stored(self) -> dict[str, Any]:
        """As the programme's state keeps it with a response (``workflow.submit_response``)."""
        return {"linkId": self.link_id, "value": float(self.value or 0), "band": self.band}


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


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    return Decimal(str(value))


def _as_number(value: Any, item_type: str, places: Decimal | None) -> int | float | None:
    number = _number(value)
    if number is None:
        return None
    if item_type == "integer":
        return int(number.quantize(Decimal(1), ROUND_HALF_UP))
    if places is not None:
        number = number.quantize(places, ROUND_HALF_UP)
    return float(number)  # FHIR JSON writes a decimal as a number


def _as_text(value: Any, item_type: str, places: Decimal | None) -> str | None:
    if isinstance(value, bool | dict | list) or value is None:
        return None
    text = str(value)
    if item_type in ("date", "dateTime", "time"):
        text = text.lstrip("@").lstrip("T")  # a FHIRPath literal: @2026-11-26, @T10:00
    return text or None


def _as_boolean(value: Any, item_type: str, places: Decimal | None) -> bool | None:
    return value if isinstance(value, bool) else None


def _as_coding(value: Any, item_type: str, places: Decimal | None) -> dict[str, Any] | None:
    return value if isinstance(value, dict) and "code" in value else None


def _as_quantity(value: Any, item_type: str, places: Decimal | None) -> dict[str, Any] | None:
    return value if isinstance(value, dict) and _number(value.get("value")) is not None else None


_CONVERT = {
    "integer": _as_number, "decimal": _as_number, "boolean": _as_boolean,
    "string": _as_text, "text": _as_text, "url": _as_text,
    "date": _as_text, "dateTime": _as_text, "time": _as_text,
    "choice": _as_coding, "open-choice": _as_coding, "quantity": _as_quantity,
}  # fmt: skip


def calculated_answer(
    item: FormItem, results: list[Any], *, places: Decimal | None = None
) -> dict[str, Any] | None:
    """The answer an item gets from an expression's result, in the item's type; decimals
    rounded to ``places`` when given. None when the result does not fit the item."""
    convert = _CONVERT.get(item.type)
    if not results or convert is None:
        return None
    value = convert(results[0], item.type, places)
    if value is None and item.type == "open-choice" and isinstance(results[0], str):
        return {"valueString": results[0]}
    return None if value is None else {_VALUE_KEYS[item.type]: value}


#: A calculated decimal is stored with two decimals: what a score is read with.
SCORE_PLACES = Decimal("0.01")


class _Placer:
    """Puts calculated answers into a response, in questionnaire order, creating the groups
    they sit in when the client has not answered anything there yet."""

    def __init__(self, form: FormModel, response: dict[str, Any], index: ResponseIndex) -> None:
        self.form = form
        self.response = response
        self.index = index
        self.holder: dict[int, list[dict[str, Any]]] = {}
        self._holders(response.setdefault("item", []))

    def _holders(self, items: list[dict[str, Any]]) -> None:
        for node in items:
            self.holder[id(node)] = items
            self._holders(node.get("item", []) or [])
            for answer in node.get("answer", []) or []:
                self._holders(answer.get("item", []) or [])

    def container(self, link: str, key: Key) -> list[dict[str, Any]] | None:
        """The list ``link``'s response item belongs in, in instance ``key``."""
        parent = self.form.parents.get(link)
        if parent is None:
            return self.response.setdefault("item", [])  # type: ignore[no-any-return]
        if repeating_group(self.form, parent):
            occurrences = self.index.nodes.get((key[:-1], parent), [])
            occurrence = key[-1][1]
            if occurrence >= len(occurrences):
                return None  # an instance nobody has filled in: nothing to put there
            return occurrences[occurrence].setdefault("item", [])  # type: ignore[no-any-return]
        node = self.index.node(key, parent)
        if self.form.index[parent].type != "group":
            answers = (node or {}).get("answer") or []
            return answers[0].setdefault("item", []) if answers else None
        if node is None:
            node = self.put(parent, key, {"linkId": parent, "item": []})
            if node is None:
                return None
        return node.setdefault("item", [])  # type: ignore[no-any-return]

    def put(self, link: str, key: Key, new: dict[str, Any]) -> dict[str, Any] | None:
        """Add or replace ``link``'s response item in instance ``key``."""
        old = self.index.node(key, link)
        if old is not None:
            holder = self.holder[id(old)]
            holder[holder.index(old)] = new
            self.index.nodes[(key, link)][0] = new
        else:
            found = self.container(link, key)
            if found is None:
                return None
            holder = found
            position = self.form.positions.get(link, 0)
            at = next(
                (
                    n
                    for n, sibling in enumerate(holder)
                    if self.form.positions.get(str(sibling.get("linkId")), 0) > position
                ),
                len(holder),
            )
            holder.insert(at, new)
            self.index.nodes[(key, link)] = [new]
        self.holder[id(new)] = holder
        return new

    def remove(self, link: str, key: Key) -> None:
        old = self.index.node(key, link)
        if old is not None:
            self.holder[id(old)].remove(old)
            del self.index.nodes[(key, link)]


def with_scores(form: FormModel, response: Mapping[str, Any]) -> dict[str, Any]:
    """The response with every calculated item's answer (re)computed, in every instance.

    A calculated item that is disabled gets no answer. Calculated items may use each other
    (never in a cycle: load_form refuses that), so this repeats until nothing changes, at
    most once per calculated item; usually twice in all.
    """
    return _score_in_place(form, copy.deepcopy(dict(response)))


def _score_in_place(form: FormModel, result: dict[str, Any]) -> dict[str, Any]:
    """``with_scores`` on a response of our own making, changed where it is."""
    calculated = [i for i in form.walk() if i.calculated_expression]
    if not calculated:
        return result
    for _ in range(len(calculated) + 1):
        index = index_response(form, result)
        expressions = Expressions(form, result, index)
        state = enablement(form, result, index=index, expressions=expressions)
        placer = _Placer(form, result, index)
        changed = False
        for item in calculated:
            assert item.calculated_expression is not None
            for key in _instances(form, item, index):
                answer = None
                if (key, item.link_id) in state.pairs:
                    found = expressions.item(item.calculated_expression, item.link_id, key)
                    answer = calculated_answer(item, found, places=SCORE_PLACES)
                node = index.node(key, item.link_id)
                if answer is None and node is not None:
                    placer.remove(item.link_id, key)
                    changed = True
                elif answer is not None and (node is None or node.get("answer") != [answer]):
                    kept = {k: v for k, v in (node or {}).items() if k not in ("answer", "item")}
                    placed = placer.put(
                        item.link_id, key, {"linkId": item.link_id, **kept, "answer": [answer]}
                    )
                    changed = changed or placed is not None
        if not changed:
            break
    return result


def _instances(form: FormModel, item: FormItem, index: ResponseIndex) -> list[Key]:
    group = form.scope_groups.get(item.link_id)
    return list(index.instances.get(group, [])) if group else [()]


def score(form: FormModel, response: Mapping[str, Any], *, current: bool = False) -> list[Score]:
    """Every numeric calculated item's value and band, per instance, for this response.
    ``current``: its calculated answers are already up to date (it comes from
    ``build_response`` or ``with_scores``), so they are read, not computed again."""
    scored = response if current else with_scores(form, response)
    index = index_response(form, scored)
    scores = []
    for item in form.walk():
        if not item.calculated_expression or item.type not in ("decimal", "integer"):
            continue
        for key in _instances(form, item, index):
            found = index.answers(key, item.link_id)
            value = _number(found[0][1]) if found else None
            if value is not None and value == value.to_integral_value():
                value = Decimal(int(value))  # 50.0 reads as 50
            band = _band(form, item, value) if value is not None else (None, None)
            scores.append(Score(item.link_id, value, *band, instance=key))
    return scores
