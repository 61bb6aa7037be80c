"""Property tests: random answers to our questionnaires never crash the engine, and a
response it finds valid stays valid after a JSON round trip."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_burnout.questionnaire import build_response, load_form, score, validate

from .conftest import ROOT, by_id

QUESTIONNAIRES = sorted(p.stem for p in (ROOT / "questionnaires").glob("*.json"))


def value_strategy(item):
    """Plausible and implausible answers for one item."""
    options = [
        {"valueCoding": o.value}
        if o.value_type == "coding"
        else {f"value{o.value_type.capitalize()}": o.value}
        for o in item.options
    ]
    strategies = {
        "boolean": st.booleans().map(lambda v: {"valueBoolean": v}),
        "integer": st.integers(-20, 120).map(lambda v: {"valueInteger": v}),
        "decimal": st.decimals(-20, 120, places=2, allow_nan=False).map(
            lambda v: {"valueDecimal": float(v)}
        ),
        "string": st.text(max_size=300).map(lambda v: {"valueString": v}),
        "text": st.text(max_size=600).map(lambda v: {"valueString": v}),
        "date": st.dates().map(lambda v: {"valueDate": v.isoformat()}),
        "dateTime": st.datetimes().map(
            lambda v: {"valueDateTime": v.isoformat(timespec="seconds") + "+01:00"}
        ),
        "time": st.times().map(lambda v: {"valueTime": v.strftime("%H:%M:%S")}),
    }
    if options:
        return st.one_of(
            st.sampled_from(options),
            st.just({"valueCoding": {"system": "urn:other", "code": "x"}}),
        )
    return strategies.get(item.type, st.just({"valueString": "?"}))


def item_strategies(items):
    """Strategies per linkId; a repeating group gets a list of 0-3 entries of its own."""
    per_item = {}
    for item in items:
        if item.type == "group" and item.repeats:
            entry = st.fixed_dictionaries(item_strategies(item.children))
            per_item[item.link_id] = st.lists(entry, max_size=3)
            continue
        if item.type not in ("group", "display") and not item.read_only:
            per_item[item.link_id] = st.one_of(
                st.just([]),
                st.lists(value_strategy(item), min_size=1, max_size=3 if item.repeats else 1),
            )
        per_item |= item_strategies(item.children)
    return per_item


def answers_strategy(form):
    return st.fixed_dictionaries(item_strategies(form.items))


@pytest.mark.parametrize("qid", QUESTIONNAIRES)
def test_random_answers_never_crash_and_valid_stays_valid(qid, resources):
    value_sets = {r["url"]: r for r in resources if r["resourceType"] == "ValueSet"}
    form = load_form(by_id(resources, "Questionnaire", qid), value_sets=value_sets)

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(answers=answers_strategy(form), status=st.sampled_from(["in-progress", "completed"]))
    def check(answers, status):
        answers = {k: v for k, v in answers.items() if v}
        response = build_response(form, answers, status=status)
        issues = validate(form, response)
        score(form, response)
        if not [i for i in issues if i.severity == "error"]:
            again = json.loads(json.dumps(response))
            assert [i for i in validate(form, again) if i.severity == "error"] == []

    check()
