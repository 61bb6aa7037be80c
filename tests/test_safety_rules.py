"""The safety rules as data and the one engine that evaluates them (no Flask, no database)."""

from __future__ import annotations

import copy
import dataclasses
import json
import shutil
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from click.testing import CliRunner

from fhir_burnout.cli import main
from fhir_burnout.cli._safety_doc import with_table
from fhir_burnout.questionnaire import parse_safety_rules, safety_signals
from fhir_burnout.resources import build_resources, load_programme, load_safety_rules
from fhir_burnout.web._i18n import LANGUAGES, TRANSLATIONS

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
LOINC = "http://loinc.org"


@pytest.fixture(scope="module")
def programme():
    programme, problems = load_programme(ROOT)
    assert not problems
    return programme


@pytest.fixture(scope="module")
def rules(programme):
    rules, problems = load_safety_rules(ROOT, programme.canonical)
    assert problems == []
    return rules


@pytest.fixture(scope="module")
def questionnaires(programme):
    return {r["id"]: r for r in build_resources(programme) if r["resourceType"] == "Questionnaire"}


def _coding(system, code, display=""):
    return {"valueCoding": {"system": system, "code": code, "display": display}}


def _response(**answers):
    return {
        "resourceType": "QuestionnaireResponse",
        "status": "completed",
        "item": [{"linkId": k, "answer": [v]} for k, v in answers.items()],
    }


def test_the_programme_has_each_kind_of_rule_with_a_source(rules):
    by_id = {r.id: r for r in rules}
    assert {r.kind for r in rules} == {"answer", "score", "deterioration"}
    assert by_id["phq9-item9"].priority == "urgent"
    assert by_id["checkin-safety"].priority == "urgent"
    for routine in ("phq9-severe", "gad7-severe", "who5-very-low", "phq9-worse"):
        assert by_id[routine].priority == "routine"
    assert all(r.source and r.title["nl"] and r.title["en"] for r in rules)


@pytest.mark.parametrize(
    ("answer", "fires"),
    [("LA6568-5", False), ("LA6569-3", True), ("LA6570-1", True), ("LA6571-9", True)],
)
def test_our_phq9_item_9_is_urgent_above_not_at_all(rules, questionnaires, answer, fires):
    response = _response(**{"phq9-9": _coding(LOINC, answer, "x")})
    signals = safety_signals(rules, questionnaires["phq-9"], response)
    assert [(s.rule.id, s.priority) for s in signals] == (
        [("phq9-item9", "urgent")] if fires else []
    )


def test_a_loinc_coded_phq9_of_another_system_is_recognised_by_its_item_code(rules):
    """As LOINC's own form (LHC-Forms) writes it: linkIds of its own, the LOINC codes."""
    questionnaire = {
        "resourceType": "Questionnaire",
        "url": "https://lforms.example/Questionnaire/44249-1",
        "code": [{"system": LOINC, "code": "44249-1"}],
        "item": [
            {"linkId": f"/{code}", "type": kind, "code": [{"system": LOINC, "code": code}]}
            for code, kind in (("44260-8", "choice"), ("44261-6", "integer"))
        ],
    }
    response = _response(
        **{"/44260-8": _coding(LOINC, "LA6570-1", "More than half the days"),
           "/44261-6": {"valueInteger": 22}}
    )  # fmt: skip
    signals = safety_signals(rules, questionnaire, response)
    assert [(s.rule.id, s.evidence) for s in signals] == [
        ("phq9-item9", "More than half the days"),
        ("phq9-severe", "22"),
    ]


def test_hl7s_published_phq9_example_raises_the_item_9_signal(rules):
    questionnaire = json.loads((DATA / "hl7-sdc-questionnaire-PHQ9.json").read_text())
    response = json.loads((DATA / "hl7-sdc-questionnaireresponse-PHQ9.json").read_text())
    signals = safety_signals(rules, questionnaire, response)
    assert [(s.rule.id, s.link_id, s.evidence) for s in signals] == [
        ("phq9-item9", "H1/T1/Q9", "Several days")
    ]
    # "Not at all" (a coding without its system, as the example sends it) raises nothing.
    calm = copy.deepcopy(response)
    q9 = calm["item"][0]["item"][8]
    assert q9["linkId"] == "H1/T1/Q9"
    q9["answer"] = [{"valueCoding": {"code": "Not-at-all", "display": "Not at all"}}]
    assert safety_signals(rules, questionnaire, calm) == []


@pytest.mark.parametrize(
    ("questionnaire", "link_id", "value", "rule"),
    [
        ("phq-9", "phq9-total", 19, None),
        ("phq-9", "phq9-total", 20, "phq9-severe"),
        ("gad-7", "gad7-total", 14, None),
        ("gad-7", "gad7-total", 15, "gad7-severe"),
        ("who-5", "who5-percentage", 32, None),
        ("who-5", "who5-percentage", 28, "who5-very-low"),
    ],
)
def test_severe_bands_are_routine_signals(
    rules, questionnaires, questionnaire, link_id, value, rule
):
    signals = safety_signals(rules, questionnaires[questionnaire], _response(), {link_id: value})
    assert [(s.rule.id, s.priority) for s in signals] == ([(rule, "routine")] if rule else [])


@pytest.mark.parametrize(
    ("questionnaire", "link_id", "before", "after", "rule"),
    [
        ("phq-9", "phq9-total", 5, 15, "phq9-worse"),
        ("phq-9", "phq9-total", 15, 5, None),  # better
        ("phq-9", "phq9-total", 5, 7, None),  # within measurement error
        ("gad-7", "gad7-total", 2, 12, "gad7-worse"),
        ("who-5", "who5-percentage", 80, 40, "who5-worse"),
    ],
)
def test_a_reliable_deterioration_is_a_routine_signal(
    rules, questionnaires, questionnaire, link_id, before, after, rule
):
    signals = safety_signals(
        rules, questionnaires[questionnaire], _response(), {link_id: after}, {link_id: before}
    )
    assert [s.rule.id for s in signals] == ([rule] if rule else [])


@pytest.mark.parametrize(
    ("broken", "where"),
    [
        ({"id": "x", "title": {"nl": "a"}, "answer": {}}, "rules[x].title"),
        ({"id": "x", "title": {"nl": "a", "en": "b"}, "priority": "urgent"}, "rules[x]"),
        (
            {"id": "x", "title": {"nl": "a", "en": "b"}, "priority": "soon",
             "score": {"items": [{"code": "a|b"}], "at_least": 1}},
            "rules[x].priority",
        ),
        (
            {"id": "x", "title": {"nl": "a", "en": "b"}, "priority": "routine",
             "score": {"items": [{"code": "a|b"}]}, "client_text": "k", "source": "s"},
            "rules[x].score",
        ),
        (
            {"id": "x", "title": {"nl": "a", "en": "b"}, "priority": "urgent",
             "answer": {"items": [{"link_id": "q"}]}, "client_text": "k", "source": "s"},
            "rules[x].answer.items[0]",
        ),
        (
            {"id": "x", "title": {"nl": "a", "en": "b"}, "priority": "urgent",
             "answer": {"items": [{"code": "a|b"}]}, "client_text": "k"},
            "rules[x].source",
        ),
    ],
)  # fmt: skip
def test_a_broken_rule_is_reported_where_it_is(broken, where):
    rules, problems = parse_safety_rules({"rules": [broken]}, "https://c")
    assert rules == () and [p[0] for p in problems] == [where]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "    priority: urgent", "    priority: asap",
            "content/safety-rules.yaml: rules[phq9-item9].priority: use one of urgent, routine",
        ),
        (
            "link_id: phq9-total", "link_id: phq9-sum",
            "content/safety-rules.yaml: rules[phq9-severe]: looks at linkId 'phq9-sum', which "
            "phq-9 does not have",
        ),
        (
            "Questionnaire/who-5", "Questionnaire/who-6",
            "content/safety-rules.yaml: rules[who5-very-low]: looks at questionnaire 'who-6', "
            "which the programme does not have",
        ),
    ],
)  # fmt: skip
def test_validate_names_a_broken_safety_rule(tmp_path, old, new, message):
    """A rule that cannot be read, or that points at an item that is not there (a renamed
    linkId would switch it off without a word), is a validation problem."""
    root = tmp_path / "root"
    shutil.copytree(ROOT / "content", root / "content")
    shutil.copytree(ROOT / "questionnaires", root / "questionnaires")
    path = root / "content" / "safety-rules.yaml"
    path.write_text(path.read_text().replace(old, new, 1))
    result = CliRunner().invoke(main, ["validate", "--root", str(root)])
    assert result.exit_code != 0
    assert message in result.output


def test_the_clinical_safety_document_lists_exactly_the_rules_the_app_runs(rules):
    """docs/clinical-safety.md is what a reviewer signs off: its table is the data."""
    document = (ROOT / "docs" / "clinical-safety.md").read_text(encoding="utf-8")
    assert with_table(document, rules) == document, "run: fhir-burnout safety-doc --write"
    for rule in rules:
        assert f"| `{rule.id}`: {rule.title['en']} |" in document
        assert " ".join(rule.source.split()) in document


def test_a_changed_rule_makes_the_document_disagree(rules):
    document = (ROOT / "docs" / "clinical-safety.md").read_text(encoding="utf-8")
    changed = [*rules[:-1], dataclasses.replace(rules[-1], priority="urgent")]
    assert with_table(document, changed) != document


def test_every_rule_names_a_client_text_the_app_has_in_both_languages(rules):
    for lang in LANGUAGES:  # each catalogue of its own, not through the fallback to Dutch
        with (TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po").open("rb") as po:
            catalogue = read_po(po)
        for rule in rules:
            message = catalogue.get(rule.client_text)
            assert message is not None and message.string, (rule.id, lang)
