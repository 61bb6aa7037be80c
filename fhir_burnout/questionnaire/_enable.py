"""enableWhen (R4 Questionnaire.item.enableWhen) and SDC enableWhenExpression.

R4 semantics: ``exists`` compares "has an answer" with answerBoolean; ``=`` is true when at
least one answer equals the given answer, ``!=`` when at least one answer differs; the
orderings compare numbers, dates and times. No answer makes every operator but ``exists``
false. ``enableBehavior`` any/all combines conditions. An item under a disabled item is
disabled, and answers in disabled items do not count for other items' conditions (SDC).
Decided per repeating-group instance: a question is looked up in the item's own instance
first, then outwards (R4: "the nearest question occurrence"); enableWhenExpression is
evaluated with %context = the item's response item (see ``_scope``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from fhir_burnout.questionnaire._form import EnableCondition, FormModel
from fhir_burnout.questionnaire._scope import (
    Expressions,
    Key,
    ResponseIndex,
    group_of,
    index_response,
    outward,
    repeating_group,
)


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


def answer_values(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """linkId: the value of its first answer, for every answered item in ``items`` (a
    response's or a group's ``item``), depth first through groups; of a linkId that occurs
    more than once (a repeated group), the last occurrence's."""

    def walk(items: Sequence[Mapping[str, Any]]) -> Iterator[tuple[str, Any]]:
        for item in items:
            for answer in item.get("answer", []) or []:
                value = next((v for k, v in answer.items() if k.startswith("value")), None)
                if value is not None:
                    yield str(item.get("linkId")), value
                    break
            yield from walk(item.get("item", []) or [])

    return dict(walk(items))


def plain_number(value: Any) -> float | None:
    """An integer or decimal answer as a float; None for anything else (a boolean, text, a
    Coding), so a chart or a summary never draws what is not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    return float(value)


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


@dataclass(frozen=True)
class Enablement:
    """Which items are enabled, per repeating-group instance.

    ``instances`` lists each repeating group's instances, the response's own plus, for an
    enabled group nobody has filled in yet, one empty instance to render and to decide.
    """

    form: FormModel = field(repr=False)
    pairs: frozenset[tuple[Key, str]]
    instances: Mapping[str, tuple[Key, ...]]

    def enabled(self, link: str, key: Key = ()) -> bool:
        """Whether ``link`` is enabled in the instance ``key`` (or the one around it)."""
        return (sits_in(self.form, link, key), link) in self.pairs

    @property
    def links(self) -> set[str]:
        """The linkIds enabled in at least one instance."""
        return {link for _, link in self.pairs}


def sits_in(form: FormModel, link: str, key: Key) -> Key:
    """The instance, ``key`` or one around it, that holds ``link``'s response items."""
    wanted = form.scope_groups.get(link)
    return next((k for k in outward(key) if group_of(k) == wanted), ())


def enablement(
    form: FormModel,
    response: Mapping[str, Any],
    *,
    index: ResponseIndex | None = None,
    expressions: Expressions | None = None,
) -> Enablement:
    """Decide every item in every instance; one pass in ``form.enable_order``."""
    if index is None:
        index = index_response(form, response)
    if expressions is None:
        expressions = Expressions(form, dict(response), index)
    instances = {group: list(keys) for group, keys in index.instances.items()}
    pairs: set[tuple[Key, str]] = set()

    def answers_to(question: str, key: Key) -> list[tuple[str, Any]]:
        # The nearest occurrence: in this instance or one around it (R4 "ancestor axis").
        wanted = form.scope_groups.get(question)
        for k in outward(key):
            if group_of(k) == wanted:
                return index.answers(k, question) if (k, question) in pairs else []
        # Otherwise in another group's instances: those inside this one, else all of them.
        keys = [k for k in instances.get(wanted or "", []) if (k, question) in pairs]
        inside = [k for k in keys if k[: len(key)] == key]
        return [a for k in inside or keys for a in index.answers(k, question)]

    def decide(link: str, key: Key) -> bool:
        parent = form.parents.get(link)
        if parent is not None:
            parent_key = key[:-1] if repeating_group(form, parent) else key
            if (parent_key, parent) not in pairs:
                return False
        item = form.index[link]
        if item.enable_when_expression:
            own = (*key, (link, 0)) if repeating_group(form, link) else key
            result = expressions.item(item.enable_when_expression, link, own)
            return bool(result) and result[0] is True
        if not item.enable_when:
            return True
        outcomes = [condition_holds(c, answers_to(c.question, key)) for c in item.enable_when]
        return any(outcomes) if item.enable_behavior == "any" else all(outcomes)

    # enable_order puts every item after its parent and after the questions it reads, so
    # each decision can rely on theirs, and answers in disabled items are simply not seen.
    for link in form.enable_order:
        group = form.scope_groups.get(link)
        for key in list(instances.get(group, [])) if group else [()]:
            if not decide(link, key):
                continue
            pairs.add((key, link))
            if repeating_group(form, link) and not index.counts.get((key, link)):
                instances.setdefault(link, []).append((*key, (link, 0)))
    return Enablement(
        form, frozenset(pairs), {group: tuple(keys) for group, keys in instances.items()}
    )


def enabled_items(form: FormModel, response: Mapping[str, Any]) -> set[str]:
    """The linkIds enabled in at least one instance (linear in the items and answers)."""
    return enablement(form, response).links
