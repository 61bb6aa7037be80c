"""Our own FHIR extensions, each published in the package as a StructureDefinition.

Questionnaires and the builder refer to them as ``{canonical}/StructureDefinition/<id>``;
validation checks that every such URL is one of these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fhir_burnout.resources._model import Programme


@dataclass(frozen=True)
class ExtensionDef:
    """An extension: its id, where it may appear, and its value type or its parts."""

    id: str
    name: str
    title: str
    description: str
    contexts: tuple[str, ...]
    value_type: str | None = None  # a simple extension
    parts: tuple[tuple[str, str, int, str], ...] = ()  # complex: (url, type, min, max)


EXTENSIONS = (
    ExtensionDef(
        "score-band",
        "ScoreBand",
        "Score interpretation band",
        "A published interpretation band of a score item: its lowest score (min), its highest "
        "whole score (max; none for the top band), a code and a plain-language label "
        "(CodeableConcept.text, translated with the translation extension on its _text). "
        "Repeats once per band; a score falls in the band with the highest min not above it, "
        "so fractional means (CBI) fall in a band too.",
        ("Questionnaire.item",),
        parts=(
            ("min", "decimal", 1, "1"),
            ("max", "decimal", 0, "1"),
            ("code", "code", 1, "1"),
            ("label", "CodeableConcept", 1, "1"),
        ),
    ),
    ExtensionDef(
        "safety-signal",
        "SafetySignal",
        "Safety signal",
        "A FHIRPath expression over the QuestionnaireResponse (%resource) alone that is true "
        "when the response contains an answer that needs the care professional's attention "
        "(for example thoughts of self-harm). Apps show crisis help and alert the practitioner.",
        ("Questionnaire",),
        value_type="Expression",
    ),
    ExtensionDef(
        "estimated-duration",
        "EstimatedDuration",
        "Estimated duration",
        "How long a client will typically spend on a module.",
        ("ActivityDefinition",),
        value_type="Duration",
    ),
    ExtensionDef(
        "exercise",
        "Exercise",
        "Exercise in a module",
        "An exercise section of a module: its stable id, title, minutes, whether a guided "
        "timer suits it, and for a breathing exercise the pacer's seconds in and out.",
        ("ActivityDefinition",),
        parts=(
            ("id", "code", 1, "1"),
            ("title", "CodeableConcept", 1, "1"),
            ("minutes", "integer", 0, "1"),
            ("timed", "boolean", 1, "1"),
            ("breathe-in", "integer", 0, "1"),
            ("breathe-out", "integer", 0, "1"),
        ),
    ),
    ExtensionDef(
        "exercise-step",
        "ExerciseStep",
        "Step of a guided exercise",
        "One instruction of an exercise's guided mode, shown (or spoken) one at a time, in "
        "order of appearance: the exercise (its id in the exercise extension), how many "
        "seconds it lasts, its text (CodeableConcept.text, translated with the translation "
        "extension on its _text), and whether the breathing pacer runs during it.",
        ("ActivityDefinition",),
        parts=(
            ("exercise", "code", 1, "1"),
            ("seconds", "integer", 1, "1"),
            ("text", "CodeableConcept", 1, "1"),
            ("pace", "boolean", 0, "1"),
        ),
    ),
    ExtensionDef(
        "unlock",
        "PhaseUnlock",
        "How a phase opens",
        "practitioner: the care professional unlocks the phase; automatic: it opens when every "
        "module of the previous phase is done.",
        ("PlanDefinition", "PlanDefinition.action"),
        value_type="code",
    ),
    ExtensionDef(
        "ending-reason",
        "EndingReason",
        "Why the programme ended",
        "Why the care professional stopped (CarePlan revoked) or finished (completed) the "
        "client's programme: a code from the programme's ending-reason CodeSystem, with the "
        "care professional's own words, if any, as CodeableConcept.text. R4 CarePlan has no "
        "element for this; the Tasks that closed carry the same reason as Task.statusReason.",
        ("CarePlan",),
        value_type="CodeableConcept",
    ),
)


def structure_definition(ext: ExtensionDef, programme: Programme) -> dict[str, Any]:
    """The StructureDefinition (R4 §2.22, constraint on Extension) of one of our extensions."""
    url = programme.url("StructureDefinition", ext.id)
    elements: list[dict[str, Any]] = [
        {"id": "Extension", "path": "Extension", "short": ext.title, "definition": ext.description}
    ]
    if ext.parts:
        elements.append(
            {
                "id": "Extension.extension",
                "path": "Extension.extension",
                "slicing": {
                    "discriminator": [{"type": "value", "path": "url"}],
                    "rules": "closed",
                },
            }
        )
        for part, type_code, min_, max_ in ext.parts:
            base = f"Extension.extension:{part}"
            elements += [
                {
                    "id": base,
                    "path": "Extension.extension",
                    "sliceName": part,
                    "min": min_,
                    "max": max_,
                },
                {"id": f"{base}.extension", "path": "Extension.extension.extension", "max": "0"},
                {"id": f"{base}.url", "path": "Extension.extension.url", "fixedUri": part},
                {
                    "id": f"{base}.value[x]",
                    "path": "Extension.extension.value[x]",
                    "min": 1,
                    "type": [{"code": type_code}],
                },
            ]
        elements += [
            {"id": "Extension.url", "path": "Extension.url", "fixedUri": url},
            {"id": "Extension.value[x]", "path": "Extension.value[x]", "max": "0"},
        ]
    else:
        elements += [
            {"id": "Extension.extension", "path": "Extension.extension", "max": "0"},
            {"id": "Extension.url", "path": "Extension.url", "fixedUri": url},
            {
                "id": "Extension.value[x]",
                "path": "Extension.value[x]",
                "min": 1,
                "type": [{"code": ext.value_type}],
            },
        ]
    return {
        "resourceType": "StructureDefinition",
        "id": ext.id,
        "url": url,
        "version": programme.version,
        "name": ext.name,
        "title": ext.title,
        "status": "active",
        "date": programme.date,
        "publisher": programme.publisher,
        "description": ext.description,
        "fhirVersion": "4.0.1",
        "kind": "complex-type",
        "abstract": False,
        "context": [{"type": "element", "expression": c} for c in ext.contexts],
        "type": "Extension",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Extension",
        "derivation": "constraint",
        "differential": {"element": elements},
    }
