"""Small helpers for writing FHIR JSON: translations, canonical references, model checks."""

from __future__ import annotations

import json
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from fhir_burnout.resources._model import Text

TRANSLATION = "http://hl7.org/fhir/StructureDefinition/translation"


def translation_extension(lang: str, content: str) -> dict[str, Any]:
    """One FHIR translation extension (http://hl7.org/fhir/extensions/StructureDefinition-translation)."""
    return {
        "url": TRANSLATION,
        "extension": [
            {"url": "lang", "valueCode": lang},
            {"url": "content", "valueString": content},
        ],
    }


def put_text(target: dict[str, Any], key: str, text: Text, primary: str) -> None:
    """Set ``key`` to the primary-language text and ``_key`` to its translations."""
    value = text.get(primary)
    if value is None:
        return
    target[key] = value
    others = [translation_extension(lang, v) for lang, v in text.values if lang != primary and v]
    if others:
        target["_" + key] = {"extension": others}


def translations(element: dict[str, Any] | None) -> dict[str, str]:
    """The translations on a primitive's ``_key`` element, by language."""
    found = {}
    for ext in (element or {}).get("extension", []):
        if ext.get("url") != TRANSLATION:
            continue
        parts = {e.get("url"): e for e in ext.get("extension", [])}
        lang = parts.get("lang", {}).get("valueCode")
        content = parts.get("content", {}).get("valueString")
        if lang and content:
            found[lang] = content
    return found


def canonical(url: str, version: str) -> str:
    """A versioned canonical reference (FHIR R4 §2.1.0.2.3 'canonical')."""
    return f"{url}|{version}"


def normalise(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource as fhir.resources (R4B models) reads and writes it; raises on bad structure."""
    model = get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    return dict(json.loads(model.model_dump_json()))


def structure_errors(resource: dict[str, Any]) -> list[tuple[str, str]]:
    """Structural errors (location, message) from the fhir.resources models; empty when fine."""
    try:
        model_class = get_fhir_model_class(str(resource.get("resourceType")))
    except (KeyError, ValueError, TypeError):
        return [("resourceType", f"unknown resource type {resource.get('resourceType')!r}")]
    try:
        model_class.model_validate(resource)
    except ValidationError as exc:
        return [
            (".".join(str(p) for p in err["loc"]) or "(root)", err["msg"]) for err in exc.errors()
        ]
    return []


def all_codes_expansion(
    rid: str, url: str, version: str, date: str, concepts: list[dict[str, Any]]
) -> dict[str, Any]:
    """A ValueSet's expansion listing every concept of one CodeSystem of ours: with it in
    the package, apps need no terminology server."""
    return {
        "identifier": f"urn:fhir-burnout:expansion:{rid}:{version}",
        "timestamp": date,
        "total": len(concepts),
        "contains": [
            {
                "system": url,
                "version": version,
                "code": c["code"],
                "display": c["display"],
                **({"designation": c["designation"]} if c.get("designation") else {}),
            }
            for c in concepts
        ],
    }
