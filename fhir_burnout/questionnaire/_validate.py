"""Validating a QuestionnaireResponse against its Questionnaire, with messages for people.

Works on responses made by other systems too: every problem is reported with its linkId
and a message in Dutch and English. A required, enabled item without an answer is an
error only when the response claims to be ``completed`` (SDC); before that it is a warning.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from fhir_burnout.questionnaire._enable import as_number, enabled_items
from fhir_burnout.questionnaire._form import FormItem, FormModel

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
        "Deze vraag hoort nu niet beantwoord te worden, maar heeft wel een antwoord.",
        "This question does not apply now, yet it has an answer.",
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
            "expression": [f"QuestionnaireResponse.item.where(linkId='{self.link_id}')"],
        }


def _issue(link: str, code: str, severity: str = "error", **values: Any) -> ValidationIssue:
    nl, en = MESSAGES[code]
    return ValidationIssue(link, severity, code, nl.format(**values), en.format(**values))


def _response_items(items: list[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    for item in items:
        yield item
        yield from _response_items(list(item.get("item", []) or []))
        for answer in item.get("answer", []) or []:
            yield from _response_items(list(answer.get("item", []) or []))


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
        if item.type in ("choice", "open-choice") and not _in_options(item, key, value):
            found.append(_issue(item.link_id, "option"))
        if item.max_length and isinstance(value, str) and len(value) > item.max_length:
            found.append(_issue(item.link_id, "long", limit=item.max_length))
        found += _range_issues(item, value)
    return found


def validate(form: FormModel, response: Mapping[str, Any]) -> list[ValidationIssue]:
    """Every problem of ``response`` against the questionnaire of ``form``."""
    issues: list[ValidationIssue] = []
    enabled = enabled_items(form, response)
    completed = response.get("status") == "completed"
    answered: dict[str, int] = {}
    group_count: dict[str, int] = {}
    for raw in _response_items(list(response.get("item", []) or [])):
        link = str(raw.get("linkId"))
        item = form.index.get(link)
        if item is None:
            issues.append(_issue(link, "unknown"))
            continue
        answers = list(raw.get("answer", []) or [])
        group_count[link] = group_count.get(link, 0) + 1
        if item.type == "group" and group_count[link] == 2 and not item.repeats:
            issues.append(_issue(link, "group_repeats"))
        if answers:
            answered[link] = answered.get(link, 0) + len(answers)
            if link not in enabled:
                issues.append(_issue(link, "disabled"))
        issues += _answer_issues(item, answers)
    for item in form.walk():
        if not item.required or item.link_id not in enabled or item.type == "display":
            continue
        present = answered.get(item.link_id) or (
            item.type == "group" and item.link_id in group_count
        )
        if not present:
            issues.append(_issue(item.link_id, "required", "error" if completed else "warning"))
    return issues
