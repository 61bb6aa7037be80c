"""The definitional resources of the package (pure): an ActivityDefinition per module and a
PlanDefinition per track, whose actions order the phases, modules, homework and measures."""

from __future__ import annotations

import base64
from typing import Any

from fhir_burnout.resources._fhirjson import canonical, put_text
from fhir_burnout.resources._guides import audio_artifacts, breathe_parts, guide_extensions
from fhir_burnout.resources._markdown import link_modules
from fhir_burnout.resources._metadata import (
    _common,
    _jurisdiction,
    _pascal,
    _programme_coding,
    _publication,
    _strip_prefix,
)
from fhir_burnout.resources._model import (
    SELF_START_DISPLAY,
    SELF_START_SYSTEM,
    Module,
    Phase,
    Programme,
    Text,
    Track,
)


def activity_definition(programme: Programme, module: Module) -> dict[str, Any]:
    """The ActivityDefinition of a module: a Task whose text is attached in every language."""
    lang = programme.language
    resource: dict[str, Any] = {
        "resourceType": "ActivityDefinition",
        "id": module.code,
        "language": lang,
        "extension": _module_extensions(programme, module),
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
    ] + _self_start_topic(module.self_start)
    resource["relatedArtifact"] = _module_artifacts(programme, module)
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


def _self_start_topic(self_start: str | None) -> list[dict[str, Any]]:
    """The ``topic`` that says a client may start it alone (the content's ``self-start``, as
    the Koppeltaal IG codes it), or nothing: then only a care professional assigns it."""
    if self_start is None:
        return []
    coding = {
        "system": SELF_START_SYSTEM,
        "code": self_start,
        "display": SELF_START_DISPLAY.get(self_start, self_start),
    }
    return [{"coding": [coding]}]


def _module_extensions(programme: Programme, module: Module) -> list[dict[str, Any]]:
    """A module's estimated duration and its exercises, as extensions of ours."""
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
                    *breathe_parts(exercise),
                ],
            }
        )
    for exercise in module.exercises:
        ext += guide_extensions(programme, exercise)
    return ext


def _module_artifacts(programme: Programme, module: Module) -> list[dict[str, Any]]:
    """A module's texts (attached, one per language) and the homework it depends on."""
    artifacts: list[dict[str, Any]] = []
    # A link to another module is the canonical URL of its ActivityDefinition in the package:
    # "body-signals.md" means nothing to an EHR or a registry (issue 20).
    urls = {m.code: programme.url("ActivityDefinition", m.code) for m in programme.modules}
    for f in module.files:
        body = link_modules(f.body, urls)
        artifacts.append(
            {
                "type": "documentation",
                "label": f.lang,
                "display": f.title,
                "document": {
                    "contentType": "text/markdown",
                    "language": f.lang,
                    "data": base64.b64encode(body.encode("utf-8")).decode("ascii"),
                    "title": f.title,
                },
            }
        )
    for exercise in module.exercises:
        artifacts += audio_artifacts(programme, exercise)
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
    return artifacts


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
    unlock_url = programme.url("StructureDefinition", "unlock")
    actions: list[dict[str, Any]] = []
    phase_ids: list[str] = []
    for index, (phase_code, module_codes) in enumerate(track.phases):
        phase = programme.phase_of(phase_code)
        if phase is None:
            continue
        children = _module_actions(programme, module_codes, titles)
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
    if track.self_start:
        resource["topic"] = _self_start_topic(track.self_start)
    resource["action"] = actions
    return resource


def _module_actions(
    programme: Programme, module_codes: tuple[str, ...], titles: dict[str, Text]
) -> list[dict[str, Any]]:
    """A phase's actions: its modules in order, each with its homework after its start."""
    lang = programme.language
    version = programme.version
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
                definitionCanonical=canonical(programme.url("ActivityDefinition", code), version),
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
                    definitionCanonical=canonical(programme.url("Questionnaire", qid), version),
                )
            )
        previous = code
    return children


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
