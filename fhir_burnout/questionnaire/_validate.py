"""Validating a QuestionnaireResponse against its Questionnaire, with messages for people.

Works on responses made by other systems too: every problem is reported with its linkId
and a message in Dutch and English. A required, enabled item without an answer is an
error only when the response claims to be ``completed`` (SDC); before that it is a warning.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from fhir_burnout.questionnaire._enable import as_number, enablement
from fhir_burnout.questionnaire._form import FormItem, FormModel
from fhir_burnout.questionnaire._scope import Key, ResponseIndex, index_response, repeating_group

#: The answer value[x] each item type takes (R4 Questionnaire.item.type).
ANSWER_TYPES: dict[str, frozenset[str]] = {
    "boolean": frozenset({"valueBoolean"}),
    "decimal": frozenset({"valueDecimal", "valueInteger"}),
    "integer": frozenset({"valueInteger"}),
    "date": frozenset({"valueDate"}),
    "dateTime": frozenset({"valueDateTime"}),
    "time": frozenset({"valueTime"}),
    "string": frozenset({"valueString"}),
    "text": frozenset({"valueString"}),
    "url": frozenset({"valueUri"}),
    "choice": frozenset({"valueCoding", "valueString", "valueInteger", "valueDate", "valueTime"}),
    "open-choice": frozenset(
        {"valueCoding", "valueString", "valueInteger", "valueDate", "valueTime"}
    ),
    "quantity": frozenset({"valueQuantity"}),
    "attachment": frozenset({"valueAttachment"}),
    "reference": frozenset({"valueReference"}),
}

MESSAGES = {
    "unknown": (
        "Deze vraag staat niet in de vragenlijst.",
        "This question is not in the questionnaire.",
    ),
    "required": ("Deze vraag moet je nog beantwoorden.", "This question still needs an answer."),
    "disabled": (
        "Deze vraag hoort niet bij je andere antwoorden. Haal je antwoord hier weg, of pas je"
        " eerdere antwoord aan.",
        "This question does not apply given your other answers. Remove your answer here, or"
        " change your earlier answer.",
    ),
    "type": ("Dit antwoord past niet bij de vraag.", "This answer does not fit the question."),
    "option": (
        "Kies een van de antwoorden die er staan.",
        "Please choose one of the answers given.",
    ),
    "low": (
        "Dit antwoord is te laag (minimaal {limit}).",
        "This answer is too low (at least {limit}).",
    ),
    "high": (
        "Dit antwoord is te hoog (maximaal {limit}).",
        "This answer is too high (at most {limit}).",
    ),
    "long": (
        "Dit antwoord is te lang (maximaal {limit} tekens).",
        "This answer is too long (at most {limit} characters).",
    ),
    "several": ("Geef hier één antwoord.", "Please give one answer here."),
    "no_answer_here": ("Hier hoort geen antwoord.", "No answer belongs here."),
    "group_repeats": ("Dit onderdeel mag maar één keer.", "This part may appear only once."),
}


@dataclass(frozen=True)
class ValidationIssue:
    """One problem in a response: where, how bad, and what to tell a person."""

    link_id: str
    severity: str  # error | warning
    code: str
    message_nl: str
    message_en: str
    #: the repeating-group instance it is in: ((group linkId, occurrence), ...); () if none
    instance: Key = ()
    #: FHIRPath to the item in the response
    expression: str = ""

    def message(self, lang: str) -> str:
        """The message in ``lang`` (Dutch unless English is asked for)."""
        return self.message_en if lang == "en" else self.message_nl

    def issue(self) -> dict[str, Any]:
        """As an OperationOutcome issue (linkId in expression)."""
        return {
            "severity": self.severity,
            "code": "required" if self.code == "required" else "invalid",
            "details": {"text": self.message_en},
            "diagnostics": self.message_nl,
            "expression": [
                self.expression or f"QuestionnaireResponse.item.where(linkId='{self.link_id}')"
            ],
        }


def _issue(link: str, code: str, severity: str = "error", **values: Any) -> ValidationIssue:
    nl, en = MESSAGES[code]
    return ValidationIssue(link, severity, code, nl.format(**values), en.format(**values))


def _path(form: FormModel, link: str, key: Key) -> str:
    """FHIRPath to ``link`` in instance ``key``: top-level items by ``item``, others found
    by ``repeat(item)`` inside each repeating-group occurrence around them."""
    if not key and link not in form.parents:
        return f"QuestionnaireResponse.item.where(linkId='{link}')"
    steps = "".join(f".repeat(item).where(linkId='{g}')[{n}]" for g, n in key)
    return f"QuestionnaireResponse{steps}.repeat(item).where(linkId='{link}')"


def _at(issue: ValidationIssue, form: FormModel, key: Key) -> ValidationIssue:
    return replace(issue, instance=key, expression=_path(form, issue.link_id, key))


_DATE = r"-?[0-9]{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01]))?)?"
_TIME = r"([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?"
#: The R4 regular expressions for the primitive types an answer can have.
_FORMATS = {
    "valueDate": re.compile(_DATE),
    "valueDateTime": re.compile(
        _DATE + r"(T" + _TIME + r"(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?"
    ),
    "valueTime": re.compile(_TIME),
    "valueUri": re.compile(r"\S*"),
}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


#: What the JSON value of each answer type must look like (beyond being present).
_SHAPES: dict[str, Callable[[Any], bool]] = {
    "valueBoolean": lambda v: isinstance(v, bool),
    "valueInteger": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "valueDecimal": _is_number,
    "valueCoding": lambda v: isinstance(v, Mapping) and bool(v.get("code") or v.get("display")),
    "valueQuantity": lambda v: isinstance(v, Mapping) and _is_number(v.get("value")),
    "valueAttachment": lambda v: isinstance(v, Mapping),
    "valueReference": lambda v: isinstance(v, Mapping),
}


def _well_formed(key: str, value: Any) -> bool:
    """Whether an answer's value has the JSON shape and format its type demands."""
    shape = _SHAPES.get(key)
    if shape is not None:
        return bool(shape(value))
    if not isinstance(value, str) or not value:  # FHIR has no empty strings
        return False
    pattern = _FORMATS.get(key)
    return pattern is None or pattern.fullmatch(value) is not None


def _in_options(item: FormItem, key: str, value: Any) -> bool:
    if not item.options:
        return True  # options come from elsewhere (an unavailable value set): cannot check
    for option in item.options:
        if option.value_type == "coding" and key == "valueCoding" and isinstance(value, Mapping):
            wanted = option.value
            same_system = not wanted.get("system") or wanted.get("system") == value.get("system")
            if same_system and wanted.get("code") == value.get("code"):
                return True
        elif f"value{option.value_type.capitalize()}" == key and option.value == value:
            return True
    return item.type == "open-choice" and key == "valueString"


def _comparable(value: Any, limit: Any) -> tuple[Any, Any] | None:
    number, bound = as_number(value), as_number(limit)
    if number is not None and bound is not None:
        return number, bound
    if isinstance(value, str) and isinstance(limit, str):
        return value, limit  # ISO dates and times compare as text
    return None


def _range_issues(item: FormItem, value: Any) -> list[ValidationIssue]:
    found = []
    if item.min_value is not None:
        pair = _comparable(value, item.min_value)
        if pair is not None and pair[0] < pair[1]:
            found.append(_issue(item.link_id, "low", limit=item.min_value))
    if item.max_value is not None:
        pair = _comparable(value, item.max_value)
        if pair is not None and pair[0] > pair[1]:
            found.append(_issue(item.link_id, "high", limit=item.max_value))
    return found


def _answer_issues(item: FormItem, answers: list[Mapping[str, Any]]) -> list[ValidationIssue]:
    found: list[ValidationIssue] = []
    if item.type in ("group", "display"):
        return [_issue(item.link_id, "no_answer_here")] if answers else []
    if len(answers) > 1 and not item.repeats:
        found.append(_issue(item.link_id, "several"))
    allowed = ANSWER_TYPES.get(item.type, frozenset())
    for answer in answers:
        key = next((k for k in answer if k.startswith("value")), None)
        if key is None or key not in allowed:
            found.append(_issue(item.link_id, "type"))
            continue
        value = answer[key]
        if not _well_formed(key, value):
            found.append(_issue(item.link_id, "type"))
            continue
        if item.type in ("choice", "open-choice") and not _in_options(item, key, value):
            found.append(_issue(item.link_id, "option"))
        if item.max_length and isinstance(value, str) and len(value) > item.max_length:
            found.append(_issue(item.link_id, "long", limit=item.max_length))
        found += _range_issues(item, value)
    return found


def _second_occurrences(form: FormModel, items: list[Any]) -> set[int]:
    """id() of every item that repeats a linkId among its siblings (a repeating group may)."""
    found: set[int] = set()
    seen: set[str] = set()
    for node in items:
        if not isinstance(node, Mapping):
            continue
        link = str(node.get("linkId"))
        if link in seen and not repeating_group(form, link):
            found.add(id(node))
        seen.add(link)
        found |= _second_occurrences(form, list(node.get("item", []) or []))
        for answer in node.get("answer", []) or []:
            if isinstance(answer, Mapping):
                found |= _second_occurrences(form, list(answer.get("item", []) or []))
    return found


def _applies(form: FormModel, link: str, key: Key, index: ResponseIndex) -> bool:
    """Whether a required ``link`` must be answered in ``key``: not inside a repeating group
    occurrence nobody started, nor under the answer of a question left open."""
    parent = form.parents.get(link)
    while parent is not None:
        if repeating_group(form, parent):
            return key in index.instances.get(parent, [])
        if form.index[parent].type != "group":
            return bool(index.answers(key, parent))
        parent = form.parents.get(parent)
    return True


def validate(form: FormModel, response: Mapping[str, Any]) -> list[ValidationIssue]:
    """Every problem of ``response`` against the questionnaire of ``form``, per instance of
    a repeating group (each occurrence is checked on its own)."""
    issues: list[ValidationIssue] = []
    index = index_response(form, response)
    state = enablement(form, response, index=index)
    completed = response.get("status") == "completed"
    twice = _second_occurrences(form, list(response.get("item", []) or []))
    for key, raw in index.order:
        link = str(raw.get("linkId"))
        item = form.index.get(link)
        if item is None:
            issues.append(_at(_issue(link, "unknown"), form, key))
            continue
        found: list[ValidationIssue] = []
        if id(raw) in twice:
            found.append(_issue(link, "group_repeats"))
        answers = list(raw.get("answer", []) or [])
        if answers and (key, link) not in state.pairs:
            found.append(_issue(link, "disabled"))
        found += _answer_issues(item, answers)
        issues += [_at(i, form, key) for i in found]
    for item in form.walk():
        if not item.required or item.type == "display":
            continue
        group = form.scope_groups.get(item.link_id)
        for key in state.instances.get(group, ()) if group else [()]:
            if (key, item.link_id) not in state.pairs or index.nodes.get((key, item.link_id)):
                continue
            if _applies(form, item.link_id, key, index):
                missing = _issue(item.link_id, "required", "error" if completed else "warning")
                issues.append(_at(missing, form, key))
    return issues
