"""The form model and enableWhen, on small questionnaires written for each feature."""

from __future__ import annotations

import pytest

from fhir_burnout.questionnaire import QuestionnaireError, enabled_items, load_form

from .conftest import ROOT

SDC = "http://hl7.org/fhir/uv/sdc/StructureDefinition/"
CORE = "http://hl7.org/fhir/StructureDefinition/"


def tr(en):
    return {
        "extension": [
            {
                "url": CORE + "translation",
                "extension": [
                    {"url": "lang", "valueCode": "en"},
                    {"url": "content", "valueString": en},
                ],
            }
        ]
    }


def q(*items, **extra):
    return {
        "resourceType": "Questionnaire",
        "status": "active",
        "language": "nl",
        "item": list(items),
        **extra,
    }


def qr(**answers):
    """A flat response: linkId -> list of {valueX: ...}."""
    return {
        "resourceType": "QuestionnaireResponse",
        "status": "in-progress",
        "item": [{"linkId": link, "answer": list(values)} for link, values in answers.items()],
    }


ALL_TYPES = [
    "group",
    "display",
    "boolean",
    "decimal",
    "integer",
    "date",
    "dateTime",
    "time",
    "string",
    "text",
    "url",
    "choice",
    "open-choice",
    "quantity",
]


def test_every_supported_type_loads_and_unsupported_ones_say_why():
    items = [{"linkId": t, "type": t, "text": t} for t in ALL_TYPES]
    items += [
        {"linkId": "file", "type": "attachment", "text": "Upload"},
        {"linkId": "ref", "type": "reference", "text": "Who"},
    ]
    form = load_form(q(*items))
    assert [i.type for i in form.items] == [*ALL_TYPES, "attachment", "reference"]
    assert all(i.unsupported is None for i in form.items[:-2])
    assert "not supported" in form.index["file"].unsupported
    assert "not supported" in form.index["ref"].unsupported


def test_item_properties_and_sdc_extensions():
    item = {
        "linkId": "energy",
        "prefix": "1.",
        "text": "Hoeveel energie had je?",
        "_text": tr("How much energy did you have?"),
        "type": "integer",
        "required": True,
        "readOnly": False,
        "repeats": False,
        "maxLength": 3,
        "initial": [{"valueInteger": 5}],
        "extension": [
            {
                "url": CORE + "questionnaire-itemControl",
                "valueCodeableConcept": {
                    "coding": [
                        {
                            "system": "http://hl7.org/fhir/questionnaire-item-control",
                            "code": "slider",
                        }
                    ]
                },
            },
            {"url": CORE + "minValue", "valueInteger": 0},
            {"url": CORE + "maxValue", "valueInteger": 10},
            {"url": CORE + "questionnaire-sliderStepValue", "valueInteger": 1},
            {"url": CORE + "entryFormat", "valueString": "0-10"},
            {
                "url": CORE + "questionnaire-unit",
                "valueCoding": {"system": "http://unitsofmeasure.org", "code": "1"},
            },
            {"url": CORE + "questionnaire-hidden", "valueBoolean": False},
            {
                "url": SDC + "sdc-questionnaire-initialExpression",
                "valueExpression": {"language": "text/fhirpath", "expression": "5"},
            },
        ],
    }
    nl = load_form(q(item)).index["energy"]
    en = load_form(q(item), lang="en").index["energy"]
    assert nl.text == "Hoeveel energie had je?" and en.text == "How much energy did you have?"
    assert (nl.prefix, nl.required, nl.max_length, nl.control) == ("1.", True, 3, "slider")
    assert (nl.min_value, nl.max_value, str(nl.slider_step), nl.entry_format) == (
        0,
        10,
        "1",
        "0-10",
    )
    assert nl.unit["code"] == "1" and nl.hidden is False and nl.initial == (("integer", 5),)
    assert nl.initial_expression == "5"


def test_answer_options_of_every_kind_with_weights_and_preselection():
    item = {
        "linkId": "c",
        "type": "choice",
        "repeats": True,
        "answerOption": [
            {
                "valueCoding": {
                    "system": "urn:s",
                    "code": "a",
                    "display": "Ja",
                    "_display": tr("Yes"),
                },
                "extension": [{"url": CORE + "itemWeight", "valueDecimal": 2}],
            },
            {
                "valueCoding": {
                    "system": "urn:s",
                    "code": "b",
                    "display": "Nee",
                    "extension": [{"url": CORE + "ordinalValue", "valueDecimal": 0}],
                },
                "initialSelected": True,
            },
            {"valueString": "Misschien", "_valueString": tr("Maybe")},
            {"valueInteger": 3},
            {"valueDate": "2026-01-01"},
            {"valueTime": "08:00:00"},
        ],
    }
    options = load_form(q(item), lang="en").index["c"].options
    assert [o.value_type for o in options] == [
        "coding",
        "coding",
        "string",
        "integer",
        "date",
        "time",
    ]
    assert [o.label for o in options[:3]] == ["Yes", "Nee", "Maybe"]
    assert [o.weight for o in options[:2]] == [2, 0]
    assert options[1].initial_selected is True


def test_answer_value_sets_from_contained_package_or_unavailable():
    expansion = {
        "contains": [
            {
                "system": "urn:s",
                "code": "x",
                "display": "Iks",
                "designation": [{"language": "en", "value": "Ex"}],
            }
        ]
    }
    contained = {
        "resourceType": "ValueSet",
        "id": "vs1",
        "status": "active",
        "expansion": {"timestamp": "2026-01-01", **expansion},
    }
    questionnaire = q(
        {"linkId": "a", "type": "choice", "answerValueSet": "#vs1"},
        {
            "linkId": "b",
            "type": "choice",
            "answerValueSet": "https://example.org/ValueSet/pkg|1.0",
        },
        {
            "linkId": "c",
            "type": "choice",
            "answerValueSet": "https://remote.example.org/ValueSet/big",
        },
        contained=[contained],
    )
    form = load_form(
        questionnaire,
        lang="en",
        value_sets={"https://example.org/ValueSet/pkg": {"expansion": expansion}},
    )
    assert [o.label for o in form.index["a"].options] == ["Ex"]
    assert [o.value["code"] for o in form.index["b"].options] == ["x"]
    assert form.index["c"].options == () and "unavailable" in form.index["c"].options_unavailable


def test_a_broken_questionnaire_lists_every_problem_at_load_time():
    broken = q(
        {"linkId": "a", "type": "string"},
        {"linkId": "a", "type": "string"},
        {"linkId": "b", "type": "textarea"},
        {
            "linkId": "c",
            "type": "string",
            "enableWhen": [{"question": "nowhere", "operator": "exists", "answerBoolean": True}],
        },
        {
            "linkId": "d",
            "type": "string",
            "enableWhen": [{"question": "a", "operator": "~", "answerString": "x"}],
        },
        {
            "linkId": "x",
            "type": "decimal",
            "extension": [
                {
                    "url": SDC + "sdc-questionnaire-calculatedExpression",
                    "valueExpression": {
                        "language": "text/fhirpath",
                        "expression": "%resource.item.where(linkId='y').answer.value",
                    },
                }
            ],
        },
        {
            "linkId": "y",
            "type": "decimal",
            "extension": [
                {
                    "url": SDC + "sdc-questionnaire-calculatedExpression",
                    "valueExpression": {
                        "language": "text/fhirpath",
                        "expression": "%resource.item.where(linkId='x').answer.value",
                    },
                }
            ],
        },
    )
    with pytest.raises(QuestionnaireError) as caught:
        load_form(broken)
    text = "\n".join(f"{link}: {msg}" for link, msg in caught.value.problems)
    assert "a: linkId is used twice" in text
    assert "b: unknown item type 'textarea'" in text
    assert "c: enableWhen points at 'nowhere', which does not exist" in text
    assert "d: enableWhen has an unknown operator '~'" in text
    assert "calculated expressions form a cycle" in text
    with pytest.raises(QuestionnaireError, match="enableWhen conditions form a cycle"):
        load_form(
            q(
                {
                    "linkId": "p",
                    "type": "boolean",
                    "enableWhen": [{"question": "r", "operator": "exists", "answerBoolean": True}],
                },
                {
                    "linkId": "r",
                    "type": "boolean",
                    "enableWhen": [{"question": "p", "operator": "exists", "answerBoolean": True}],
                },
            )
        )
    assert caught.value.outcome()["issue"][0]["expression"] == [
        "Questionnaire.item.where(linkId='a')"
    ]


def test_valid_r4_that_fhir_resources_refuses_still_loads():
    # A primitive extension on Extension.value[x] and an SDC variable name with an underscore.
    questionnaire = q(
        {
            "linkId": "a",
            "type": "string",
            "text": "Vraag",
            "extension": [{"url": "urn:x", "valueString": "x", "_valueString": tr("y")}],
        },
        extension=[
            {
                "url": CORE + "variable",
                "valueExpression": {
                    "name": "total_score",
                    "language": "text/fhirpath",
                    "expression": "1",
                },
            }
        ],
    )
    form = load_form(questionnaire)
    assert form.variables == (("total_score", "1"),)


def condition(question_type, operator, answer_key, wanted):
    return q(
        {"linkId": "q", "type": question_type},
        {
            "linkId": "t",
            "type": "string",
            "enableWhen": [{"question": "q", "operator": operator, answer_key: wanted}],
        },
    )


CODING_A = {"system": "urn:s", "code": "a"}
CODING_B = {"system": "urn:s", "code": "b"}


@pytest.mark.parametrize(
    ("question_type", "operator", "answer_key", "wanted", "given", "expected"),
    [
        ("boolean", "exists", "answerBoolean", True, [{"valueBoolean": False}], True),
        ("boolean", "exists", "answerBoolean", True, [], False),
        ("boolean", "exists", "answerBoolean", False, [], True),
        ("boolean", "=", "answerBoolean", True, [{"valueBoolean": True}], True),
        ("boolean", "=", "answerBoolean", True, [{"valueBoolean": False}], False),
        ("boolean", "!=", "answerBoolean", True, [{"valueBoolean": False}], True),
        ("integer", ">", "answerInteger", 5, [{"valueInteger": 6}], True),
        ("integer", ">", "answerInteger", 5, [{"valueInteger": 5}], False),
        ("integer", ">=", "answerInteger", 5, [{"valueInteger": 5}], True),
        ("integer", "<", "answerInteger", 5, [{"valueInteger": 4}], True),
        ("integer", "<=", "answerInteger", 5, [{"valueInteger": 6}], False),
        ("decimal", "=", "answerDecimal", 1.5, [{"valueDecimal": 1.50}], True),
        ("decimal", "<", "answerDecimal", 1.5, [{"valueDecimal": 1.2}], True),
        ("date", ">", "answerDate", "2026-01-01", [{"valueDate": "2026-02-01"}], True),
        ("date", "<=", "answerDate", "2026-01-01", [{"valueDate": "2026-02-01"}], False),
        (
            "dateTime",
            "<",
            "answerDateTime",
            "2026-01-01T10:00:00Z",
            [{"valueDateTime": "2026-01-01T09:00:00Z"}],
            True,
        ),
        ("time", ">=", "answerTime", "08:00:00", [{"valueTime": "09:30:00"}], True),
        ("string", "=", "answerString", "ja", [{"valueString": "ja"}], True),
        ("string", "!=", "answerString", "ja", [{"valueString": "nee"}], True),
        ("choice", "=", "answerCoding", CODING_A, [{"valueCoding": CODING_A}], True),
        ("choice", "=", "answerCoding", CODING_A, [{"valueCoding": CODING_B}], False),
        ("choice", "!=", "answerCoding", CODING_A, [{"valueCoding": CODING_B}], True),
        ("choice", "=", "answerCoding", {"code": "a"}, [{"valueCoding": CODING_A}], True),
        ("open-choice", "=", "answerString", "anders", [{"valueString": "anders"}], True),
        (
            "quantity",
            ">",
            "answerQuantity",
            {"value": 70, "unit": "kg"},
            [{"valueQuantity": {"value": 80, "unit": "kg"}}],
            True,
        ),
        ("integer", "=", "answerInteger", 5, [], False),
        ("integer", "!=", "answerInteger", 5, [], False),
    ],
)
def test_enable_when_operators_and_types(
    question_type, operator, answer_key, wanted, given, expected
):
    form = load_form(condition(question_type, operator, answer_key, wanted))
    response = qr(q=given) if given else qr()
    assert ("t" in enabled_items(form, response)) is expected


def test_enable_behavior_any_and_all():
    conditions = [
        {"question": "a", "operator": "=", "answerBoolean": True},
        {"question": "b", "operator": "=", "answerBoolean": True},
    ]
    base = [{"linkId": "a", "type": "boolean"}, {"linkId": "b", "type": "boolean"}]
    any_form = load_form(
        q(
            *base,
            {"linkId": "t", "type": "string", "enableBehavior": "any", "enableWhen": conditions},
        )
    )
    all_form = load_form(
        q(
            *base,
            {"linkId": "t", "type": "string", "enableBehavior": "all", "enableWhen": conditions},
        )
    )
    one = qr(a=[{"valueBoolean": True}], b=[{"valueBoolean": False}])
    assert "t" in enabled_items(any_form, one) and "t" not in enabled_items(all_form, one)


def test_a_disabled_group_disables_its_children_and_their_answers_do_not_count():
    form = load_form(
        q(
            {"linkId": "works", "type": "boolean"},
            {
                "linkId": "group",
                "type": "group",
                "enableWhen": [{"question": "works", "operator": "=", "answerBoolean": True}],
                "item": [{"linkId": "clients", "type": "boolean"}],
            },
            {
                "linkId": "follow-up",
                "type": "string",
                "enableWhen": [{"question": "clients", "operator": "=", "answerBoolean": True}],
            },
        )
    )
    # 'clients' was answered earlier, then 'works' changed to no: the group and the item
    # that depended on the now-hidden answer both switch off.
    response = qr(works=[{"valueBoolean": False}], clients=[{"valueBoolean": True}])
    enabled = enabled_items(form, response)
    assert {"group", "clients", "follow-up"}.isdisjoint(enabled)
    assert {"group", "clients", "follow-up"} <= enabled_items(
        form, qr(works=[{"valueBoolean": True}], clients=[{"valueBoolean": True}])
    )


def test_enable_when_expression():
    form = load_form(
        q(
            {"linkId": "n", "type": "integer"},
            {
                "linkId": "t",
                "type": "string",
                "extension": [
                    {
                        "url": SDC + "sdc-questionnaire-enableWhenExpression",
                        "valueExpression": {
                            "language": "text/fhirpath",
                            "expression": "%resource.item.where(linkId='n').answer.value > 3",
                        },
                    }
                ],
            },
        )
    )
    assert "t" in enabled_items(form, qr(n=[{"valueInteger": 4}]))
    assert "t" not in enabled_items(form, qr(n=[{"valueInteger": 2}]))


@pytest.mark.parametrize(
    "path", sorted((ROOT / "questionnaires").glob("*.json")), ids=lambda p: p.stem
)
@pytest.mark.parametrize("lang", ["nl", "en"])
def test_our_questionnaires_load_in_both_languages(path, lang, resources):
    built = next(
        r for r in resources if r["resourceType"] == "Questionnaire" and r["id"] == path.stem
    )
    value_sets = {r["url"]: r for r in resources if r["resourceType"] == "ValueSet"}
    form = load_form(built, lang=lang, value_sets=value_sets)
    assert form.title and all(i.text or i.type == "group" for i in form.walk())
    assert all(i.options_unavailable is None for i in form.walk())
    assert form.canonical == f"{built['url']}|{built['version']}"


def test_rendering_xhtml_is_sanitised_and_markdown_kept():
    xhtml = (
        '<p onclick="steal()">Lees <b>eerst</b> dit<script>alert(1)</script> '
        '<a href="javascript:alert(1)">hier</a> <a href="https://www.113.nl">113</a>'
        '<img src="https://tracker.example/x.png"><span style="color:red">!</span></p>'
    )
    item = {
        "linkId": "intro",
        "type": "display",
        "text": "Lees eerst dit",
        "_text": {
            "extension": [
                {"url": CORE + "rendering-xhtml", "valueString": xhtml},
                {"url": CORE + "rendering-markdown", "valueMarkdown": "Lees **eerst** dit"},
            ]
        },
    }
    loaded = load_form(q(item)).index["intro"]
    assert "<b>eerst</b>" in loaded.xhtml and 'href="https://www.113.nl"' in loaded.xhtml
    for unsafe in ("script", "onclick", "javascript:", "<img", "style="):
        assert unsafe not in loaded.xhtml
    assert loaded.markdown == "Lees **eerst** dit"
