"""The shipped questionnaires: scoring as data, bands, safety signals, sources and licences."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from fhir_burnout.questionnaire import evaluate

from .conftest import ROOT, by_id

CALCULATED = (
    "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression"
)


def items(item_list):
    for item in item_list:
        yield item
        yield from items(item.get("item", []))


def item(q, link_id):
    return next(i for i in items(q["item"]) if i["linkId"] == link_id)


def option(q, link_id, index):
    return item(q, link_id)["answerOption"][index]["valueCoding"]


def response(q, answers):
    """A QuestionnaireResponse with the questionnaire's nesting and the given answers."""

    def build(item_list):
        out = []
        for i in item_list:
            node = {"linkId": i["linkId"]}
            if i["linkId"] in answers:
                value = answers[i["linkId"]]
                key = {
                    "boolean": "valueBoolean",
                    "choice": "valueCoding",
                    "integer": "valueInteger",
                }[i["type"]]
                node["answer"] = [{key: value}]
            children = build(i.get("item", []))
            if children:
                node["item"] = children
            if "answer" in node or "item" in node:
                out.append(node)
        return out

    return {
        "resourceType": "QuestionnaireResponse",
        "status": "completed",
        "item": build(q["item"]),
    }


def score(q, link_id, qr):
    ext = next(e for e in item(q, link_id)["extension"] if e["url"] == CALCULATED)
    return evaluate(ext["valueExpression"]["expression"], qr, q)


def band(q, link_id, value):
    bands = [e for e in item(q, link_id)["extension"] if e["url"].endswith("/score-band")]
    parts = [{p["url"]: p for p in b["extension"]} for b in bands]
    chosen = [p for p in parts if Decimal(str(p["min"]["valueDecimal"])) <= value]
    return max(chosen, key=lambda p: p["min"]["valueDecimal"])["code"]["valueCode"]


def safety(q, qr):
    ext = next(e for e in q["extension"] if e["url"].endswith("/safety-signal"))
    # decidable from the response alone: no questionnaire is given to the expression
    return evaluate(ext["valueExpression"]["expression"], qr, {})


@pytest.fixture(scope="module")
def q(resources):
    return lambda qid: by_id(resources, "Questionnaire", qid)


@pytest.mark.parametrize(
    ("choice", "total", "expected_band"),
    [(0, 0, "minimal"), (1, 9, "mild"), (2, 18, "moderately-severe"), (3, 27, "severe")],
)
def test_phq9_total_and_band(q, choice, total, expected_band):
    phq = q("phq-9")
    qr = response(phq, {f"phq9-{n}": option(phq, f"phq9-{n}", choice) for n in range(1, 10)})
    assert score(phq, "phq9-total", qr) == [total]
    assert band(phq, "phq9-total", Decimal(total)) == expected_band


def test_phq9_gives_no_total_for_a_partial_response(q):
    phq = q("phq-9")
    qr = response(phq, {f"phq9-{n}": option(phq, f"phq9-{n}", 3) for n in range(1, 9)})
    assert score(phq, "phq9-total", qr) == []


@pytest.mark.parametrize(("choice", "alarming"), [(0, False), (1, True), (3, True)])
def test_phq9_item_9_above_zero_is_a_safety_signal(q, choice, alarming):
    phq = q("phq-9")
    answers = {f"phq9-{n}": option(phq, f"phq9-{n}", 0) for n in range(1, 9)}
    answers["phq9-9"] = option(phq, "phq9-9", choice)
    assert safety(phq, response(phq, answers)) == [alarming]


def test_gad7_all_nearly_every_day_is_21_severe(q):
    gad = q("gad-7")
    qr = response(gad, {f"gad7-{n}": option(gad, f"gad7-{n}", 3) for n in range(1, 8)})
    assert score(gad, "gad7-total", qr) == [21]
    assert band(gad, "gad7-total", Decimal(21)) == "severe"


@pytest.mark.parametrize(("choice", "raw", "percentage"), [(0, 25, 100), (3, 10, 40), (5, 0, 0)])
def test_who5_raw_times_four_is_the_percentage(q, choice, raw, percentage):
    who = q("who-5")
    qr = response(who, {f"who5-{n}": option(who, f"who5-{n}", choice) for n in range(1, 6)})
    assert score(who, "who5-raw", qr) == [raw]
    assert score(who, "who5-percentage", qr) == [percentage]


def test_cbi_work_scale_reverses_the_leisure_energy_item(q):
    cbi = q("cbi")
    # every work item at its first option: six at 100, the reversed item at 0
    answers = {f"cbi-{n}": option(cbi, f"cbi-{n}", 0) for n in range(7, 14)}
    [work] = score(cbi, "cbi-work-score", response(cbi, answers))
    assert round(float(work), 2) == round(600 / 7, 2)
    assert "energy" in item(cbi, "cbi-13")["_text"]["extension"][0]["extension"][1]["valueString"]
    assert band(cbi, "cbi-work-score", Decimal(str(work))) == "high"


def test_cbi_client_scale_only_for_people_who_work_with_clients(q):
    cbi = q("cbi")
    answers = {f"cbi-{n}": option(cbi, f"cbi-{n}", 2) for n in range(14, 20)}
    assert score(cbi, "cbi-client-score", response(cbi, {**answers, "cbi-clients": True})) == [50]
    assert item(cbi, "cbi-client")["enableWhen"][0]["question"] == "cbi-clients"


@pytest.mark.parametrize(
    ("code", "alarming"), [("no", False), ("sometimes", True), ("often", True)]
)
def test_weekly_checkin_safety_answer_is_detectable_from_the_response_alone(q, code, alarming):
    checkin = q("weekly-checkin")
    chosen = next(
        o["valueCoding"]
        for o in item(checkin, "checkin-safety")["answerOption"]
        if o["valueCoding"]["code"] == code
    )
    assert chosen["system"].endswith("/CodeSystem/safety-answer")
    assert safety(checkin, response(checkin, {"checkin-safety": chosen})) == [alarming]


def test_every_band_set_starts_at_zero_and_rises(resources):
    for q in (r for r in resources if r["resourceType"] == "Questionnaire"):
        for i in items(q["item"]):
            bands = [e for e in i.get("extension", []) if e["url"].endswith("/score-band")]
            if not bands:
                continue
            mins = [
                next(p["valueDecimal"] for p in b["extension"] if p["url"] == "min") for b in bands
            ]
            assert mins[0] == 0 and mins == sorted(mins), (q["id"], i["linkId"])
            labels = [next(p for p in b["extension"] if p["url"] == "label") for b in bands]
            assert all(lbl["valueCodeableConcept"]["_text"] for lbl in labels)


def test_weights_are_mirrored_as_r4_ordinal_values(q):
    coding = option(q("phq-9"), "phq9-1", 2)
    assert coding["extension"] == [
        {"url": "http://hl7.org/fhir/StructureDefinition/ordinalValue", "valueDecimal": 2}
    ]


@pytest.mark.parametrize(
    ("qid", "loinc", "owner"),
    [
        ("phq-9", "44249-1", "Pfizer"),
        ("gad-7", "69737-5", "Pfizer"),
        ("who-5", None, "WHO"),
        ("cbi", None, "Kristensen"),
    ],
)
def test_third_party_instruments_carry_their_source_and_terms(q, qid, loinc, owner):
    questionnaire = q(qid)
    assert owner in questionnaire["copyright"]
    if loinc:
        assert questionnaire["code"][0] == {
            **questionnaire["code"][0],
            "system": "http://loinc.org",
            "code": loinc,
        }
    notice = (ROOT / "NOTICE").read_text()
    assert f"questionnaires/{qid}.json" in notice


def test_our_own_questionnaires_are_cc_by_sa(resources):
    ours = [
        "weekly-checkin",
        "tension-log",
        "energy-diary",
        "boundary-log",
        "values-sort",
        "experiment-plan",
        "experiment-evaluation",
        "relapse-prevention-plan",
    ]
    for qid in ours:
        assert "CC BY-SA 4.0" in by_id(resources, "Questionnaire", qid)["copyright"]


def test_cbi_dutch_translation_is_marked_not_validated(q):
    cbi = q("cbi")
    assert (
        "not validated" in cbi["copyright"].lower()
        or "niet gevalideerd" in json.dumps(cbi).lower()
    )
