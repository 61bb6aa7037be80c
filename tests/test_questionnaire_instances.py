"""Repeating groups instance by instance, item-level variables with %context, and
expressions checked when a questionnaire is loaded."""

from __future__ import annotations

import json

import pytest

from fhir_burnout.questionnaire import (
    QuestionnaireError,
    build_response,
    enabled_items,
    enablement,
    load_form,
    score,
    validate,
    with_scores,
)

from .conftest import by_id
from .questionnaire_items import CORE, SDC, SUBSCALES, calculated, expression, q, variable


def errors(issues):
    return [(i.link_id, i.code, i.instance) for i in issues if i.severity == "error"]


@pytest.fixture(scope="module")
def tension(resources):
    return load_form(by_id(resources, "Questionnaire", "tension-log"))


def moment(when, exercise, after=None):
    answers = {
        "tension-datetime": [{"valueDateTime": when}],
        "tension-level": [{"valueInteger": 7}],
        "tension-exercise": [{"valueBoolean": exercise}],
    }
    if after is not None:
        answers["tension-after"] = [{"valueInteger": after}]
    return answers


def test_each_moment_of_our_tension_log_decides_its_own_follow_up_question(tension):
    # Two moments: after the first the client did the exercise, after the second not, but
    # typed a value there before changing their mind. Only the first keeps "after".
    answers = {
        "tension-moment": [
            moment("2026-11-20T09:00:00+01:00", True, 4),
            moment("2026-11-21T15:30:00+01:00", False, 6),
        ]
    }
    response = build_response(tension, answers, status="completed")
    first, second = response["item"]
    assert [i["linkId"] for i in first["item"]][-1] == "tension-after"
    assert "tension-after" not in [i["linkId"] for i in second["item"]]
    assert validate(tension, response) == []

    # Another system sends the second moment with its "after" answer still in it.
    sent = json.loads(json.dumps(response))
    sent["item"][1]["item"].append({"linkId": "tension-after", "answer": [{"valueInteger": 6}]})
    [issue] = validate(tension, sent)
    assert (issue.code, issue.instance) == ("disabled", (("tension-moment", 1),))
    assert issue.issue()["expression"] == [
        "QuestionnaireResponse.repeat(item).where(linkId='tension-moment')[1]"
        ".repeat(item).where(linkId='tension-after')"
    ]
    state = enablement(tension, sent)
    assert state.enabled("tension-after", (("tension-moment", 0),))
    assert not state.enabled("tension-after", (("tension-moment", 1),))


def test_a_required_item_is_checked_in_every_moment_the_client_started(tension):
    answers = {"tension-moment": [moment("2026-11-20T09:00:00+01:00", False), {}]}
    answers["tension-moment"][1] = {"tension-level": [{"valueInteger": 3}]}
    response = build_response(tension, answers, status="completed")
    assert errors(validate(tension, response)) == [
        ("tension-datetime", "required", (("tension-moment", 1),))
    ]


MEDICATION = q(
    {"linkId": "uses", "type": "boolean"},
    {
        "linkId": "med",
        "type": "group",
        "repeats": True,
        "enableWhen": [{"question": "uses", "operator": "=", "answerBoolean": True}],
        "item": [
            {"linkId": "name", "type": "string", "required": True},
            {"linkId": "daily", "type": "boolean"},
            {
                "linkId": "times",
                "type": "integer",
                "enableWhen": [{"question": "daily", "operator": "=", "answerBoolean": True}],
            },
            {
                "linkId": "note",
                "type": "group",
                "item": [{"linkId": "remark", "type": "string"}],
            },
        ],
    },
    {
        "linkId": "any-daily",
        "type": "string",
        "enableWhen": [{"question": "daily", "operator": "=", "answerBoolean": True}],
    },
)


def qr(*items, status="completed"):
    return {"resourceType": "QuestionnaireResponse", "status": status, "item": list(items)}


def med(*items):
    return {"linkId": "med", "item": list(items)}


def answer(link, **value):
    return {"linkId": link, "answer": [value]}


def test_an_optional_repeating_group_may_be_left_empty_but_its_started_entries_are_checked():
    form = load_form(MEDICATION)
    uses = answer("uses", valueBoolean=True)
    assert errors(validate(form, qr(uses))) == []
    started = qr(uses, med(answer("name", valueString="A")), med(answer("daily", valueBoolean=1)))
    found = errors(validate(form, started))
    assert ("name", "required", (("med", 1),)) in found
    assert ("daily", "type", (("med", 1),)) in found


def note():
    return {"linkId": "note", "item": [answer("remark", valueString="bij het eten")]}


def test_a_group_inside_each_entry_is_not_a_repeated_group():
    form = load_form(MEDICATION)
    response = qr(
        answer("uses", valueBoolean=True),
        med(answer("name", valueString="A"), note()),
        med(answer("name", valueString="B"), note()),
    )
    assert validate(form, response) == []
    twice = qr(
        answer("uses", valueBoolean=True), med(answer("name", valueString="A"), note(), note())
    )
    assert errors(validate(form, twice)) == [("note", "group_repeats", (("med", 0),))]


def test_questions_are_found_in_the_own_entry_first_and_anywhere_from_outside():
    form = load_form(MEDICATION)
    response = qr(
        answer("uses", valueBoolean=True),
        med(answer("name", valueString="A"), answer("daily", valueBoolean=True)),
        med(answer("name", valueString="B"), answer("daily", valueBoolean=False)),
    )
    state = enablement(form, response)
    assert state.enabled("times", (("med", 0),)) and not state.enabled("times", (("med", 1),))
    # Outside the group "daily" has several occurrences: one daily medicine is enough.
    assert state.enabled("any-daily")
    # An enabled group nobody filled yet gets one empty entry to show and to decide.
    empty = enablement(form, qr(answer("uses", valueBoolean=True)))
    assert empty.instances["med"] == ((("med", 0),),) and empty.enabled("name", (("med", 0),))
    assert "med" not in enabled_items(form, qr(answer("uses", valueBoolean=False)))


def test_build_response_takes_answers_per_entry():
    form = load_form(MEDICATION)
    built = build_response(
        form,
        {
            "uses": [{"valueBoolean": True}],
            "med": [
                {"name": [{"valueString": "A"}], "daily": [{"valueBoolean": False}]},
                {
                    "name": [{"valueString": "B"}],
                    "daily": [{"valueBoolean": True}],
                    "times": [{"valueInteger": 2}],
                },
            ],
        },
        status="completed",
    )
    assert [[i["linkId"] for i in g["item"]] for g in built["item"][1:]] == [
        ["name", "daily"],
        ["name", "daily", "times"],
    ]
    assert validate(form, built) == []


def test_item_variables_are_evaluated_per_entry_with_context():
    form = load_form(SUBSCALES)
    days = [
        {"energy": [{"valueInteger": 3}], "sleep": [{"valueInteger": 4}]},
        {"energy": [{"valueInteger": 1}], "sleep": [{"valueInteger": 0}]},
        {"energy": [{"valueInteger": 5}]},
    ]
    built = build_response(form, {"day": days, "remark": [{"valueString": "moe"}]})
    # By hand: each day sums its own answers, the week sums the days.
    assert [(s.link_id, s.value, s.instance) for s in score(form, built)] == [
        ("day-total", 7, (("day", 0),)),
        ("day-total", 1, (("day", 1),)),
        ("day-total", 5, (("day", 2),)),
        ("week-total", 13, ()),
    ]
    # A calculated integer is an integer answer, and sits where the questionnaire has it:
    # the week total comes before the remark that follows it.
    assert built["item"][0]["item"][-1] == {
        "linkId": "day-total",
        "answer": [{"valueInteger": 7}],
    }
    assert [i["linkId"] for i in built["item"]] == ["day", "day", "day", "week-total", "remark"]
    assert validate(form, built) == []
    assert with_scores(form, built) == built  # scoring twice changes nothing


def test_a_variable_holding_items_can_be_navigated_further():
    form = load_form(
        q(
            {"linkId": "a", "type": "integer"},
            {
                "linkId": "double",
                "type": "integer",
                "extension": [
                    variable("a_item", "%resource.item.where(linkId = 'a')"),
                    calculated("%a_item.answer.value * 2"),
                ],
            },
        )
    )
    built = build_response(form, {"a": [{"valueInteger": 21}]})
    assert [s.value for s in score(form, built)] == [42]


def test_a_disabled_calculated_item_loses_its_stale_value():
    form = load_form(
        q(
            {"linkId": "n", "type": "integer"},
            {
                "linkId": "twice",
                "type": "integer",
                "enableWhen": [{"question": "n", "operator": ">", "answerInteger": 0}],
                "extension": [calculated("%resource.item.where(linkId='n').answer.value * 2")],
            },
        )
    )
    stale = qr(answer("n", valueInteger=-1), answer("twice", valueInteger=8))
    assert [i["linkId"] for i in with_scores(form, stale)["item"]] == ["n"]


@pytest.mark.parametrize(
    ("extension", "message"),
    [
        (calculated("%resource.item.where(linkId = 'a'"), "calculatedExpression is not valid"),
        (calculated("%resource.item a"), "extraneous input"),
        (calculated("%nowhere.answer.value"), "%nowhere is not defined"),
        (
            expression(SDC + "sdc-questionnaire-enableWhenExpression", "item.where()"),
            "enableWhenExpression is not valid",
        ),
    ],
)
def test_a_broken_expression_is_refused_when_the_questionnaire_is_loaded(extension, message):
    broken = q({"linkId": "a", "type": "integer"}, {"linkId": "b", "type": "integer"})
    broken["item"][1]["extension"] = [extension]
    with pytest.raises(QuestionnaireError) as caught:
        load_form(broken)
    [(link, text)] = caught.value.problems
    assert link == "b" and message in text


def test_variables_are_only_known_inside_the_item_that_declares_them():
    form = q(
        {"linkId": "g", "type": "group", "extension": [variable("inner", "1")], "item": []},
        {"linkId": "b", "type": "integer", "extension": [calculated("%inner + 1")]},
    )
    form["item"][0]["item"] = [
        {"linkId": "c", "type": "integer", "extension": [calculated("%inner + 1")]}
    ]
    with pytest.raises(QuestionnaireError) as caught:
        load_form(form)
    assert caught.value.problems == [
        ("b", "calculatedExpression is not valid FHIRPath: %inner is not defined")
    ]


def test_a_query_variable_is_known_but_never_fetched():
    query = {
        "url": CORE + "variable",
        "valueExpression": {
            "name": "conditions",
            "language": "application/x-fhir-query",
            "expression": "Condition?patient={{%patient.id}}",
        },
    }
    form = load_form(
        q(
            {
                "linkId": "count",
                "type": "integer",
                "extension": [calculated("%conditions.count()")],
            },
            extension=[query],
        )
    )
    assert [s.value for s in score(form, build_response(form, {}))] == [0]


def test_an_expression_that_fails_on_these_answers_leaves_the_item_empty():
    form = load_form(
        q(
            {"linkId": "s", "type": "string"},
            {
                "linkId": "plus",
                "type": "integer",
                "extension": [calculated("%resource.item.where(linkId='s').answer.value + 1")],
            },
        )
    )
    built = build_response(form, {"s": [{"valueString": "tien"}]})
    assert [i["linkId"] for i in built["item"]] == ["s"]
    assert [(s.link_id, s.value) for s in score(form, built)] == [("plus", None)]
