"""Validation entry points: the sources (content + questionnaires) and built artifacts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fhir_burnout.errors import ContentError
from fhir_burnout.resources._build import build_resources, load_questionnaire
from fhir_burnout.resources._content import PROGRAMME_FILE, load_programme
from fhir_burnout.resources._fhirjson import translations
from fhir_burnout.resources._model import Programme
from fhir_burnout.resources._package import bundle_from_xml, read_package
from fhir_burnout.resources._problems import Problem
from fhir_burnout.resources._safety_rules import check_rule_targets, load_safety_rules
from fhir_burnout.resources._validate_content import check_modules, check_programme
from fhir_burnout.resources._validate_resources import check_resources, label


def validate_sources(root: str | Path) -> tuple[Programme | None, list[Problem]]:
    """Check programme.yaml, module files, questionnaires and the resources built from them."""
    try:
        programme, problems = load_programme(root)
    except ContentError as exc:
        return None, [Problem(exc.file, exc.location, exc.message)]
    unreadable = bool(problems)  # a module file is missing or could not be read
    rules, broken_rules = load_safety_rules(root, programme.canonical)
    problems += broken_rules
    problems += check_programme(programme)
    problems += check_modules(programme)
    ours: dict[str, dict[str, Any]] = {}
    for qid, rel in programme.questionnaires:
        try:
            data = ours[qid] = load_questionnaire(programme, qid)
        except ContentError as exc:
            problems.append(Problem(exc.file, exc.location, exc.message))
            continue
        if data.get("resourceType") != "Questionnaire" or data.get("id") != qid:
            problems.append(
                Problem(
                    rel, "", f"must be a Questionnaire with id '{qid}'", "set resourceType and id"
                )
            )
    problems += check_rule_targets(rules, programme.canonical, ours)
    if unreadable or any(p.file.startswith("questionnaires/") for p in problems):
        # Resources built from half the sources would only repeat these problems.
        return programme, sorted(set(problems))
    resources = build_resources(programme)
    sources = {f"Questionnaire/{qid}": rel for qid, rel in programme.questionnaires}
    for m in programme.modules:
        sources[f"ActivityDefinition/{m.code}"] = m.files[0].path
    # An answer CodeSystem/ValueSet is made from the options of the questionnaires using it.
    for q in (r for r in resources if r["resourceType"] == "Questionnaire"):
        text = json.dumps(q)
        for r in resources:
            key = label(r)
            used = f'{programme.canonical}/CodeSystem/{r["id"]}"' in text
            if r["resourceType"] in ("CodeSystem", "ValueSet") and used and key not in sources:
                sources[key] = sources[label(q)]
    by_file: dict[str, list[dict[str, Any]]] = {}
    for r in resources:
        by_file.setdefault(sources.get(label(r), PROGRAMME_FILE), []).append(r)
    for file, group in by_file.items():
        # References resolve against the whole package; report each problem at its source.
        found = check_resources(resources, file, programme.canonical, programme.languages)
        keys = {label(r) for r in group}
        problems += [p for p in found if p.location.split(" ", 1)[0] in keys]
    return programme, sorted(set(problems))


def load_artifact(path: str | Path) -> tuple[list[dict[str, Any]], dict[str, Any], list[Problem]]:
    """The resources of a built artifact (.tgz package, bundle .json or .xml, or one resource)."""
    path = Path(path)
    file = str(path)
    problems: list[Problem] = []
    manifest: dict[str, Any] = {}
    if path.suffix in (".tgz", ".gz"):
        manifest, resources = read_package(path)
        for key in ("name", "version", "fhirVersions"):
            if key not in manifest:
                problems.append(Problem(file, "package/package.json", f"'{key}' is missing"))
        return resources, manifest, problems
    if path.suffix == ".xml":
        data = bundle_from_xml(path.read_bytes())
    else:
        data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("resourceType") == "Bundle":
        resources = [e["resource"] for e in data.get("entry", []) if "resource" in e]
        return resources, manifest, problems
    return [data], manifest, problems


def validate_artifact(path: str | Path) -> list[Problem]:
    """Check a built artifact on its own: structure, bindings, references, questionnaires."""
    file = str(path)
    try:
        resources, manifest, problems = load_artifact(path)
    except (OSError, ValueError) as exc:
        return [Problem(file, "", f"cannot be read: {exc}", "rebuild it with fhir-burnout build")]
    base = str(manifest.get("canonical") or _common_base(resources))
    langs: list[str] = []
    for r in resources:
        primary = str(r.get("language") or "")
        if primary and primary not in langs:
            langs.insert(0, primary)
        for lang in _translation_languages(r):
            if lang not in langs:
                langs.append(lang)
    problems += check_resources(resources, file, base, tuple(langs) or ("nl",))
    return sorted(set(problems))


def _translation_languages(value: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(value, dict):
        for key, child in value.items():
            if key.startswith("_") and isinstance(child, dict):
                found |= set(translations(child))
            found |= _translation_languages(child)
    elif isinstance(value, list):
        for child in value:
            found |= _translation_languages(child)
    return found


def _common_base(resources: list[dict[str, Any]]) -> str:
    bases = {
        str(r["url"]).rsplit("/", 2)[0]
        for r in resources
        if isinstance(r.get("url"), str) and str(r["url"]).count("/") >= 2
    }
    return bases.pop() if len(bases) == 1 else "urn:unknown"
