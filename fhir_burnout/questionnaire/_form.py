"""From a Questionnaire (R4 JSON) to a form model a template can render and tests can inspect.

Works on the JSON itself, not on fhir.resources models: those refuse some valid R4
questionnaires (a primitive extension on Extension.value[x], SDC variable names with
underscores), and the engine must load every valid questionnaire. A broken questionnaire
raises one :class:`QuestionnaireError` listing every problem, at load time.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import nh3

from fhir_burnout.questionnaire._errors import QuestionnaireError
from fhir_burnout.questionnaire._fhirpath import answer_weights, check_syntax, evaluate

SDC = "http://hl7.org/fhir/uv/sdc/StructureDefinition/"
CORE = "http://hl7.org/fhir/StructureDefinition/"
TRANSLATION = CORE + "translation"

SUPPORTED_TYPES = frozenset(
    {
        "group", "display", "boolean", "decimal", "integer", "date", "dateTime", "time",
        "string", "text", "url", "choice", "open-choice", "quantity",
    }
)  # fmt: skip
UNSUPPORTED_TYPES = {
    "attachment": "file uploads are not supported in this app",
    "reference": "references to other records are not supported in this app",
}
OPERATORS = frozenset({"exists", "=", "!=", ">", "<", ">=", "<="})
OPTION_TYPES = ("valueCoding", "valueString", "valueInteger", "valueDate", "valueTime")


@dataclass(frozen=True)
class AnswerOption:
    """One choice: its value (a Coding dict or a primitive), label, weight, preselection."""

    value_type: str
    value: Any
    label: str
    initial_selected: bool = False
    weight: Decimal | None = None


@dataclass(frozen=True)
class EnableCondition:
    """One enableWhen: the question's linkId, the operator and the answer to compare with."""

    question: str
    operator: str
    answer_type: str
    answer: Any


@dataclass(frozen=True)
class FormItem:
    """One item, with everything a renderer and the validator need."""

    link_id: str
    type: str
    text: str = ""
    prefix: str | None = None
    markdown: str | None = None
    xhtml: str | None = None  # rendering-xhtml, sanitised: safe to insert as HTML
    required: bool = False
    repeats: bool = False
    read_only: bool = False
    hidden: bool = False
    max_length: int | None = None
    control: str | None = None
    min_value: Any = None
    max_value: Any = None
    slider_step: Decimal | None = None
    unit: dict[str, Any] | None = None
    entry_format: str | None = None
    options: tuple[AnswerOption, ...] = ()
    options_unavailable: str | None = None
    initial: tuple[tuple[str, Any], ...] = ()
    enable_when: tuple[EnableCondition, ...] = ()
    enable_behavior: str = "all"
    enable_when_expression: str | None = None
    calculated_expression: str | None = None
    initial_expression: str | None = None
    #: SDC item-level variables (name, FHIRPath), in scope for this item and its descendants.
    variables: tuple[tuple[str, str], ...] = ()
    unsupported: str | None = None
    children: tuple[FormItem, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class FormModel:
    """A loaded Questionnaire: items, the language it was loaded in, and an index by linkId."""

    url: str | None
    version: str | None
    title: str
    lang: str
    items: tuple[FormItem, ...]
    variables: tuple[tuple[str, str], ...]
    questionnaire: Mapping[str, Any] = field(repr=False, compare=False)
    index: Mapping[str, FormItem] = field(default_factory=dict, repr=False, compare=False)
    #: linkIds in an order where every item comes after its parent and the questions its
    #: enableWhen reads, so one pass decides what is enabled.
    enable_order: tuple[str, ...] = field(default=(), repr=False, compare=False)
    parents: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    weights: Mapping[tuple[str | None, str], Decimal] = field(
        default_factory=dict, repr=False, compare=False
    )
    #: linkId -> the nearest repeating group around the item (absent: the response itself).
    scope_groups: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    #: linkId -> its place among its siblings, to keep a response in questionnaire order.
    positions: Mapping[str, int] = field(default_factory=dict, repr=False, compare=False)

    @property
    def canonical(self) -> str | None:
        """``url|version`` for QuestionnaireResponse.questionnaire."""
        if not self.url:
            return None
        return f"{self.url}|{self.version}" if self.version else self.url

    def walk(self) -> Iterator[FormItem]:
        """Every item, depth first, in document order."""

        def visit(items: tuple[FormItem, ...]) -> Iterator[FormItem]:
            for item in items:
                yield item
                yield from visit(item.children)

        yield from visit(self.items)


def _ext(element: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    for ext in element.get("extension", []) or []:
        url = str(ext.get("url", ""))
        if url in (SDC + name, CORE + name):
            return dict(ext)
    return None


def _ext_value(element: Mapping[str, Any], name: str) -> Any:
    ext = _ext(element, name)
    if ext is None:
        return None
    return next((v for k, v in ext.items() if k.startswith("value")), None)


def localized(element: Mapping[str, Any], key: str, lang: str, primary: str) -> str:
    """``element[key]`` in ``lang`` via the translation extension on ``_key``; else as written."""
    value = element.get(key)
    if value is None:
        return ""
    if lang != primary:
        for ext in (element.get("_" + key) or {}).get("extension", []):
            if ext.get("url") != TRANSLATION:
                continue
            parts = {e.get("url"): e for e in ext.get("extension", [])}
            if parts.get("lang", {}).get("valueCode") == lang:
                return str(parts.get("content", {}).get("valueString", value))
    return str(value)


#: What an item's XHTML may keep: text structure, emphasis, lists and links (https only).
SAFE_TAGS = frozenset(
    {"p", "br", "b", "strong", "i", "em", "u", "ul", "ol", "li", "a", "span", "sub", "sup"}
)


def sanitise_xhtml(html: str) -> str:
    """Item text from rendering-xhtml with scripts, handlers, styles and unsafe links removed."""
    return nh3.clean(
        html,
        tags=set(SAFE_TAGS),
        attributes={"a": {"href"}},
        url_schemes={"https", "mailto", "tel"},
        link_rel="noopener noreferrer",
    )


def _control(item: Mapping[str, Any]) -> str | None:
    concept = _ext_value(item, "questionnaire-itemControl")
    if isinstance(concept, Mapping):
        for coding in concept.get("coding", []):
            if coding.get("code"):
                return str(coding["code"])
    return None


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float | Decimal | str):
        try:
            return Decimal(str(value))
        except ArithmeticError:
            return None
    return None


def _expression(item: Mapping[str, Any], name: str) -> str | None:
    value = _ext_value(item, name)
    if isinstance(value, Mapping) and value.get("expression"):
        return str(value["expression"])
    return None


class _Loader:
    def __init__(
        self,
        questionnaire: Mapping[str, Any],
        lang: str,
        value_sets: Mapping[str, Mapping[str, Any]],
    ) -> None:
        self.q = questionnaire
        self.lang = lang
        self.primary = str(questionnaire.get("language") or "nl")
        self.problems: list[tuple[str, str]] = []
        self.seen: dict[str, FormItem] = {}
        contained = {
            f"#{r['id']}": r
            for r in questionnaire.get("contained", []) or []
            if r.get("resourceType") == "ValueSet" and r.get("id")
        }
        self.value_sets: dict[str, Mapping[str, Any]] = {**dict(value_sets), **contained}

    def text(self, element: Mapping[str, Any], key: str) -> str:
        return localized(element, key, self.lang, self.primary)

    def options(
        self, item: Mapping[str, Any], link: str
    ) -> tuple[tuple[AnswerOption, ...], str | None]:
        found = []
        for raw in item.get("answerOption", []) or []:
            key = next((k for k in OPTION_TYPES if k in raw), None)
            if key is None:
                self.problems.append((link, "an answer option has no supported value"))
                continue
            value = raw[key]
            if key == "valueCoding":
                label = localized(value, "display", self.lang, self.primary) or str(
                    value.get("code", "")
                )
            else:
                label = self.text(raw, key)
            weight = _decimal(_ext_value(raw, "itemWeight"))
            if weight is None and key == "valueCoding":
                weight = _decimal(_ext_value(value, "ordinalValue"))
            found.append(
                AnswerOption(
                    key[5:].lower(), value, label, bool(raw.get("initialSelected")), weight
                )
            )
        reference = item.get("answerValueSet")
        if reference and not found:
            return self.expanded(str(reference))
        return tuple(found), None

    def expanded(self, reference: str) -> tuple[tuple[AnswerOption, ...], str | None]:
        # Never fetched while rendering: only a contained or packaged expansion is used.
        unversioned = reference.split("|", maxsplit=1)[0]
        vs = self.value_sets.get(reference) or self.value_sets.get(unversioned)
        contains = (vs or {}).get("expansion", {}).get("contains")
        if not contains:
            return (), "options unavailable: the value set is not available offline"
        options = []
        for c in contains:
            coding = {k: c[k] for k in ("system", "version", "code", "display") if k in c}
            label = str(c.get("display") or c.get("code"))
            for d in c.get("designation", []):
                if d.get("language") == self.lang and d.get("value"):
                    label = str(d["value"])
            options.append(AnswerOption("coding", coding, label))
        return tuple(options), None

    def variables(self, element: Mapping[str, Any], link: str) -> tuple[tuple[str, str], ...]:
        found = []
        for ext in element.get("extension", []) or []:
            if ext.get("url") != CORE + "variable":
                continue
            expression = ext.get("valueExpression") or {}
            name, text = expression.get("name"), expression.get("expression")
            language = expression.get("language", "text/fhirpath")
            if not name or not (text or expression.get("reference")):
                self.problems.append((link, "a variable needs a name and an expression"))
            elif language != "text/fhirpath":
                # x-fhir-query or CQL: never fetched or run while rendering, so it is empty.
                found.append((str(name), "{}"))
            else:
                found.append((str(name), str(text)))
        return tuple(found)

    def item(self, raw: Mapping[str, Any], path: str) -> FormItem:
        link = str(raw.get("linkId") or "")
        if not link:
            self.problems.append((path, "an item has no linkId"))
        elif link in self.seen:
            self.problems.append((link, "linkId is used twice"))
        item_type = str(raw.get("type", ""))
        unsupported = UNSUPPORTED_TYPES.get(item_type)
        if item_type not in SUPPORTED_TYPES and unsupported is None:
            self.problems.append((link, f"unknown item type {item_type!r}"))
        conditions = []
        for cond in raw.get("enableWhen", []) or []:
            operator = str(cond.get("operator", ""))
            if operator not in OPERATORS:
                self.problems.append((link, f"enableWhen has an unknown operator {operator!r}"))
            answer_key = next((k for k in cond if k.startswith("answer")), None)
            if answer_key is None:
                self.problems.append((link, "enableWhen has no answer to compare with"))
                continue
            conditions.append(
                EnableCondition(
                    str(cond.get("question", "")), operator, answer_key[6:], cond[answer_key]
                )
            )
        options, unavailable = self.options(raw, link)
        initial = tuple(
            (k[5:].lower(), v)
            for i in raw.get("initial", []) or []
            for k, v in i.items()
            if k.startswith("value")
        )
        markdown = None
        rendering = _ext(raw.get("_text") or {}, "rendering-markdown")
        if rendering:
            markdown = str(rendering.get("valueMarkdown", "")) or None
        xhtml = None
        rendering = _ext(raw.get("_text") or {}, "rendering-xhtml")
        if rendering and rendering.get("valueString"):
            xhtml = sanitise_xhtml(str(rendering["valueString"]))
        unit = _ext_value(raw, "questionnaire-unit")
        children = tuple(self.item(child, f"{path}.item") for child in raw.get("item", []) or [])
        item = FormItem(
            link_id=link,
            type=item_type,
            text=self.text(raw, "text"),
            prefix=raw.get("prefix"),
            markdown=markdown,
            xhtml=xhtml,
            required=bool(raw.get("required", False)),
            repeats=bool(raw.get("repeats", False)),
            read_only=bool(raw.get("readOnly", False)),
            hidden=bool(_ext_value(raw, "questionnaire-hidden")),
            max_length=raw.get("maxLength"),
            control=_control(raw),
            min_value=_ext_value(raw, "minValue"),
            max_value=_ext_value(raw, "maxValue"),
            slider_step=_decimal(_ext_value(raw, "questionnaire-sliderStepValue")),
            unit=dict(unit) if isinstance(unit, Mapping) else None,
            entry_format=_ext_value(raw, "entryFormat"),
            options=options,
            options_unavailable=unavailable,
            initial=initial,
            enable_when=tuple(conditions),
            enable_behavior=str(raw.get("enableBehavior", "all")),
            enable_when_expression=_expression(raw, "sdc-questionnaire-enableWhenExpression"),
            calculated_expression=_expression(raw, "sdc-questionnaire-calculatedExpression"),
            initial_expression=_expression(raw, "sdc-questionnaire-initialExpression"),
            variables=self.variables(raw, link),
            unsupported=unsupported,
            children=children,
            raw=raw,
        )
        if link:
            self.seen.setdefault(link, item)
        return item


_LINK_ID_IN_EXPRESSION = re.compile(r"linkId\s*(?:=|in)\s*\(?\s*((?:'[^']*'\s*\|?\s*)+)\)?")


def _referenced_links(expression: str) -> set[str]:
    found: set[str] = set()
    for group in _LINK_ID_IN_EXPRESSION.findall(expression):
        found |= set(re.findall(r"'([^']*)'", group))
    return found


#: Variables every expression may use: SDC's, and the launch context a form may be given.
BUILT_IN_VARIABLES = frozenset(
    {"resource", "context", "questionnaire", "rootResource", "ucum", "sct", "loinc",
     "patient", "encounter", "location", "user", "study"}
)  # fmt: skip


def _launch_context_names(questionnaire: Mapping[str, Any]) -> set[str]:
    names = set()
    for ext in questionnaire.get("extension", []) or []:
        if str(ext.get("url", "")).endswith("sdc-questionnaire-launchContext"):
            for part in ext.get("extension", []) or []:
                if part.get("url") == "name":
                    code = (part.get("valueCoding") or {}).get("code") or part.get("valueId")
                    if code:
                        names.add(str(code))
    return names


def _check_expressions(
    items: tuple[FormItem, ...],
    known: dict[str, list[Any]],
    problems: list[tuple[str, str]],
) -> None:
    """Every expression must parse and run on an empty response with the variables in
    scope: a typo or an undefined %name is found now, not while the client fills the form."""
    empty = {"resourceType": "QuestionnaireResponse", "status": "in-progress"}
    for item in items:
        scope = dict(known)
        named = [(f"variable {name!r}", text, name) for name, text in item.variables]
        others = [
            ("calculatedExpression", item.calculated_expression, None),
            ("enableWhenExpression", item.enable_when_expression, None),
            ("initialExpression", item.initial_expression, None),
        ]
        for what, text, name in [*named, *others]:
            if text is None:
                continue
            problem = check_syntax(text)
            if problem is None:
                try:
                    evaluate(text, empty, {}, scope, {}, context={"linkId": item.link_id})
                except Exception as exc:  # fhirpathpy raises bare Exception
                    undefined = re.search(r"undefined environment variable: (\S+)", str(exc))
                    problem = f"%{undefined[1]} is not defined" if undefined else str(exc)
            if problem is not None:
                problems.append((item.link_id, f"{what} is not valid FHIRPath: {problem}"))
            if name is not None:
                scope[name] = []
        _check_expressions(item.children, scope, problems)


def _check_cycles(index: Mapping[str, FormItem], problems: list[tuple[str, str]]) -> None:
    """A calculated item must not depend, through other calculated items, on itself."""
    graph = {
        link: _referenced_links(item.calculated_expression) & set(index)
        for link, item in index.items()
        if item.calculated_expression
    }
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycle = [*trail[trail.index(nxt) :], nxt] if nxt in trail else [node, nxt]
                problems.append(
                    (node, f"calculated expressions form a cycle: {' -> '.join(cycle)}")
                )
            elif nxt in graph and state.get(nxt) is None:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for node in sorted(graph):
        if state.get(node) is None:
            visit(node, [node])


def _structure(
    items: tuple[FormItem, ...],
    parent: FormItem | None,
    scope: str | None,
    out: tuple[dict[str, str], dict[str, str], dict[str, int]],
) -> None:
    parents, scope_groups, positions = out
    for position, item in enumerate(items):
        positions[item.link_id] = position
        if parent is not None:
            parents[item.link_id] = parent.link_id
        if scope is not None:
            scope_groups[item.link_id] = scope
        inner = item.link_id if item.type == "group" and item.repeats else scope
        _structure(item.children, item, inner, out)


def _enable_order(
    index: Mapping[str, FormItem], parents: Mapping[str, str], problems: list[tuple[str, str]]
) -> tuple[str, ...]:
    """Depth-first topological order over 'parent of' and 'enableWhen reads' edges."""
    order: list[str] = []
    state: dict[str, int] = {}
    for start in index:
        if start in state:
            continue
        stack: list[tuple[str, int]] = [(start, 0)]
        state[start] = 1
        while stack:
            node, i = stack.pop()
            item = index[node]
            deps = [c.question for c in item.enable_when if c.question in index]
            if node in parents:
                deps.append(parents[node])
            if i < len(deps):
                stack.append((node, i + 1))
                dep = deps[i]
                if state.get(dep) == 1:
                    problems.append((node, f"enableWhen conditions form a cycle through {dep!r}"))
                elif dep not in state:
                    state[dep] = 1
                    stack.append((dep, 0))
            else:
                state[node] = 2
                order.append(node)
    return tuple(order)


def load_form(
    questionnaire: Mapping[str, Any],
    *,
    lang: str | None = None,
    value_sets: Mapping[str, Mapping[str, Any]] | None = None,
) -> FormModel:
    """The form model of a Questionnaire in ``lang``; raises QuestionnaireError when broken."""
    if questionnaire.get("resourceType") != "Questionnaire":
        raise QuestionnaireError([("", "this is not a FHIR Questionnaire")])
    primary = str(questionnaire.get("language") or "nl")
    loader = _Loader(questionnaire, lang or primary, value_sets or {})
    items = tuple(loader.item(raw, "item") for raw in questionnaire.get("item", []) or [])
    index = loader.seen
    for item in index.values():
        for cond in item.enable_when:
            if cond.question not in index:
                loader.problems.append(
                    (item.link_id, f"enableWhen points at {cond.question!r}, which does not exist")
                )
    _check_cycles(index, loader.problems)
    parents: dict[str, str] = {}
    scope_groups: dict[str, str] = {}
    positions: dict[str, int] = {}
    _structure(items, None, None, (parents, scope_groups, positions))
    order = _enable_order(index, parents, loader.problems)
    variables = loader.variables(questionnaire, "")
    known: dict[str, list[Any]] = {
        name: [] for name in BUILT_IN_VARIABLES | _launch_context_names(questionnaire)
    }
    for name, text in variables:
        problem = check_syntax(text)
        if problem is not None:
            loader.problems.append(("", f"variable {name!r} is not valid FHIRPath: {problem}"))
        known[name] = []
    _check_expressions(items, known, loader.problems)
    if loader.problems:
        raise QuestionnaireError(loader.problems)
    return FormModel(
        url=questionnaire.get("url"),
        version=questionnaire.get("version"),
        title=localized(questionnaire, "title", lang or primary, primary),
        lang=lang or primary,
        items=items,
        variables=variables,
        questionnaire=questionnaire,
        index=index,
        enable_order=order,
        parents=parents,
        weights=answer_weights(dict(questionnaire)),
        scope_groups=scope_groups,
        positions=positions,
    )
