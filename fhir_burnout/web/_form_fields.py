"""A questionnaire as HTML form fields, and the engine's answers back from what was posted.

Every question has one field name. Outside repeating groups it is ``a.<linkId>``; inside
one, each occurrence of the group ("entry") adds ``<group>[n]/`` to the name, from the
outside in (``a.energy-part[1]/energy-level``), so each entry's answers stay its own.
Each entry also posts an empty marker field named after it, so an entry whose questions
are all unanswered radio buttons still counts while the client is filling it.

Entries are added and removed without JavaScript: the buttons post the whole form (so the
draft is saved) with ``action=add:<group field>`` or ``action=remove:<entry field>``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fhir_burnout.questionnaire import (
    EnableCondition,
    FormItem,
    FormModel,
    ValidationIssue,
    build_response,
    validate,
)

PREFIX = "a."
#: At most this many entries per repeating group: a tampered form cannot make more.
MAX_ENTRIES = 60

#: A repeating-group instance, as the engine names it: ((group linkId, occurrence), ...).
Key = tuple[tuple[str, int], ...]
Answers = dict[str, Any]


def field_name(key: Key, link: str) -> str:
    """The form field of ``link`` in the entry ``key`` (``a.<linkId>`` outside groups)."""
    return PREFIX + "".join(f"{group}[{n}]/" for group, n in key) + link


def _is_group(item: FormItem) -> bool:
    return item.type == "group" and item.repeats


def _is_question(item: FormItem) -> bool:
    return item.type not in ("group", "display")


# --- what the browser sent -------------------------------------------------------------

_TEXT_KEYS = {
    "date": "valueDate", "time": "valueTime", "dateTime": "valueDateTime", "url": "valueUri",
}  # fmt: skip


def _option(item: FormItem, raw: str) -> dict[str, Any]:
    if raw.isdigit() and int(raw) < len(item.options):
        option = item.options[int(raw)]
        return {f"value{option.value_type.capitalize()}": option.value}
    return {"valueString": raw}


def _number(item: FormItem, raw: str) -> dict[str, Any]:
    convert = int if item.type == "integer" else float
    try:
        return {f"value{item.type.capitalize()}": convert(raw.replace(",", "."))}
    except ValueError:
        return {"valueString": raw}


def _value(item: FormItem, raw: str) -> dict[str, Any] | None:
    """One answer from what the browser sent; text that does not fit is kept as a string,
    so the validator can say so and the draft keeps what the person typed."""
    raw = raw.strip()
    if not raw:
        return None
    if item.options:
        return _option(item, raw)
    if item.type in ("integer", "decimal"):
        return _number(item, raw)
    if item.type == "boolean":
        return {"valueBoolean": raw == "true"}
    if item.type == "time" and raw.count(":") == 1:
        raw += ":00"
    if item.type == "dateTime" and "T" in raw and raw.count(":") == 1:
        with suppress(ValueError):  # otherwise kept as typed: the validator names the problem
            raw = datetime.fromisoformat(raw).astimezone().isoformat(timespec="seconds")
    return {_TEXT_KEYS.get(item.type, "valueString"): raw}


def _entry_numbers(names: Iterable[str], key: Key, group: str) -> list[int]:
    """The entries of ``group`` in ``key`` that the form holds, in their order."""
    stem = field_name(key, group) + "["
    found = set()
    for name in names:
        if name.startswith(stem):
            number, closed, _ = name[len(stem) :].partition("]/")
            if closed and number.isdigit():
                found.add(int(number))
    return sorted(found)[:MAX_ENTRIES]


def parse_answers(form: FormModel, fields: Mapping[str, list[str]]) -> Answers:
    """The engine's answers from the posted fields (``name -> values``). Entries of repeating
    groups are kept even when empty, so the page can show them again as the client left
    them; ``compact`` drops them before anything is stored or checked."""
    names = list(fields)

    def collect(items: tuple[FormItem, ...], key: Key) -> Answers:
        found: Answers = {}
        for item in items:
            if _is_group(item):
                numbers = _entry_numbers(names, key, item.link_id)
                entries = [collect(item.children, (*key, (item.link_id, n))) for n in numbers]
                if entries:
                    found[item.link_id] = entries
                continue
            if _is_question(item) and not item.read_only:
                values = [_value(item, v) for v in fields.get(field_name(key, item.link_id), [])]
                answers = [v for v in values if v is not None]
                if answers:
                    found[item.link_id] = answers if item.repeats else answers[:1]
            found |= collect(item.children, key)
        return found

    return collect(form.items, ())


def _is_entry_list(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(v, dict) and not any(k.startswith("value") for k in v) for v in value)
    )


def compact(answers: Answers) -> Answers:
    """``answers`` without empty entries (and without groups left with none)."""
    kept: Answers = {}
    for link, value in answers.items():
        if isinstance(value, list) and value and _is_entry_list(value):
            entries = [e for e in (compact(v) for v in value) if e]
            if entries:
                kept[link] = entries
        elif value:
            kept[link] = value
    return kept


def change_entries(form: FormModel, answers: Answers, action: str) -> str | None:
    """Add or remove an entry as ``action`` asks; returns the field name of the entry to
    focus next (the new one, or the one before the removed one), None if nothing changed."""
    verb, _, target = action.partition(":")

    def walk(items: tuple[FormItem, ...], given: Answers, key: Key) -> str | None:
        for item in items:
            if not _is_group(item):
                found = walk(item.children, given, key)
                if found is not None:
                    return found
                continue
            entries = given.get(item.link_id)
            entries = entries if isinstance(entries, list) else []
            if verb == "add" and target == field_name(key, item.link_id):
                if len(entries) >= MAX_ENTRIES:
                    return None
                # The page always shows one entry, even when nothing was typed in it yet.
                entries += [{}] * (2 if not entries else 1)
                given[item.link_id] = entries
                return field_name((*key, (item.link_id, len(entries) - 1)), "")
            for n, entry in enumerate(entries):
                inner = (*key, (item.link_id, n))
                if verb == "remove" and target == field_name(inner, ""):
                    del entries[n]
                    return field_name((*key, (item.link_id, max(0, n - 1))), "")
                found = walk(item.children, entry, inner)
                if found is not None:
                    return found
        return None

    return walk(form.items, answers, ()) if verb in ("add", "remove") else None


# --- what the page shows ----------------------------------------------------------------


@dataclass
class Field:
    """One item as the template shows it: its name, current answers and problem."""

    item: FormItem
    name: str
    chosen: set[str] = field(default_factory=set)
    text: str = ""
    problem: str | None = None
    enable: str | None = None  # enableWhen for the page's script (JSON)
    children: list[Field] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)  # a repeating group's entries

    @property
    def error_id(self) -> str:
        """The id of its problem's text: ``error-<linkId>`` outside repeating groups."""
        return "error-" + self.name.removeprefix(PREFIX)


@dataclass
class Entry:
    """One occurrence of a repeating group."""

    number: int  # from 1, as people count
    name: str  # its marker field, also the value of its "remove" button
    fields: list[Field]
    focus: bool = False


def _selected(item: FormItem, answers: list[dict[str, Any]]) -> tuple[set[str], str]:
    chosen, text = set(), ""
    for answer in answers:
        for name, value in answer.items():
            if not name.startswith("value"):
                continue
            for index, option in enumerate(item.options):
                if option.value == value or (
                    isinstance(value, dict)
                    and isinstance(option.value, dict)
                    and option.value.get("code") == value.get("code")
                ):
                    chosen.add(str(index))
            text = str(value).lower() if name == "valueBoolean" else str(value)
            if name == "valueDateTime":
                text = _local_minutes(text)
    return chosen, text


def _local_minutes(value: str) -> str:
    """A FHIR dateTime as a datetime-local field shows it (local time, to the minute): the
    field stays empty for anything else, and the client's answer would be lost on the next
    send. The reverse of what ``_value`` does with what the field sends."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value  # not a dateTime: shown as typed, the validator says what is wrong
    if moment.tzinfo is not None:
        moment = moment.astimezone()
    return moment.strftime("%Y-%m-%dT%H:%M")


def _field_values(question: FormItem, condition: EnableCondition) -> list[str]:
    """The form values of ``question`` that count as equal to the condition's answer."""
    if question.options:
        wanted = condition.answer
        return [
            str(index)
            for index, option in enumerate(question.options)
            if option.value == wanted
            or (
                isinstance(wanted, dict)
                and isinstance(option.value, dict)
                and option.value.get("code") == wanted.get("code")
                and (not wanted.get("system") or option.value.get("system") == wanted["system"])
            )
        ]
    if isinstance(condition.answer, bool):
        return ["true" if condition.answer else "false"]
    if isinstance(condition.answer, dict):  # a Quantity: compare its value
        return [str(condition.answer.get("value"))]
    return [str(condition.answer)]


class _Page:
    """Builds the page's fields from the form model, the answers and the problems."""

    def __init__(self, form: FormModel, answers: Answers, issues: Mapping[str, str]) -> None:
        self.form = form
        self.issues = dict(issues)
        self.shown: dict[str, list[Key]] = {}  # repeating group -> its entries on the page
        self._count(form.items, answers, ())

    def _count(self, items: tuple[FormItem, ...], given: Answers, key: Key) -> None:
        for item in items:
            if _is_group(item):
                entries = given.get(item.link_id) or [{}]
                for n, entry in enumerate(entries):
                    inner = (*key, (item.link_id, n))
                    self.shown.setdefault(item.link_id, []).append(inner)
                    self._count(item.children, entry, inner)
            else:
                self._count(item.children, given, key)

    def _question_fields(self, question: str, key: Key) -> list[str]:
        """Where the answer to ``question`` is on the page, seen from entry ``key``: the
        nearest occurrence (own entry, then outwards), else every entry (R4 enableWhen)."""
        wanted = self.form.scope_groups.get(question)
        for size in range(len(key), -1, -1):
            around = key[:size]
            if (around[-1][0] if around else None) == wanted:
                return [field_name(around, question)]
        keys = self.shown.get(wanted or "", [])
        inside = [k for k in keys if k[: len(key)] == key]
        return [field_name(k, question) for k in inside or keys]

    def _enable(self, item: FormItem, key: Key) -> str | None:
        # Items with an enableWhenExpression stay visible: only the server runs FHIRPath.
        if not item.enable_when or item.enable_when_expression:
            return None
        conditions = []
        for condition in item.enable_when:
            question = self.form.index[condition.question]
            spec: dict[str, Any] = {
                "q": self._question_fields(condition.question, key),
                "op": condition.operator,
            }
            if condition.operator == "exists":
                spec["value"] = bool(condition.answer)
            else:
                spec["values"] = _field_values(question, condition)
            conditions.append(spec)
        return json.dumps({"behavior": item.enable_behavior, "conditions": conditions})

    def fields(
        self, items: tuple[FormItem, ...], given: Answers, key: Key, focus: str | None
    ) -> list[Field]:
        found = []
        for item in items:
            # A calculated score is the engine's to fill, never an input for the client: the
            # score page explains it (issue 20). Hidden items are no part of the page.
            if item.hidden or item.calculated_expression:
                continue
            name = field_name(key, item.link_id)
            shown = Field(item, name, problem=self.issues.pop(name, None))
            shown.enable = self._enable(item, key)
            if _is_group(item):
                entries = given.get(item.link_id) or [{}]
                for n, entry in enumerate(entries):
                    inner = (*key, (item.link_id, n))
                    marker = field_name(inner, "")
                    children = self.fields(item.children, entry, inner, focus)
                    shown.entries.append(Entry(n + 1, marker, children, marker == focus))
            else:
                if _is_question(item):
                    shown.chosen, shown.text = _selected(item, given.get(item.link_id, []))
                shown.children = self.fields(item.children, given, key, focus)
            found.append(shown)
        return found


def page_fields(
    form: FormModel, answers: Answers, issues: Mapping[str, str], focus: str | None = None
) -> tuple[list[Field], list[str]]:
    """The fields to show, and the problems that belong to no field on the page."""
    page = _Page(form, answers, issues)
    fields = page.fields(form.items, answers, (), focus)
    return fields, list(page.issues.values())


def error_links(fields: list[Field]) -> list[tuple[str, str, str]]:
    """The problems on the page in its order, as the error summary links them: (the id of
    the question's first control, the question's text, the problem)."""
    found: list[tuple[str, str, str]] = []
    for f in fields:
        if f.problem:
            choices = bool(f.item.options) or f.item.type == "boolean"
            found.append((f"{f.name}-0" if choices else f.name, f.item.text, f.problem))
        for entry in f.entries:
            found += error_links(entry.fields)
        found += error_links(f.children)
    return found


def checked_response(
    form: FormModel,
    answers: Answers,
    *,
    who: str,
    now: datetime,
    lang: str,
    subject: str | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """The completed QuestionnaireResponse of ``answers`` (by ``who``, now) and its problems
    as the page shows them: field name -> message in ``lang`` (empty when it is fine).
    When someone else than the ``subject`` enters it (a care professional filling it in with
    the client), they are its ``author`` and the client is its ``source``, the person the
    answers come from (R4 QuestionnaireResponse.source).

    An answer to a question that does not apply (given without the page's script, or with
    the form tampered with) is a problem too, rather than silently left out: the person
    decides which of their answers stands, and the draft keeps both meanwhile."""
    subject = subject or who
    everything = build_response(
        form, answers, status="completed", subject=subject, author=who,
        authored=now.isoformat(timespec="seconds"), keep_disabled=True,
    )  # fmt: skip
    if subject != who:
        everything["source"] = {"reference": subject}
    problems = [i for i in validate(form, everything) if i.severity == "error"]
    # Without problems no answer sits in a disabled item, so there is nothing to leave out.
    return everything, {issue_field(i): i.message(lang) for i in problems}


def issue_field(issue: ValidationIssue) -> str:
    """The field a validation problem belongs to (a repeating group's own problems belong
    to the group, not to one of its entries)."""
    key = issue.instance
    if key and key[-1][0] == issue.link_id:
        key = key[:-1]
    return field_name(key, issue.link_id)
