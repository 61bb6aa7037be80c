"""Guided exercises in the content format and the package: steps per language, the
breathing rhythm and recordings (content/README.md, "Guided exercises")."""

from __future__ import annotations

import base64
import hashlib

from fhir_burnout.cli import main
from fhir_burnout.resources import build_resources, load_programme, translations

from .conftest import by_id

STEPS = """    breathe: {in: 4, out: 6}
    audio: {nl: slow-breath.nl.ogg}
    steps:
      - seconds: 60
        text: "%s"
      - seconds: 240
        pace: true
        text: "%s"
"""
TEXTS = {"nl": ("Ga zitten.", "Adem mee met de cirkel."), "en": ("Sit down.", "Breathe along.")}


def guided(root, seconds_en: int = 60) -> None:
    """Give the minimal programme's exercise two steps, a rhythm and a Dutch recording."""
    (root / "content" / "audio").mkdir()
    (root / "content" / "audio" / "slow-breath.nl.ogg").write_bytes(b"OggS not really")
    for lang, texts in TEXTS.items():
        path = root / "content" / lang / "breathing.md"
        steps = STEPS % texts
        if lang == "en":
            steps = steps.replace("seconds: 60", f"seconds: {seconds_en}")
        path.write_text(path.read_text().replace("    timed: true\n", "    timed: true\n" + steps))


def test_steps_and_a_recording_go_into_the_package(minimal, runner):
    guided(minimal)
    assert runner.invoke(main, ["validate", "--root", str(minimal)]).exit_code == 0
    programme, problems = load_programme(minimal)
    assert problems == []
    (exercise,) = programme.module("breathing").exercises
    assert exercise.breathe == (4, 6) and [s.seconds for s in exercise.steps] == [60, 240]
    assert exercise.steps[1].text.get("en") == "Breathe along." and exercise.steps[1].pace
    resources = build_resources(programme)
    module = by_id(resources, "ActivityDefinition", "breathing")
    steps = [e for e in module["extension"] if e["url"].endswith("/exercise-step")]
    parts = [{p["url"]: p for p in step["extension"]} for step in steps]
    assert [p["seconds"]["valueInteger"] for p in parts] == [60, 240]
    assert [p["exercise"]["valueCode"] for p in parts] == ["slow-breath"] * 2
    text = parts[1]["text"]["valueCodeableConcept"]
    assert text["text"] == "Adem mee met de cirkel."
    assert translations(text["_text"]) == {"en": "Breathe along."}
    assert "pace" not in parts[0] and parts[1]["pace"]["valueBoolean"] is True
    (ours,) = [e for e in module["extension"] if e["url"].endswith("/exercise")]
    rhythm = {p["url"]: p.get("valueInteger") for p in ours["extension"]}
    assert (rhythm["breathe-in"], rhythm["breathe-out"]) == (4, 6)
    (audio,) = [a for a in module["relatedArtifact"] if a["label"] == "slow-breath"]
    document = audio["document"]
    assert (document["contentType"], document["language"]) == ("audio/ogg", "nl")
    assert base64.b64decode(document["data"]) == b"OggS not really"
    assert document["size"] == 15
    sha1 = hashlib.sha1(b"OggS not really", usedforsecurity=False).digest()
    assert document["hash"] == base64.b64encode(sha1).decode()
    defined = {r["id"] for r in resources if r["resourceType"] == "StructureDefinition"}
    assert "exercise-step" in defined


def test_a_step_lasts_as_long_in_every_language(minimal, runner):
    guided(minimal, seconds_en=30)
    result = runner.invoke(main, ["validate", "--root", str(minimal)])
    assert result.exit_code == 1
    assert "content/en/breathing.md: front matter 'exercises': differs from" in result.output


def test_the_programme_guides_its_three_body_exercises(programme):
    guided_ids = {e.id: e for m in programme.modules for e in m.exercises if e.steps and e.timed}
    assert set(guided_ids) == {"body-scan", "paced-breathing", "progressive-muscle-relaxation"}
    assert guided_ids["paced-breathing"].breathe == (4, 6)
    for exercise in guided_ids.values():
        assert sum(s.seconds for s in exercise.steps) == exercise.minutes * 60
        assert all(s.text.get("nl") and s.text.get("en") for s in exercise.steps)
