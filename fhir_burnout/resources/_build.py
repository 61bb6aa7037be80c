"""Turning the loaded programme into FHIR R4 resources (pure: no network, no database).

One PlanDefinition per track, one ActivityDefinition per module, the Questionnaires, a
CodeSystem for the programme's codes, a CodeSystem and ValueSet per set of our own answer
codes and one of the reasons a programme ends, and a StructureDefinition per extension of
ours. Canonical references are versioned (``url|version``), and nothing depends on the
clock, so two builds are identical.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fhir_burnout.errors import ContentError
from fhir_burnout.resources._definitions import activity_definition, plan_definition
from fhir_burnout.resources._endings import decline_reason_resources, ending_reason_resources
from fhir_burnout.resources._extensions import EXTENSIONS, structure_definition
from fhir_burnout.resources._fhirjson import (
    all_codes_expansion,
    canonical,
    put_text,
    translations,
)
from fhir_burnout.resources._metadata import (
    PROGRAMME_CS,
    _common,
    _jurisdiction,
    _pascal,
    _publication,
    _strip_prefix,
)
from fhir_burnout.resources._model import KINDS, Programme, Text

PLACEHOLDER = "{canonical}"
ITEM_WEIGHT = "http://hl7.org/fhir/StructureDefinition/itemWeight"
ORDINAL_VALUE = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
_PROGRAMME_CS_DESCRIPTION = Text.of(
    {
        "nl": "Codes voor de fasen, modules, trajecten en soorten inhoud van het programma.",
        "en": "Codes for the programme's phases, modules, tracks and kinds of content.",
    }
)
_ANSWER_CS_DESCRIPTION = Text.of(
    {
        "nl": "Antwoordcodes van de vragenlijsten van het programma.",
        "en": "Answer codes used by the programme's questionnaires.",
    }
)

#: Package order: what a resource refers to comes before it.
TYPE_ORDER = (
    "StructureDefinition",
    "CodeSystem",
    "ValueSet",
    "Questionnaire",
    "ActivityDefinition",
    "PlanDefinition",
)


def _substitute(value: Any, base: str) -> Any:
    if isinstance(value, str):
        return value.replace(PLACEHOLDER, base)
    if isinstance(value, list):
        return [_substitute(v, base) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, base) for k, v in value.items()}
    return value


def load_questionnaire(programme: Programme, qid: str) -> dict[str, Any]:
    """Read ``questionnaires/<qid>.json`` with ``{canonical}`` replaced by the base URL."""
    rel = dict(programme.questionnaires).get(qid, f"questionnaires/{qid}.json")
    path = Path(programme.root) / rel
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ContentError(rel, "", "not found") from None
    except OSError as exc:
        raise ContentError(rel, "", f"cannot be read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ContentError(rel, f"byte {exc.start}", "not UTF-8 text; save it as UTF-8") from None
    except json.JSONDecodeError as exc:
        raise ContentError(rel, f"line {exc.lineno}", f"invalid JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise ContentError(rel, "", "must be a JSON object (a FHIR Questionnaire)")
    return dict(_substitute(data, programme.canonical))


def _texts(key: str, text: Text, lang: str) -> dict[str, Any]:
    """``{key: primary text, _key: translations}`` to splice into a resource."""
    out: dict[str, Any] = {}
    put_text(out, key, text, lang)
    return out


def questionnaire(programme: Programme, qid: str) -> dict[str, Any]:
    """A Questionnaire from its source file, with url, version, date and publisher added."""
    source = load_questionnaire(programme, qid)
    pub = _publication(programme)
    head: dict[str, Any] = {"resourceType": "Questionnaire", "id": qid}
    for key in ("meta", "implicitRules", "language", "text", "contained", "extension"):
        if key in source:
            head[key] = source[key]
    head.update(_common(programme, "Questionnaire", qid))
    rest = {k: v for k, v in source.items() if k not in head and k != "resourceType"}
    rest.setdefault("status", pub.pop("status"))
    for key, value in pub.items():
        rest.setdefault(key, value)
    rest.update({k: v for k, v in _jurisdiction(programme).items() if k not in rest})
    resource = {**head, **rest}
    for item in _walk_items(resource.get("item", [])):
        for option in item.get("answerOption", []):
            _mirror_weight(option)
    return resource


def _walk_items(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for item in items:
        yield item
        yield from _walk_items(item.get("item", []))


def _mirror_weight(option: dict[str, Any]) -> None:
    """Copy an answer option's SDC itemWeight to an R4 ordinalValue on its coding.

    R4-era tools (LHC-Forms, older SDC renderers) read ``ordinalValue`` on the Coding; SDC 3
    reads ``itemWeight`` on the answerOption. Authors write the weight once.
    """
    coding = option.get("valueCoding")
    weight = next((e for e in option.get("extension", []) if e.get("url") == ITEM_WEIGHT), None)
    if coding is None or weight is None:
        return
    exts = [e for e in coding.get("extension", []) if e.get("url") != ORDINAL_VALUE]
    coding["extension"] = [{"url": ORDINAL_VALUE, "valueDecimal": weight["valueDecimal"]}, *exts]
    ordered = {"extension": coding.pop("extension")}
    ordered.update(coding)
    coding.clear()
    coding.update(ordered)


def programme_code_system(programme: Programme) -> dict[str, Any]:
    """The CodeSystem of phases, modules, tracks and kinds of content."""
    lang = programme.language
    concepts: list[dict[str, Any]] = []

    def concept(code: str, display: Text, kind: str, **props: str) -> dict[str, Any]:
        c: dict[str, Any] = {"code": code}
        c["display"] = display.get(lang) or code
        designations = [
            {"language": other, "value": value}
            for other, value in display.values
            if other != lang and value
        ]
        if designations:
            c["designation"] = designations
        c["property"] = [{"code": "type", "valueCode": kind}] + [
            {"code": k, "valueCode": v} for k, v in props.items()
        ]
        return c

    for phase in programme.phases:
        concepts.append(concept(phase.code, _strip_prefix(phase.title), "phase"))
    for module in programme.modules:
        concepts.append(concept(module.code, module.title, "module", phase=module.phase))
    for track in programme.tracks:
        concepts.append(concept(track.code, track.title, "track"))
    kind_names = {
        "psycho-education": {"nl": "Uitleg", "en": "Psycho-education"},
        "exercise": {"nl": "Oefening", "en": "Exercise"},
        "story": {"nl": "Ervaringsverhaal", "en": "Experience story"},
        "homework": {"nl": "Huiswerk", "en": "Homework"},
    }
    for kind in KINDS:
        concepts.append(concept(kind, Text.of(kind_names[kind]), "kind"))
    resource: dict[str, Any] = {
        "resourceType": "CodeSystem",
        "id": PROGRAMME_CS,
        "language": lang,
        **_common(programme, "CodeSystem", PROGRAMME_CS),
        "name": "FhirBurnoutProgramme",
    }
    put_text(resource, "title", _suffix(programme.title, {"nl": "codes", "en": "codes"}), lang)
    resource.update(_publication(programme))
    put_text(resource, "description", _PROGRAMME_CS_DESCRIPTION, lang)
    resource.update(_jurisdiction(programme))
    resource.update(
        {
            "caseSensitive": True,
            "content": "complete",
            "count": len(concepts),
            "property": [
                {
                    "code": "type",
                    "description": "phase, module, track or kind",
                    "type": "code",
                },
                {"code": "phase", "description": "the phase a module belongs to", "type": "code"},
            ],
            "concept": concepts,
        }
    )
    return resource


def _suffix(text: Text, suffix: dict[str, str]) -> Text:
    return Text.of({lang: f"{value}: {suffix.get(lang, '')}" for lang, value in text.values})


def answer_systems(
    programme: Programme, questionnaires: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """A CodeSystem and a ValueSet for every answer code system of ours the questionnaires use."""
    base = f"{programme.canonical}/CodeSystem/"
    systems: dict[str, dict[str, dict[str, Any]]] = {}
    for q in questionnaires:
        for item in _walk_items(q.get("item", [])):
            for option in item.get("answerOption", []):
                coding = option.get("valueCoding") or {}
                system = str(coding.get("system", ""))
                if not system.startswith(base) or system == base + PROGRAMME_CS:
                    continue
                found = systems.setdefault(system[len(base) :], {})
                found.setdefault(str(coding.get("code")), coding)
    resources = []
    for sid in sorted(systems):
        concepts: list[dict[str, Any]] = []
        for code, coding in systems[sid].items():
            concept: dict[str, Any] = {"code": code, "display": coding.get("display", code)}
            designations = [
                {"language": other, "value": value}
                for other, value in translations(coding.get("_display")).items()
            ]
            if designations:
                concept["designation"] = designations
            concepts.append(concept)
        url = programme.url("CodeSystem", sid)
        lang = programme.language
        name = sid.replace("-", " ")
        title = Text.of({"nl": f"Antwoorden: {name}", "en": f"Answers: {name}"})
        cs: dict[str, Any] = {
            "resourceType": "CodeSystem",
            "id": sid,
            "language": lang,
            **_common(programme, "CodeSystem", sid),
            "name": _pascal(sid),
        }
        put_text(cs, "title", title, lang)
        cs |= {
            **_publication(programme),
            **_texts("description", _ANSWER_CS_DESCRIPTION, lang),
            **_jurisdiction(programme),
            "caseSensitive": True,
            "valueSet": canonical(programme.url("ValueSet", sid), programme.version),
            "content": "complete",
            "count": len(concepts),
            "concept": concepts,
        }
        vs: dict[str, Any] = {
            "resourceType": "ValueSet",
            "id": sid,
            "language": lang,
            **_common(programme, "ValueSet", sid),
            "name": _pascal(sid),
        }
        put_text(vs, "title", title, lang)
        vs |= {
            **_publication(programme),
            **_texts(
                "description",
                Text.of({"nl": f"Alle codes van {url}.", "en": f"All codes of {url}."}),
                lang,
            ),
            **_jurisdiction(programme),
            "compose": {"include": [{"system": url, "version": programme.version}]},
            # An expansion in the package spares apps a terminology server.
            "expansion": all_codes_expansion(
                sid, url, programme.version, programme.date, concepts
            ),
        }
        resources += [cs, vs]
    return resources


def _title_of(q: dict[str, Any], lang: str) -> Text:
    values = {lang: str(q.get("title") or q.get("id"))}
    values.update(translations(q.get("_title")))
    return Text.of(values)


def build_resources(programme: Programme) -> list[dict[str, Any]]:
    """Every resource of the package, in package order (referenced before referring)."""
    questionnaires = [questionnaire(programme, qid) for qid, _ in programme.questionnaires]
    titles = {str(q["id"]): _title_of(q, programme.language) for q in questionnaires}
    resources: list[dict[str, Any]] = [structure_definition(e, programme) for e in EXTENSIONS]
    resources.append(programme_code_system(programme))
    resources += answer_systems(programme, questionnaires)
    resources += ending_reason_resources(programme)
    resources += decline_reason_resources(programme)
    resources += questionnaires
    resources += [activity_definition(programme, m) for m in programme.modules]
    resources += [plan_definition(programme, t, titles) for t in programme.tracks]
    order = {t: i for i, t in enumerate(TYPE_ORDER)}
    resources.sort(key=lambda r: order.get(str(r["resourceType"]), len(order)))
    return resources
