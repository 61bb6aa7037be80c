"""The response as the engine reads it: every item in the repeating-group instance it sits in.

A repeating group's children occur once per instance of the group, and R4 resolves an
enableWhen question to "the nearest occurrence", first along the ancestors. So answers,
enablement and item-level expressions are kept per *instance*: a key of (group linkId,
occurrence) pairs from the outside in, ``()`` being the response itself. An item's
instance is the one of its nearest repeating group (``FormModel.scope_groups``).

Item-level SDC expressions are evaluated with ``%context`` = the item's response item in
its instance (an empty stand-in when the item has no answer yet), and see the
questionnaire's variables, then those of each ancestor, then their own, as SDC scopes them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from fhir_burnout.questionnaire._fhirpath import evaluate
from fhir_burnout.questionnaire._form import FormModel

#: A repeating-group instance: ((group linkId, occurrence), ...) from the outside in.
Key = tuple[tuple[str, int], ...]


@dataclass
class ResponseIndex:
    """A response's items by (instance, linkId), built in one pass over the response."""

    nodes: dict[tuple[Key, str], list[dict[str, Any]]] = field(default_factory=dict)
    #: repeating group linkId -> the keys of its instances, in response order
    instances: dict[str, list[Key]] = field(default_factory=dict)
    #: id(response item of a repeating group) -> the key of the instance it opens
    opens: dict[int, Key] = field(default_factory=dict)
    #: (key, repeating group linkId) -> how many instances it has there
    counts: dict[tuple[Key, str], int] = field(default_factory=dict)
    #: (instance, response item) pairs in document order, unknown linkIds included
    order: list[tuple[Key, dict[str, Any]]] = field(default_factory=list)

    def answers(self, key: Key, link: str) -> list[tuple[str, Any]]:
        """The answers to ``link`` in instance ``key`` as (type, value)."""
        return [
            (name[5:], value)
            for node in self.nodes.get((key, link), [])
            for answer in node.get("answer", []) or []
            for name, value in answer.items()
            if name.startswith("value")
        ]

    def node(self, key: Key, link: str) -> dict[str, Any] | None:
        """The first response item for ``link`` in instance ``key``."""
        found = self.nodes.get((key, link))
        return found[0] if found else None


def index_response(form: FormModel, response: Mapping[str, Any]) -> ResponseIndex:
    """Index every item of ``response`` by the repeating-group instance it belongs to."""
    index = ResponseIndex()

    def walk(items: list[dict[str, Any]], key: Key) -> None:
        for node in items:
            if not isinstance(node, dict):
                continue
            link = str(node.get("linkId"))
            index.nodes.setdefault((key, link), []).append(node)
            index.order.append((key, node))
            item = form.index.get(link)
            inner = key
            if item is not None and item.type == "group" and item.repeats:
                occurrence = index.counts.get((key, link), 0)
                index.counts[(key, link)] = occurrence + 1
                inner = (*key, (link, occurrence))
                index.instances.setdefault(link, []).append(inner)
                index.opens[id(node)] = inner
            walk(list(node.get("item", []) or []), inner)
            for answer in node.get("answer", []) or []:
                if isinstance(answer, dict):
                    walk(list(answer.get("item", []) or []), key)

    walk(list(response.get("item", []) or []), ())
    return index


def group_of(key: Key) -> str | None:
    """The repeating group whose instance ``key`` is (None for the response itself)."""
    return key[-1][0] if key else None


def outward(key: Key) -> Iterator[Key]:
    """``key`` and each enclosing instance, out to the response itself."""
    for size in range(len(key), -1, -1):
        yield key[:size]


def repeating_group(form: FormModel, link: str) -> bool:
    """Whether ``link`` is a group that repeats (each occurrence opens an instance)."""
    item = form.index.get(link)
    return item is not None and item.type == "group" and item.repeats


def instance_of(form: FormModel, link: str, key: Key) -> Key:
    """The instance, ``key`` or one around it, that ``link``'s expressions are evaluated in:
    for a repeating group one of its own instances, for any other item its group's."""
    wanted = link if repeating_group(form, link) else form.scope_groups.get(link)
    return next((k for k in outward(key) if group_of(k) == wanted), ())


def first_instance(form: FormModel, link: str) -> Key:
    """The key of ``link``'s first instance: occurrence 0 of each repeating group around it
    (and of itself, for a repeating group)."""
    groups = []
    group = link if repeating_group(form, link) else form.scope_groups.get(link)
    while group is not None:
        groups.append((group, 0))
        group = form.scope_groups.get(group)
    return tuple(reversed(groups))


class Expressions:
    """Item-level SDC expressions over one response, with variables evaluated once each."""

    def __init__(
        self,
        form: FormModel,
        response: dict[str, Any],
        index: ResponseIndex,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.form = form
        self.response = response
        self.index = index
        self.questionnaire = dict(form.questionnaire)
        self.weights = dict(form.weights)
        self.memo: dict[tuple[Key, str], dict[str, Any]] = {}
        self.failures: list[tuple[str, str]] = []
        self.top = dict(extra or {})
        for name, expression in form.variables:
            self.top[name] = self.run(expression, self.top, None, raw=True)

    def run(
        self,
        expression: str,
        variables: Mapping[str, Any],
        context: dict[str, Any] | None,
        *,
        raw: bool = False,
    ) -> list[Any]:
        try:
            return evaluate(
                expression,
                self.response,
                self.questionnaire,
                dict(variables),
                self.weights,
                context=context,
                raw=raw,
            )
        except Exception as exc:  # fhirpathpy raises bare Exception
            # load_form ran every expression once; what fails now fails on these answers
            # (a type clash, say). The form must go on: the item gets no value, and the
            # failure is kept for the caller, without the answers themselves.
            self.failures.append((str((context or {}).get("linkId", "")), type(exc).__name__))
            return []

    def context(self, link: str, key: Key) -> dict[str, Any]:
        """``%context`` for an item: its response item here, or an empty stand-in."""
        if repeating_group(self.form, link) and group_of(key) == link:
            nodes = self.index.nodes.get((key[:-1], link), [])
            occurrence = key[-1][1]
            if occurrence < len(nodes):
                return nodes[occurrence]
            return {"linkId": link}
        return self.index.node(key, link) or {"linkId": link}

    def variables(self, link: str, key: Key) -> dict[str, Any]:
        """The variables an expression on item ``link`` in instance ``key`` can use."""
        memo_key = (key, link)
        if memo_key in self.memo:
            return self.memo[memo_key]
        parent = self.form.parents.get(link)
        if parent is None:
            inherited = self.top
        else:
            inherited = self.variables(parent, instance_of(self.form, parent, key))
        own = self.form.index[link].variables
        if not own:
            self.memo[memo_key] = inherited
            return inherited
        values = dict(inherited)
        context = self.context(link, key)
        for name, expression in own:
            values[name] = self.run(expression, values, context, raw=True)
        self.memo[memo_key] = values
        return values

    def item(self, expression: str, link: str, key: Key) -> list[Any]:
        """An item's expression, evaluated in instance ``key`` of that item."""
        return self.run(expression, self.variables(link, key), self.context(link, key))
