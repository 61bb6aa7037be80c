"""Turning the loaded programme into FHIR R4 resources (pure: no network, no database).

One PlanDefinition per track, one ActivityDefinition per module, the Questionnaires, a
CodeSystem for the programme's codes, a CodeSystem and ValueSet per set of our own answer
codes and one of the reasons a programme ends, and a StructureDefinition per extension of
ours. Canonical references are versioned (``url|version``), and nothing depends on the
clock, so two builds are identical.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fhir_burnout.errors import ContentError
from fhir_burnout.resources._endings import decline_reason_resources, ending_reason_resources
from fhir_burnout.resources._extensions import EXTENSIONS, structure_definition
from fhir_burnout.resources._fhirjson import (
    all_codes_expansion,
    canonical,
    put_text,
    translations,
)
from fhir_burnout.resources._model import KINDS, Module, Phase, Programme, Text, Track

PLACEHOLDER = "{canonical}"
ITEM_WEIGHT = "http://hl7.org/fhir/StructureDefinition/itemWeight"
ORDINAL_VALUE = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
PROGRAMME_CS = "programme"
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


def _pascal(code: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", code) if part)


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


def _common(programme: Programme, resource_type: str, rid: str) -> dict[str, Any]:
    return {
        "url": programme.url(resource_type, rid),
        "version": programme.version,
    }


def _texts(key: str, text: Text, lang: str) -> dict[str, Any]:
    """``{key: primary text, _key: translations}`` to splice into a resource."""
    out: dict[str, Any] = {}
    put_text(out, key, text, lang)
    return out


def _publication(programme: Programme) -> dict[str, Any]:
    meta: dict[str, Any] = {"status": "active", "date": programme.date}
    if programme.publisher:
        meta["publisher"] = programme.publisher
    if programme.contact:
        meta["contact"] = [{"telecom": [{"system": "url", "value": programme.contact}]}]
    return meta


def _jurisdiction(programme: Programme) -> dict[str, Any]:
    if not programme.jurisdiction:
        return {}
    return {
        "jurisdiction": [
            {"coding": [{"system": "urn:iso:std:iso:3166", "code": programme.jurisdiction}]}
        ]
    }


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


def _strip_prefix(text: Text) -> Text:
    # "Fase 1: Herstel via het lichaam" -> display "Herstel via het lichaam"
    return Text.of({lang: value.split(": ", 1)[-1] for lang, value in text.values})


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


def _programme_coding(programme: Programme, code: str, display: str) -> dict[str, Any]:
    return {"system": programme.url("CodeSystem", PROGRAMME_CS), "code": code, "display": display}


def activity_definition(programme: Programme, module: Module) -> dict[str, Any]:
    """The ActivityDefinition of a module: a Task whose text is attached in every language."""
    lang = programme.language
    ext: list[dict[str, Any]] = [
        {
            "url": programme.url("StructureDefinition", "estimated-duration"),
            "valueDuration": {
                "value": module.minutes,
                "unit": "min",
                "system": "http://unitsofmeasure.org",
                "code": "min",
            },
        }
    ]
    for exercise in module.exercises:
        # fhir.resources refuses a primitive extension on Extension.value[x] (_valueString),
        # so translatable texts inside our extensions are CodeableConcept.text.
        concept: dict[str, Any] = {}
        put_text(concept, "text", exercise.title, lang)
        title = {"url": "title", "valueCodeableConcept": concept}
        ext.append(
            {
                "url": programme.url("StructureDefinition", "exercise"),
                "extension": [
                    {"url": "id", "valueCode": exercise.id},
                    title,
                    {"url": "minutes", "valueInteger": exercise.minutes},
                    {"url": "timed", "valueBoolean": exercise.timed},
                ],
            }
        )
    resource: dict[str, Any] = {
        "resourceType": "ActivityDefinition",
        "id": module.code,
        "language": lang,
        "extension": ext,
        **_common(programme, "ActivityDefinition", module.code),
        "name": _pascal(module.code),
    }
    put_text(resource, "title", module.title, lang)
    resource.update(_publication(programme))
    phase = programme.phase_of(module.phase)
    if phase is not None:
        put_text(resource, "description", phase.description, lang)
    resource.update(_jurisdiction(programme))
    resource["topic"] = [
        {"coding": [_programme_coding(programme, kind, kind)]} for kind in module.kinds
    ]
    artifacts: list[dict[str, Any]] = []
    for f in module.files:
        artifacts.append(
            {
                "type": "documentation",
                "label": f.lang,
                "display": f.title,
                "document": {
                    "contentType": "text/markdown",
                    "language": f.lang,
                    "data": base64.b64encode(f.body.encode("utf-8")).decode("ascii"),
                    "title": f.title,
                },
            }
        )
    for qid in module.homework:
        if qid not in dict(programme.questionnaires):
            continue  # reported by validation; never built
        artifacts.append(
            {
                "type": "depends-on",
                "label": "homework",
                "resource": canonical(programme.url("Questionnaire", qid), programme.version),
            }
        )
    resource["relatedArtifact"] = artifacts
    resource.update(
        {
            "kind": "Task",
            "code": {
                "coding": [
                    _programme_coding(
                        programme, module.code, module.title.get(lang) or module.code
                    )
                ]
            },
            "intent": "proposal",
        }
    )
    return resource


def _action(action_id: str, title: Text, lang: str, **rest: Any) -> dict[str, Any]:
    action: dict[str, Any] = {"id": action_id}
    put_text(action, "title", title, lang)
    action.update(rest)
    return action


def _after(action_id: str, relationship: str = "after-end") -> list[dict[str, Any]]:
    return [{"actionId": action_id, "relationship": relationship}]


def plan_definition(programme: Programme, track: Track, titles: dict[str, Text]) -> dict[str, Any]:
    """The PlanDefinition of a track: actions per phase, module, homework and measure.

    R4 PlanDefinition.action: phases run in order (relatedAction after-end), modules within a
    phase in order, homework after the start of its module. ``titles`` maps a questionnaire id
    to its title.
    """
    lang = programme.language
    version = programme.version
    unlock_url = programme.url("StructureDefinition", "unlock")
    actions: list[dict[str, Any]] = []
    phase_ids: list[str] = []
    for index, (phase_code, module_codes) in enumerate(track.phases):
        phase = programme.phase_of(phase_code)
        if phase is None:
            continue
        children: list[dict[str, Any]] = []
        previous: str | None = None
        for code in module_codes:
            module = programme.module(code)
            if module is None:
                continue
            children.append(
                _action(
                    code,
                    module.title,
                    lang,
                    code=[
                        {
                            "coding": [
                                _programme_coding(programme, code, module.title.get(lang) or code)
                            ]
                        }
                    ],
                    **({"relatedAction": _after(previous)} if previous else {}),
                    definitionCanonical=canonical(
                        programme.url("ActivityDefinition", code), version
                    ),
                )
            )
            for qid in module.homework:
                if qid not in titles:
                    continue  # reported by validation; never built
                children.append(
                    _action(
                        f"{code}.{qid}",
                        titles.get(qid, Text.of({lang: qid})),
                        lang,
                        code=[{"coding": [_homework_coding()]}],
                        relatedAction=_after(code, "after-start"),
                        **_daily(dict(module.homework_daily).get(qid)),
                        definitionCanonical=canonical(
                            programme.url("Questionnaire", qid), version
                        ),
                    )
                )
            previous = code
        rule = "start" if index == 0 else track.unlock
        phase_action = _phase_action(programme, phase, phase_ids, children)
        if index > 0:
            phase_action["extension"] = [{"url": unlock_url, "valueCode": rule}]
            phase_action = {"extension": phase_action.pop("extension"), **phase_action}
        actions.append(phase_action)
        phase_ids.append(phase.code)
    measures = _measure_actions(programme, track, phase_ids, titles)
    if measures:
        actions.append(
            _action(
                "measures",
                Text.of({"nl": "Vragenlijsten", "en": "Questionnaires"}),
                lang,
                selectionBehavior="all",
                action=measures,
            )
        )
    resource: dict[str, Any] = {
        "resourceType": "PlanDefinition",
        "id": track.code,
        "language": lang,
        "extension": [{"url": unlock_url, "valueCode": track.unlock}],
        **_common(programme, "PlanDefinition", track.code),
        "name": _pascal(f"burnout-{track.code}"),
    }
    put_text(
        resource,
        "title",
        Text.of({k: f"{programme.title.get(k)}: {v}" for k, v in track.title.values}),
        lang,
    )
    resource["type"] = {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/plan-definition-type",
                "code": "clinical-protocol",
                "display": "Clinical Protocol",
            }
        ]
    }
    resource.update(_publication(programme))
    put_text(resource, "description", track.description, lang)
    resource.update(_jurisdiction(programme))
    if programme.licence_text:
        resource["copyright"] = programme.licence_text
    resource["action"] = actions
    return resource


def _daily(days: int | None) -> dict[str, Any]:
    """Homework done once a day for ``days`` days (a diary): an R4 Timing with a count."""
    if not days:
        return {}
    repeat = {"count": days, "frequency": 1, "period": 1, "periodUnit": "d"}
    return {"timingTiming": {"repeat": repeat}}


def _homework_coding() -> dict[str, Any]:
    # SDC questionnaire-task pattern: the Task code for "fill in this questionnaire".
    return {
        "system": "http://hl7.org/fhir/uv/sdc/CodeSystem/temp",
        "code": "complete-questionnaire",
    }


def _phase_action(
    programme: Programme, phase: Phase, before: list[str], children: list[dict[str, Any]]
) -> dict[str, Any]:
    lang = programme.language
    action = _action(phase.code, phase.title, lang)
    put_text(action, "description", phase.description, lang)
    action["code"] = [
        {
            "coding": [
                _programme_coding(
                    programme, phase.code, _strip_prefix(phase.title).get(lang) or phase.code
                )
            ]
        }
    ]
    if before:
        action["relatedAction"] = _after(before[-1])
    action["groupingBehavior"] = "logical-group"
    action["selectionBehavior"] = "all"
    action["action"] = children
    return action


def _measure_actions(
    programme: Programme, track: Track, phase_ids: list[str], titles: dict[str, Text]
) -> list[dict[str, Any]]:
    lang = programme.language
    version = programme.version
    result = []
    for measure in track.measures:
        qid = measure.questionnaire
        if qid not in titles:
            continue  # reported by validation; never built
        title = titles.get(qid, Text.of({lang: qid}))
        ref = canonical(programme.url("Questionnaire", qid), version)
        for moment in measure.at:
            common = {"code": [{"coding": [_homework_coding()]}], "definitionCanonical": ref}
            if moment == "weekly":
                result.append(
                    _action(
                        f"{qid}.weekly",
                        title,
                        lang,
                        code=common["code"],
                        timingTiming={"repeat": _weekly(track.weeks)},
                        definitionCanonical=ref,
                    )
                )
            elif moment == "start" and phase_ids:
                result.append(
                    _action(
                        f"{qid}.start",
                        title,
                        lang,
                        code=common["code"],
                        relatedAction=_after(phase_ids[0], "before-start"),
                        definitionCanonical=ref,
                    )
                )
            elif moment == "phase-end":
                for phase_id in phase_ids:
                    result.append(
                        _action(
                            f"{qid}.end-{phase_id}",
                            title,
                            lang,
                            code=common["code"],
                            relatedAction=_after(phase_id),
                            definitionCanonical=ref,
                        )
                    )
            elif moment == "end" and phase_ids:
                result.append(
                    _action(
                        f"{qid}.end",
                        title,
                        lang,
                        code=common["code"],
                        relatedAction=_after(phase_ids[-1]),
                        definitionCanonical=ref,
                    )
                )
    return result


def _weekly(weeks: int | None) -> dict[str, Any]:
    """Once a week (R4 Timing.repeat), for ``weeks`` weeks from the start when the track has
    a duration (``boundsDuration``): after it no more check-ins."""
    repeat: dict[str, Any] = {"frequency": 1, "period": 1, "periodUnit": "wk"}
    if weeks is not None:
        ucum = {"system": "http://unitsofmeasure.org", "code": "wk"}
        repeat = {"boundsDuration": {"value": weeks, "unit": "wk", **ucum}, **repeat}
    return repeat


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
