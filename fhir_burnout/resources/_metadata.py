"""What every canonical resource of the package carries (R4 canonical resource pattern:
url, version, name, status, date, publisher, contact, jurisdiction), and codings of the
programme's own CodeSystem. Shared by ``_build`` and ``_definitions``."""

from __future__ import annotations

import re
from typing import Any

from fhir_burnout.resources._model import Programme, Text

PROGRAMME_CS = "programme"


def _pascal(code: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", code) if part)


def _common(programme: Programme, resource_type: str, rid: str) -> dict[str, Any]:
    return {
        "url": programme.url(resource_type, rid),
        "version": programme.version,
    }


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


def _programme_coding(programme: Programme, code: str, display: str) -> dict[str, Any]:
    return {"system": programme.url("CodeSystem", PROGRAMME_CS), "code": code, "display": display}


def _strip_prefix(text: Text) -> Text:
    # "Fase 1: Herstel via het lichaam" -> display "Herstel via het lichaam"
    return Text.of({lang: value.split(": ", 1)[-1] for lang, value in text.values})
