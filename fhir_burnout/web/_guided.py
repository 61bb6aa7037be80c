"""A guided exercise as the exercise page shows it: its steps in the client's language, the
breathing pacer's rhythm and a recording, read from the module's ActivityDefinition (the
``exercise`` and ``exercise-step`` extensions and the audio ``relatedArtifact``, see
``resources/_guides.py``)."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fhir_burnout.resources import translations


@dataclass(frozen=True)
class GuideStep:
    """One instruction: how long it lasts, what it says, whether the pacer runs."""

    seconds: int
    text: str
    pace: bool


@dataclass(frozen=True)
class Guide:
    """What the guided mode of one exercise needs, in one language."""

    title: str
    steps: tuple[GuideStep, ...]
    breathe: tuple[int, int] | None  # seconds in, seconds out
    audio_type: str | None  # the media type of a recording in this language, if any


def _parts(ext: Mapping[str, Any]) -> dict[str, Any]:
    return {p.get("url"): p for p in ext.get("extension", [])}


def _text(concept: Mapping[str, Any], lang: str) -> str:
    """A CodeableConcept's text in ``lang`` (the primary language when not translated)."""
    return translations(concept.get("_text")).get(lang) or str(concept.get("text", ""))


def _ours(ext: Mapping[str, Any], name: str) -> bool:
    return str(ext.get("url", "")).endswith(f"/StructureDefinition/{name}")


def guide(activity: Mapping[str, Any], exercise: str, lang: str) -> Guide:
    """The guide of exercise ``exercise`` (its id) of a module, in ``lang``."""
    title, breathe = "", None
    steps = []
    for ext in activity.get("extension", []):
        parts = _parts(ext)
        if _ours(ext, "exercise") and parts.get("id", {}).get("valueCode") == exercise:
            title = _text(parts.get("title", {}).get("valueCodeableConcept", {}), lang)
            seconds_in = parts.get("breathe-in", {}).get("valueInteger")
            seconds_out = parts.get("breathe-out", {}).get("valueInteger")
            if seconds_in and seconds_out:
                breathe = (int(seconds_in), int(seconds_out))
        elif _ours(ext, "exercise-step") and parts["exercise"].get("valueCode") == exercise:
            steps.append(
                GuideStep(
                    seconds=int(parts["seconds"]["valueInteger"]),
                    text=_text(parts["text"]["valueCodeableConcept"], lang),
                    pace=bool(parts.get("pace", {}).get("valueBoolean", False)),
                )
            )
    found = _recording(activity, exercise, lang)
    return Guide(title, tuple(steps), breathe, found["contentType"] if found else None)


def _recording(activity: Mapping[str, Any], exercise: str, lang: str) -> dict[str, Any] | None:
    for artifact in activity.get("relatedArtifact", []):
        document = artifact.get("document", {})
        if (
            artifact.get("label") == exercise
            and str(document.get("contentType", "")).startswith("audio/")
            and document.get("language") == lang
        ):
            return dict(document)
    return None


def recording(activity: Mapping[str, Any], exercise: str, lang: str) -> tuple[str, bytes] | None:
    """The recorded guidance of ``exercise`` in ``lang``: (media type, bytes), or None."""
    found = _recording(activity, exercise, lang)
    if found is None:
        return None
    return str(found["contentType"]), base64.b64decode(str(found.get("data", "")))
