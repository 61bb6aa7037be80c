"""Guided exercises: the instructions a guided mode shows one at a time, the breathing
pacer's rhythm and recorded guidance, from a module's front matter to the FHIR package.

In the front matter, per exercise (every language file has the same ``seconds``, ``pace``,
``breathe`` and ``audio``; only the ``text`` of a step is the file's own language)::

    exercises:
      - id: paced-breathing
        minutes: 5
        timed: true
        breathe: {in: 4, out: 6}           # seconds in and out for the pacer
        audio: {nl: paced-breathing.nl.mp3} # optional: content/audio/<file>, per language
        steps:
          - {seconds: 30, text: Ga gemakkelijk zitten.}
          - {seconds: 240, pace: true, text: Adem in en uit met de cirkel mee.}

The steps' seconds add up to the exercise's minutes; a paced step lasts whole breaths.
In the package a step is one ``exercise-step`` extension on the module's ActivityDefinition
(its text a CodeableConcept.text with translations); the rhythm is part of the ``exercise``
extension; a recording is a ``relatedArtifact`` (type documentation, label = the exercise
id) whose ``document`` is an Attachment with the recording's language and bytes.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from fhir_burnout.resources._fhirjson import put_text
from fhir_burnout.resources._model import AUDIO_TYPES, Exercise, ModuleFile, Programme, Step, Text

#: Where recorded guidance lives, below the programme's root.
AUDIO_DIR = "content/audio"
#: The pacer's limits: slower or faster than this is no calm breathing.
_BREATHE_SECONDS = range(2, 11)

Bad = Callable[[str, str, str], None]  # (location, message, fix)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _entries(front: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [e for e in front.get("exercises") or () if isinstance(e, dict)]


def guide_of(index: int, files: list[ModuleFile]) -> dict[str, Any]:
    """The guide fields of exercise ``index`` for :class:`Exercise`, read leniently (the
    first file is authoritative for everything but the step texts; validation says what is
    wrong)."""
    raw = _entries(files[0].front)[index]
    breathe = raw.get("breathe")
    pace = None
    if isinstance(breathe, dict):
        seconds_in, seconds_out = _int(breathe.get("in")), _int(breathe.get("out"))
        if seconds_in and seconds_out:
            pace = (seconds_in, seconds_out)
    steps = []
    for i, step in enumerate(raw.get("steps") or ()):
        if not isinstance(step, dict):
            continue
        texts = {}
        for f in files:
            entries = _entries(f.front)
            theirs = entries[index].get("steps") if index < len(entries) else None
            if isinstance(theirs, list) and i < len(theirs) and isinstance(theirs[i], dict):
                texts[f.lang] = str(theirs[i].get("text") or "").strip()
        steps.append(
            Step(
                seconds=_int(step.get("seconds")) or 0,
                text=Text.of(texts),
                pace=step.get("pace") is True,
            )
        )
    audio = raw.get("audio")
    given: dict[Any, Any] = audio if isinstance(audio, dict) else {}
    recordings = tuple((str(k), str(v)) for k, v in given.items())
    return {"steps": tuple(steps), "breathe": pace, "audio": recordings}


def language_neutral(exercises: Any) -> Any:
    """The front matter's ``exercises`` without the step texts, which differ by language:
    what must be the same in every language file."""
    if not isinstance(exercises, list):
        return exercises
    out = []
    for entry in exercises:
        if isinstance(entry, dict) and isinstance(entry.get("steps"), list):
            steps = [
                {k: v for k, v in s.items() if k != "text"} if isinstance(s, dict) else s
                for s in entry["steps"]
            ]
            out.append({**entry, "steps": steps})
        else:
            out.append(entry)
    return out


def check_guides(front: Mapping[str, Any], root: Path, langs: tuple[str, ...], bad: Bad) -> None:
    """The guide of each exercise: steps that add up, a sane rhythm, recordings that exist."""
    for entry in _entries(front):
        where = f"front matter 'exercises' {entry.get('id')}"
        pace = _check_breathe(entry.get("breathe"), where, bad)
        _check_steps(entry, pace, where, bad)
        _check_audio(entry.get("audio"), root, langs, where, bad)


def _check_breathe(breathe: Any, where: str, bad: Bad) -> int | None:
    """``breathe: {in:, out:}`` in whole seconds; returns one breath's seconds, if any."""
    if breathe is None:
        return None
    parts = breathe if isinstance(breathe, dict) else {}
    seconds = [_int(parts.get("in")), _int(parts.get("out"))]
    if set(parts) != {"in", "out"} or any(s not in _BREATHE_SECONDS for s in seconds):
        bad(
            f"{where}.breathe",
            f"is {breathe!r}",
            "write breathe: {in: 4, out: 6} (whole seconds from 2 to 10)",
        )
        return None
    return sum(s or 0 for s in seconds)


def _check_steps(entry: Mapping[str, Any], breath: int | None, where: str, bad: Bad) -> None:
    steps = entry.get("steps")
    if steps is None:
        return
    if not isinstance(steps, list) or not steps:
        bad(f"{where}.steps", "is not a list of steps", "write - {seconds: 30, text: ...}")
        return
    if entry.get("timed") is not True:
        bad(f"{where}.steps", "a guided exercise is a timed one", "add timed: true")
    total = 0
    for n, given in enumerate(steps, 1):
        step = given if isinstance(given, dict) else {}
        seconds = _int(step.get("seconds"))
        if seconds is None or seconds <= 0:
            bad(f"{where}.steps[{n}]", "has no seconds", "give its seconds as a whole number")
            continue
        total += seconds
        if not str(step.get("text") or "").strip():
            bad(f"{where}.steps[{n}]", "has no text", "write the instruction as text: ...")
        if step.get("pace") is True and breath is None:
            bad(f"{where}.steps[{n}]", "paces breathing without a rhythm", "add breathe:")
        elif step.get("pace") is True and breath and seconds % breath:
            bad(
                f"{where}.steps[{n}]",
                f"{seconds} seconds is not a number of whole breaths of {breath} seconds",
                f"make it a multiple of {breath}",
            )
    minutes = _int(entry.get("minutes"))
    if minutes and total and total != minutes * 60:
        bad(
            f"{where}.steps",
            f"add up to {total} seconds, not the {minutes} minutes of the exercise",
            f"make the seconds add up to {minutes * 60}",
        )


def _check_audio(audio: Any, root: Path, langs: tuple[str, ...], where: str, bad: Bad) -> None:
    if audio is None:
        return
    if not isinstance(audio, dict):
        bad(f"{where}.audio", "is not a mapping", "write audio: {nl: file.mp3}")
        return
    for lang, name in audio.items():
        if lang not in langs:
            bad(f"{where}.audio", f"unknown language '{lang}'", f"use one of: {', '.join(langs)}")
        path = root / AUDIO_DIR / str(name)
        if "/" in str(name) or Path(str(name)).suffix.lower() not in AUDIO_TYPES:
            bad(
                f"{where}.audio",
                f"'{name}' is not an audio file name",
                f"name a file in {AUDIO_DIR}/ ending in {', '.join(AUDIO_TYPES)}",
            )
        elif not path.is_file():
            bad(f"{where}.audio", f"'{name}' does not exist", f"put the file in {AUDIO_DIR}/")


def guide_extensions(programme: Programme, exercise: Exercise) -> list[dict[str, Any]]:
    """One ``exercise-step`` extension per step of ``exercise``, in order."""
    out = []
    for step in exercise.steps:
        concept: dict[str, Any] = {}
        put_text(concept, "text", step.text, programme.language)
        parts: list[dict[str, Any]] = [
            {"url": "exercise", "valueCode": exercise.id},
            {"url": "seconds", "valueInteger": step.seconds},
            {"url": "text", "valueCodeableConcept": concept},
        ]
        if step.pace:
            parts.append({"url": "pace", "valueBoolean": True})
        url = programme.url("StructureDefinition", "exercise-step")
        out.append({"url": url, "extension": parts})
    return out


def breathe_parts(exercise: Exercise) -> list[dict[str, Any]]:
    """The pacer's rhythm as parts of the ``exercise`` extension (none without one)."""
    if exercise.breathe is None:
        return []
    seconds_in, seconds_out = exercise.breathe
    return [
        {"url": "breathe-in", "valueInteger": seconds_in},
        {"url": "breathe-out", "valueInteger": seconds_out},
    ]


def audio_artifacts(programme: Programme, exercise: Exercise) -> list[dict[str, Any]]:
    """Each recording of ``exercise`` as a relatedArtifact with its bytes attached."""
    out = []
    for lang, name in exercise.audio:
        path = Path(programme.root) / AUDIO_DIR / name
        if not path.is_file():
            continue  # reported by validation; never built
        data = path.read_bytes()
        # R4 Attachment.hash: base64 of the SHA-1 of the data
        sha1 = hashlib.sha1(data, usedforsecurity=False).digest()
        title = exercise.title.get(lang) or exercise.id
        out.append(
            {
                "type": "documentation",
                "label": exercise.id,
                "display": title,
                "document": {
                    "contentType": AUDIO_TYPES[path.suffix.lower()],
                    "language": lang,
                    "data": base64.b64encode(data).decode("ascii"),
                    "size": len(data),
                    "hash": base64.b64encode(sha1).decode("ascii"),
                    "title": title,
                },
            }
        )
    return out
