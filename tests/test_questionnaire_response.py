"""Building, validating and scoring responses: our questionnaires end to end, and each
validation rule on a small questionnaire."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from fhir_burnout.questionnaire import (
    build_response,
    evaluate,
    initial_answers,
    load_form,
    score,
    validate,
)
from fhir_burnout.questionnaire._fhirpath import _sum

from .conftest import by_id

CORE = "http://hl7.org/fhir/StructureDefinition/"


@pytest.fixture(scope="module")
def form(resources):
    value_sets = {r["url"]: r for r in resources if r["resourceType"] == "ValueSet"}

    def load(qid, lang="nl"):
        return load_form(by_id(resources, "Questionnaire", qid), lang=lang, value_sets=value_sets)

    return load


def choose(form, link, index):
    return [{"valueCoding": form.index[link].options[index].value}]


@pytest.mark.parametrize(
    ("index", "total", "band"), [(0, 0, "minimal"), (1, 9, "mild"), (3, 27, "severe")]
)
def test_phq9_filled_scored_by_hand_and_valid(form, index, total, band):
    phq = form("phq-9")
    answers = {f"phq9-{n}": choose(phq, f"phq9-{n}", index) for n in range(1, 10)}
    # published rule: sum of the nine item scores (0-3 each)
    assert total == 9 * index
    response = build_response(
        phq,
        answers,
        status="completed",
        subject="Patient/pat-01",
        authored="2026-11-25T10:00:00+01:00",
    )
    assert response["questionnaire"] == phq.canonical
    [result] = score(phq, response)
    assert (result.link_id, result.value, result.band) == ("phq9-total", Decimal(total), band)
    assert result.label
    assert validate(phq, response) == []
    assert validate(phq, json.loads(json.dumps(response))) == []


def test_who5_percentage_and_band_in_english(form):
    who = form("who-5", "en")
    answers = {
        f"who5-{n}": choose(who, f"who5-{n}", 3) for n in range(1, 6)
    }  # 'less than half' = 2
    response = build_response(who, answers, status="completed")
    scores = {s.link_id: s for s in score(who, response)}
    assert scores["who5-raw"].value == 10 and scores["who5-percentage"].value == 40
    assert scores["who5-percentage"].band == "low" and scores["who5-percentage"].label.isascii()


def test_cbi_leaves_out_the_client_part_for_someone_without_clients(form):
    cbi = form("cbi")
    answers = {f"cbi-{n}": choose(cbi, f"cbi-{n}", 2) for n in range(1, 14)}
    answers["cbi-clients"] = [{"valueBoolean": False}]
    answers |= {f"cbi-{n}": choose(cbi, f"cbi-{n}", 0) for n in range(14, 20)}  # typed before
    response = build_response(cbi, answers, status="completed")
    links = json.dumps(response)
    assert '"cbi-14"' not in links and '"cbi-client-score"' not in links
    scores = {s.link_id: s.value for s in score(cbi, response)}
    assert scores["cbi-personal-score"] == 50 and scores["cbi-client-score"] is None
    assert validate(cbi, response) == []


def test_weekly_checkin_with_a_safety_answer(form):
    checkin = form("weekly-checkin")
    answers = {
        "checkin-safety": choose(checkin, "checkin-safety", 1),
        "checkin-energy": [{"valueInteger": 3}],
    }
    response = build_response(checkin, answers, status="in-progress")
    assert any(i["linkId"] == "checkin-safety" for i in response["item"])


SMALL = {
    "resourceType": "Questionnaire",
    "url": "https://example.org/Questionnaire/small",
    "version": "1",
    "status": "active",
    "item": [
        {"linkId": "name", "type": "string", "required": True, "maxLength": 5},
        {
            "linkId": "score",
            "type": "integer",
            "extension": [
                {"url": CORE + "minValue", "valueInteger": 0},
                {"url": CORE + "maxValue", "valueInteger": 10},
            ],
        },
        {
            "linkId": "pick",
            "type": "choice",
            "answerOption": [{"valueCoding": {"system": "urn:s", "code": "a"}}],
        },
        {"linkId": "more", "type": "boolean"},
        {
            "linkId": "why",
            "type": "text",
            "enableWhen": [{"question": "more", "operator": "=", "answerBoolean": True}],
        },
        {
            "linkId": "when",
            "type": "date",
            "extension": [{"url": CORE + "maxValue", "valueDate": "2026-12-31"}],
        },
    ],
}


def response(status="completed", **items):
    return {
        "resourceType": "QuestionnaireResponse",
        "status": status,
        "item": [{"linkId": k, "answer": v} for k, v in items.items()],
    }


@pytest.mark.parametrize(
    ("items", "link", "code", "english"),
    [
        ({}, "name", "required", "still needs an answer"),
        ({"name": [{"valueString": "Sanne Voorbeeld"}]}, "name", "long", "at most 5 characters"),
        (
            {"name": [{"valueString": "a"}], "score": [{"valueInteger": 11}]},
            "score",
            "high",
            "at most 10",
        ),
        (
            {"name": [{"valueString": "a"}], "score": [{"valueInteger": -1}]},
            "score",
            "low",
            "at least 0",
        ),
        (
            {"name": [{"valueString": "a"}], "score": [{"valueString": "7"}]},
            "score",
            "type",
            "does not fit",
        ),
        (
            {
                "name": [{"valueString": "a"}],
                "pick": [{"valueCoding": {"system": "urn:s", "code": "z"}}],
            },
            "pick",
            "option",
            "choose one",
        ),
        ({"name": [{"valueString": "a"}, {"valueString": "b"}]}, "name", "several", "one answer"),
        (
            {"name": [{"valueString": "a"}], "why": [{"valueString": "x"}]},
            "why",
            "disabled",
            "does not apply",
        ),
        (
            {"name": [{"valueString": "a"}], "ghost": [{"valueString": "x"}]},
            "ghost",
            "unknown",
            "not in the questionnaire",
        ),
        (
            {"name": [{"valueString": "a"}], "when": [{"valueDate": "2027-01-01"}]},
            "when",
            "high",
            "too high",
        ),
        (
            {"name": [{"valueString": "a"}], "when": [{"valueDate": "26-11-2026"}]},
            "when",
            "type",
            "does not fit",
        ),
        (
            {"name": [{"valueString": "a"}], "more": [{"valueBoolean": "ja"}]},
            "more",
            "type",
            "does not fit",
        ),
        (
            {"name": [{"valueString": "a"}], "score": [{"valueInteger": 2.5}]},
            "score",
            "type",
            "does not fit",
        ),
    ],
)
def test_each_validation_rule_names_the_item_in_both_languages(items, link, code, english):
    issues = validate(load_form(SMALL), response(**items))
    found = [i for i in issues if i.link_id == link and i.code == code]
    assert found, issues
    assert english in found[0].message("en").lower() or english in found[0].message("en")
    assert found[0].message("nl") != found[0].message("en")
    assert found[0].issue()["expression"] == [f"QuestionnaireResponse.item.where(linkId='{link}')"]


def test_a_missing_required_answer_is_only_a_warning_while_in_progress():
    [issue] = validate(load_form(SMALL), response(status="in-progress"))
    assert (issue.code, issue.severity) == ("required", "warning")


def test_build_response_leaves_out_disabled_answers_and_mirrors_nesting():
    form = load_form(
        {
            **SMALL,
            "item": [
                *SMALL["item"],
                {
                    "linkId": "grp",
                    "type": "group",
                    "repeats": True,
                    "item": [{"linkId": "in", "type": "string"}],
                },
            ],
        }
    )
    answers = {
        "name": [{"valueString": "Sam"}],
        "more": [{"valueBoolean": False}],
        "why": [{"valueString": "typed before 'more' became no"}],
        "grp": [{"in": [{"valueString": "one"}]}, {"in": [{"valueString": "two"}]}],
    }
    built = build_response(form, answers, status="completed", author="Patient/pat-01")
    links = [i["linkId"] for i in built["item"]]
    assert links == ["name", "more", "grp", "grp"]
    assert [g["item"][0]["answer"][0]["valueString"] for g in built["item"][2:]] == ["one", "two"]
    assert built["questionnaire"] == "https://example.org/Questionnaire/small|1"
    assert validate(form, built) == []


def test_calculated_items_can_use_questionnaire_variables():
    variable = {
        "url": "http://hl7.org/fhir/StructureDefinition/variable",
        "valueExpression": {
            "name": "raw_total",
            "language": "text/fhirpath",
            "expression": "%resource.item.where(linkId='n').answer.value.sum()",
        },
    }
    calc = {
        "url": "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression",
        "valueExpression": {"language": "text/fhirpath", "expression": "%raw_total * 4"},
    }
    form = load_form(
        {
            "resourceType": "Questionnaire",
            "status": "active",
            "extension": [variable],
            "item": [
                {"linkId": "n", "type": "integer", "repeats": True},
                {"linkId": "pct", "type": "decimal", "readOnly": True, "extension": [calc]},
            ],
        }
    )
    built = build_response(form, {"n": [{"valueInteger": 2}, {"valueInteger": 3}]})
    assert [s.value for s in score(form, built)] == [20]


@pytest.mark.parametrize(
    ("values", "expected"),
    [([1, 2, 3], [6]), ([], [0]), ([1.5, 2], [Decimal("3.5")]), ([1, "x"], [])],
)
def test_sum_adapter_for_fhirpathpy(values, expected):
    assert _sum(values) == expected


def test_initial_answers_from_initial_options_and_expressions_with_the_patient():
    sdc = "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-initialExpression"
    form = load_form(
        {
            "resourceType": "Questionnaire",
            "status": "active",
            "item": [
                {"linkId": "n", "type": "integer", "initial": [{"valueInteger": 5}]},
                {
                    "linkId": "c",
                    "type": "choice",
                    "answerOption": [
                        {"valueCoding": {"code": "a"}},
                        {"valueCoding": {"code": "b"}, "initialSelected": True},
                    ],
                },
                {
                    "linkId": "born",
                    "type": "date",
                    "extension": [
                        {
                            "url": sdc,
                            "valueExpression": {
                                "language": "text/fhirpath",
                                "expression": "%patient.birthDate",
                            },
                        }
                    ],
                },
                {
                    "linkId": "root",
                    "type": "decimal",
                    "extension": [
                        {
                            "url": sdc,
                            "valueExpression": {
                                "language": "text/fhirpath",
                                "expression": "16.power(0.5)",
                            },
                        }
                    ],
                },
            ],
        }
    )
    patient = {"resourceType": "Patient", "id": "pat-01", "birthDate": "1965-01-01"}
    with_patient = initial_answers(form, patient=patient)
    assert with_patient["n"] == [{"valueInteger": 5}]
    assert with_patient["c"] == [{"valueCoding": {"code": "b"}}]
    assert with_patient["born"] == [{"valueDate": "1965-01-01"}]
    assert with_patient["root"] == [{"valueDecimal": Decimal(4)}]
    assert "born" not in initial_answers(form)  # no launch context: nothing guessed


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("2.power(0.5)", "1.414"),
        ("4.power(2)", "16"),
        ("(-8).power(0.5)", None),
        ("(2.5).power(2)", "6.25"),
    ],
)
def test_power_adapter_for_fhirpathpy(expression, expected):
    result = evaluate(expression, {"resourceType": "QuestionnaireResponse"}, {})
    if expected is None:
        assert result == []
    else:
        assert str(result[0]).startswith(expected)
