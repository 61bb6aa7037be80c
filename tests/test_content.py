"""The programme's real content: what a client and a care professional will rely on."""

from __future__ import annotations

import pytest

from fhir_burnout.resources import validate_sources
from fhir_burnout.resources._markdown import inspect

SEED_THEMES = {
    "recovery": {"body-signals", "tension-relaxation", "effort-recovery", "rhythm-self-care"},
    "insight": {"perfectionism", "boundaries", "over-responsibility", "values-needs"},
    "change": {"small-steps", "behavioural-experiments", "relapse-prevention"},
}
BODY_EXERCISES = {
    "body-scan",
    "paced-breathing",
    "progressive-muscle-relaxation",
    "energy-diary",
    "mindful-walk",
}
HOMEWORK = {
    "energy-diary", "tension-log", "values-sort", "boundary-log", "experiment-plan",
    "experiment-evaluation", "relapse-prevention-plan",
}  # fmt: skip


@pytest.mark.slow
def test_the_real_content_validates_without_problems(root):
    _, problems = validate_sources(root)
    assert [str(p) for p in problems] == []


def test_three_phases_in_order_with_at_least_four_modules_each(programme):
    assert [p.code for p in programme.phases] == ["recovery", "insight", "change"]
    assert all(len(p.modules) >= 4 for p in programme.phases)
    assert len(programme.modules) >= 12


@pytest.mark.parametrize("phase", sorted(SEED_THEMES))
def test_the_seed_themes_are_covered(programme, phase):
    assert SEED_THEMES[phase] <= set(programme.phase_of(phase).modules)


def test_phase_one_has_the_body_oriented_exercises(programme):
    ids = {
        e.id
        for code in programme.phase_of("recovery").modules
        for e in programme.module(code).exercises
    }
    assert ids >= BODY_EXERCISES
    timed = {e.id for m in programme.modules for e in m.exercises if e.timed}
    assert {"body-scan", "paced-breathing", "progressive-muscle-relaxation"} <= timed


def test_every_homework_questionnaire_is_used_by_a_module(programme):
    assert {q for m in programme.modules for q in m.homework} == HOMEWORK


@pytest.mark.parametrize("lang", ["nl", "en"])
def test_every_module_is_real_text_not_a_stub(programme, lang):
    for module in programme.modules:
        f = module.file(lang)
        facts = inspect(f.body, lang, f.body_line)
        kinds = {s.kind: s for s in facts.sections}
        assert kinds["psycho-education"].words >= 250, (f.path, "psycho-education too short")
        assert kinds["story"].words >= 150, (f.path, "story too short")
        steps = [s for s in facts.sections if s.kind == "exercise"]
        assert steps and all(s.ordered_lists for s in steps), f.path
        assert sum(s.words for s in facts.sections) >= 800, f.path


def test_no_module_promises_a_cure(programme):
    forbidden = ["genezen", "gegarandeerd", "garantie", "guarantee", "cured", "will cure"]
    for module in programme.modules:
        for f in module.files:
            lowered = f.body.lower()
            assert not [w for w in forbidden if w in lowered], f.path


def test_the_tracks_are_standard_waiting_list_and_after_care(programme):
    assert [t.code for t in programme.tracks] == ["standard", "waiting-list", "after-care"]
    waiting = next(t for t in programme.tracks if t.code == "waiting-list")
    assert [p for p, _ in waiting.phases] == ["recovery"]
