"""Checks on built FHIR resources: structure, required bindings, references, questionnaires.

Structure comes from the fhir.resources R4B models; they do not check required code
bindings, so :mod:`._bindings` does. References are checked inside the package: a versioned
canonical to one of our artifacts must name a resource of the package with that version.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from fhir_burnout.resources import _bindings as b
from fhir_burnout.resources._fhirjson import structure_errors, translations
from fhir_burnout.resources._problems import Problem

_CANONICAL_RESOURCES = (
    "StructureDefinition", "CodeSystem", "ValueSet", "Questionnaire", "ActivityDefinition",
    "PlanDefinition",
)  # fmt: skip
_TRANSLATED_RESOURCES = (
    "Questionnaire",
    "ActivityDefinition",
    "PlanDefinition",
    "CodeSystem",
    "ValueSet",
)

#: Which answer[x] an enableWhen may use, by the type of the item it points at.
_ENABLE_WHEN_ANSWERS = {
    "boolean": {"answerBoolean"},
    "decimal": {"answerDecimal", "answerInteger"},
    "integer": {"answerInteger", "answerDecimal"},
    "date": {"answerDate"},
    "dateTime": {"answerDateTime"},
    "time": {"answerTime"},
    "string": {"answerString"},
    "text": {"answerString"},
    "url": {"answerString"},
    "choice": {"answerCoding", "answerString", "answerInteger", "answerDate", "answerTime"},
    "open-choice": {"answerCoding", "answerString", "answerInteger", "answerDate", "answerTime"},
    "quantity": {"answerQuantity"},
    "reference": {"answerReference"},
}

#: Which answerOption.value[x] fits an item type (R4 Questionnaire.item.answerOption).
_OPTION_VALUES = {
    "choice": {"valueCoding", "valueString", "valueInteger", "valueDate", "valueTime"},
    "open-choice": {"valueCoding", "valueString", "valueInteger", "valueDate", "valueTime"},
    "integer": {"valueInteger"},
    "date": {"valueDate"},
    "time": {"valueTime"},
    "string": {"valueString"},
    "text": {"valueString"},
    "reference": {"valueReference"},
}


def label(resource: dict[str, Any]) -> str:
    """``Type/id`` of a resource, for messages."""
    return f"{resource.get('resourceType')}/{resource.get('id')}"


def check_resources(
    resources: list[dict[str, Any]], file: str, canonical_base: str, languages: tuple[str, ...]
) -> list[Problem]:
    """Every resource check, over the whole package (so references can be resolved)."""
    problems: list[Problem] = []
    known: dict[str, set[str]] = {}
    ids: set[str] = set()
    for r in resources:
        key = label(r)
        if key in ids:
            problems.append(
                Problem(file, key, "two resources with the same type and id", "rename one")
            )
        ids.add(key)
        if isinstance(r.get("url"), str):
            known.setdefault(r["url"], set()).add(str(r.get("version", "")))
    for r in resources:
        where = label(r)
        problems += [
            Problem(
                file,
                f"{where} {loc}",
                f"structure: {msg}",
                "see the FHIR R4 definition of this element",
            )
            for loc, msg in structure_errors(r)
        ]
        problems += _check_bindings(r, file, where)
        problems += _check_references(r, file, where, known, canonical_base)
        if r.get("resourceType") == "Questionnaire":
            problems += check_questionnaire(r, file)
        if r.get("resourceType") in _TRANSLATED_RESOURCES:
            problems += _check_translations(r, file, where, languages)
    return problems


def _walk(value: Any, path: str = "") -> Iterator[tuple[str, str, Any, dict[str, Any] | None]]:
    """(path, key, value, parent) for every key in a JSON tree."""
    if isinstance(value, dict):
        for key, child in value.items():
            sub = f"{path}.{key}" if path else key
            yield sub, key, child, value
            yield from _walk(child, sub)
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from _walk(child, f"{path}[{i}]")


def _check_bindings(r: dict[str, Any], file: str, where: str) -> list[Problem]:
    problems: list[Problem] = []

    def check(value: Any, allowed: frozenset[str], loc: str, what: str) -> None:
        if value is not None and value not in allowed:
            problems.append(
                Problem(
                    file,
                    f"{where} {loc}",
                    f"'{value}' is not a valid {what}",
                    f"use one of: {', '.join(sorted(allowed))}",
                )
            )

    rtype = r.get("resourceType")
    if rtype in _CANONICAL_RESOURCES:
        check(r.get("status"), b.PUBLICATION_STATUS, "status", "publication status")
    if rtype == "Bundle":
        check(r.get("type"), b.BUNDLE_TYPES, "type", "bundle type")
    if rtype == "ActivityDefinition":
        check(r.get("kind"), b.ACTIVITY_KINDS, "kind", "ActivityDefinition kind")
        check(r.get("intent"), b.REQUEST_INTENTS, "intent", "request intent")
    if rtype == "CodeSystem":
        check(r.get("content"), b.CODE_SYSTEM_CONTENT, "content", "CodeSystem content mode")
        for i, prop in enumerate(r.get("property", [])):
            check(prop.get("type"), b.PROPERTY_TYPES, f"property[{i}].type", "property type")
    if rtype == "StructureDefinition":
        check(r.get("kind"), b.STRUCTURE_KINDS, "kind", "StructureDefinition kind")
        check(r.get("derivation"), b.DERIVATIONS, "derivation", "derivation")
        for i, ctx in enumerate(r.get("context", [])):
            check(ctx.get("type"), b.CONTEXT_TYPES, f"context[{i}].type", "context type")
    for path, key, value, _parent in _walk(r):
        if rtype == "Questionnaire" and key == "type" and ".item" in f".{path}":
            check(value, b.ITEM_TYPES, path, "item type")
        elif key == "operator":
            check(value, b.ENABLE_WHEN_OPERATORS, path, "enableWhen operator")
        elif key == "enableBehavior":
            check(value, b.ENABLE_BEHAVIORS, path, "enableBehavior")
        elif key == "relationship":
            check(value, b.ACTION_RELATIONSHIPS, path, "action relationship")
        elif key in b.ACTION_BEHAVIORS and rtype == "PlanDefinition":
            check(value, b.ACTION_BEHAVIORS[key], path, key)
        elif key == "periodUnit":
            check(value, b.UNITS_OF_TIME, path, "unit of time")
        elif key == "relatedArtifact" and isinstance(value, list):
            for i, artifact in enumerate(value):
                check(
                    artifact.get("type"),
                    b.RELATED_ARTIFACT_TYPES,
                    f"{path}[{i}].type",
                    "related artifact type",
                )
    return problems


def _check_references(
    r: dict[str, Any], file: str, where: str, known: dict[str, set[str]], base: str
) -> list[Problem]:
    problems: list[Problem] = []
    for path, key, value, _parent in _walk(r):
        if not isinstance(value, str):
            continue
        if key in (
            "definitionCanonical",
            "answerValueSet",
            "valueSet",
            "resource",
            "valueCanonical",
        ):
            target = value
        elif key in ("system", "url") and value.startswith(base + "/"):
            if key == "url" and path == "url":
                continue  # the resource's own canonical URL
            target = value
        else:
            continue
        url, _, version = target.partition("|")
        if not url.startswith(base + "/") and key != "definitionCanonical":
            continue  # outside the package (LOINC, HL7 definitions): not ours to resolve
        versions = known.get(url)
        if versions is None:
            problems.append(
                Problem(
                    file,
                    f"{where} {path}",
                    f"'{target}' does not resolve inside the package",
                    "point it at a resource of the package, or add that resource",
                )
            )
        elif version and version not in versions:
            problems.append(
                Problem(
                    file,
                    f"{where} {path}",
                    f"'{target}' names version {version}, "
                    f"the package has {', '.join(sorted(versions))}",
                    "rebuild, or use the package's version",
                )
            )
    return problems


def _items(
    items: list[dict[str, Any]], path: str = "item"
) -> Iterator[tuple[str, dict[str, Any]]]:
    for i, item in enumerate(items):
        where = f"{path}[{i}]"
        yield where, item
        yield from _items(item.get("item", []), f"{where}.item")


def check_questionnaire(q: dict[str, Any], file: str) -> list[Problem]:
    """Unique linkIds, enableWhen to an earlier item of a fitting type, fitting answer options."""
    problems: list[Problem] = []
    where = label(q)
    earlier: dict[str, dict[str, Any]] = {}
    for path, item in _items(q.get("item", [])):
        link = str(item.get("linkId"))
        loc = f"{where} {path} (linkId '{link}')"
        if link in earlier:
            problems.append(
                Problem(file, loc, "linkId is used twice", "give every item a unique linkId")
            )
        for j, cond in enumerate(item.get("enableWhen", [])):
            target = earlier.get(str(cond.get("question")))
            answer = next((k for k in cond if k.startswith("answer")), None)
            if target is None:
                problems.append(
                    Problem(
                        file,
                        f"{loc} enableWhen[{j}]",
                        f"question '{cond.get('question')}' is not an earlier item",
                        "enableWhen may only point at an item that comes before it",
                    )
                )
                continue
            allowed = (
                {"answerBoolean"}
                if cond.get("operator") == "exists"
                else _ENABLE_WHEN_ANSWERS.get(str(target.get("type")), set())
            )
            if answer not in allowed:
                problems.append(
                    Problem(
                        file,
                        f"{loc} enableWhen[{j}]",
                        f"{answer} does not fit item '{target.get('linkId')}' "
                        f"of type {target.get('type')}",
                        f"use {' or '.join(sorted(allowed)) or 'no enableWhen on that item'}",
                    )
                )
        options = item.get("answerOption", [])
        fits = _OPTION_VALUES.get(str(item.get("type")), set())
        for j, option in enumerate(options):
            value = next((k for k in option if k.startswith("value")), None)
            if value not in fits:
                problems.append(
                    Problem(
                        file,
                        f"{loc} answerOption[{j}]",
                        f"{value} is not an answer for an item of type {item.get('type')}",
                        f"use {' or '.join(sorted(fits)) or 'no answerOption on this item type'}",
                    )
                )
        earlier[link] = item
    return problems


def _check_translations(
    r: dict[str, Any], file: str, where: str, languages: tuple[str, ...]
) -> list[Problem]:
    primary = str(r.get("language") or languages[0])
    others = [lang for lang in languages if lang != primary]
    problems: list[Problem] = []
    if r.get("resourceType") == "CodeSystem":
        for i, concept in enumerate(r.get("concept", [])):
            designated = {d.get("language") for d in concept.get("designation", [])}
            problems += [
                Problem(
                    file,
                    f"{where} concept[{i}] ({concept.get('code')})",
                    f"no {lang} designation for '{concept.get('display')}'",
                    f"add a designation with language {lang}",
                )
                for lang in others
                if lang not in designated
            ]
    for path, key, value, parent in _walk(r):
        if parent is None or not isinstance(value, str) or not _is_human_text(path, key, parent):
            continue
        have = translations(parent.get("_" + key))
        for lang in others:
            if lang not in have:
                problems.append(
                    Problem(
                        file,
                        f"{where} {path}",
                        f"no {lang} translation for '{value[:50]}'",
                        f"add a translation extension (lang {lang}) on _{key}",
                    )
                )
    return problems


_HUMAN_TEXT = re.compile(
    r"^(title|description)$"
    r"|(^|\.)action\[\d+\]\.(title|description)$"
    r"|(^|\.)item\[\d+\]\.text$"
    r"|answerOption\[\d+\]\.(valueCoding\.display|valueString)$"
)


def _is_human_text(path: str, key: str, parent: dict[str, Any]) -> bool:
    """Texts a client or care professional reads, which need every language."""
    if _HUMAN_TEXT.search(path):
        return True
    # parts of our complex extensions that carry text (score-band label, exercise title)
    return key == "text" and path.endswith("valueCodeableConcept.text")
