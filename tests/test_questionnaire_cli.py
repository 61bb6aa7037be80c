"""fhir-burnout questionnaire check / validate / score, as an author or integrator uses them."""

from __future__ import annotations

import json

from fhir.resources.R4B.questionnaire import Questionnaire

from fhir_burnout.cli import main
from fhir_burnout.fhir import resource_to_xml
from fhir_burnout.questionnaire import build_response, evaluate, load_form

from .conftest import by_id
from .questionnaire_items import SUBSCALES


def write(tmp_path, name, data):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def phq9_response(phq, index):
    form = load_form(phq)
    answers = {
        f"phq9-{n}": [{"valueCoding": form.index[f"phq9-{n}"].options[index].value}]
        for n in range(1, 10)
    }
    return build_response(form, answers, status="completed")


def test_check_accepts_our_questionnaire_in_json_and_xml(runner, resources, tmp_path):
    phq = by_id(resources, "Questionnaire", "phq-9")
    result = runner.invoke(main, ["questionnaire", "check", str(write(tmp_path, "phq.json", phq))])
    assert result.exit_code == 0 and result.output.startswith("ok: ")
    simple = {
        "resourceType": "Questionnaire",
        "status": "active",
        "item": [{"linkId": "a", "type": "string", "text": "Naam"}],
    }
    xml = tmp_path / "q.xml"
    xml.write_bytes(Questionnaire.model_validate(simple).model_dump_xml())
    result = runner.invoke(main, ["questionnaire", "check", str(xml)])
    assert result.exit_code == 0, result.output
    commented = tmp_path / "commented.xml"
    commented.write_bytes(
        b'<Questionnaire xmlns="http://hl7.org/fhir"><!-- note --><status value="active"/>'
        b'<item><linkId value="a"/><!-- why --><type value="string"/></item></Questionnaire>'
    )
    result = runner.invoke(main, ["questionnaire", "check", str(commented)])
    assert result.exit_code == 0 and "ok: 1 items" in result.output


def test_check_lists_the_problems_of_a_broken_questionnaire(runner, tmp_path):
    broken = {
        "resourceType": "Questionnaire",
        "status": "active",
        "item": [{"linkId": "a", "type": "string"}, {"linkId": "a", "type": "nope"}],
    }
    result = runner.invoke(
        main, ["questionnaire", "check", str(write(tmp_path, "q.json", broken))]
    )
    assert result.exit_code == 1
    assert (
        "a: linkId is used twice" in result.output and "unknown item type 'nope'" in result.output
    )


def test_validate_prints_an_operation_outcome(runner, resources, tmp_path):
    phq = by_id(resources, "Questionnaire", "phq-9")
    full = phq9_response(phq, 1)
    response = {**full, "item": full["item"][1:]}  # the group of items 1-9 missing
    args = [
        "questionnaire",
        "validate",
        str(write(tmp_path, "q.json", phq)),
        str(write(tmp_path, "qr.json", response)),
    ]
    result = runner.invoke(main, args)
    assert result.exit_code == 1
    outcome = json.loads(result.output)
    assert outcome["resourceType"] == "OperationOutcome"
    [path] = outcome["issue"][0]["expression"]
    assert path == "QuestionnaireResponse.repeat(item).where(linkId='phq9-1')"
    # the path finds the item where a complete response has it (it sits in a group)
    [found] = evaluate(path.removeprefix("QuestionnaireResponse."), full, phq)
    assert found["linkId"] == "phq9-1"


def test_score_prints_scores_and_bands(runner, resources, tmp_path):
    phq = by_id(resources, "Questionnaire", "phq-9")
    args = [
        "questionnaire",
        "score",
        str(write(tmp_path, "q.json", phq)),
        str(write(tmp_path, "qr.json", phq9_response(phq, 2))),
        "--lang",
        "en",
    ]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    [total] = json.loads(result.output)
    assert (total["linkId"], total["value"], total["band"]) == (
        "phq9-total",
        18,
        "moderately-severe",
    )


def test_score_reads_xml_and_names_the_occurrence_of_a_repeating_group(runner, tmp_path):
    form = load_form(SUBSCALES)
    days = [{"energy": [{"valueInteger": 2}]}, {"sleep": [{"valueInteger": 6}]}]
    response = build_response(form, {"day": days})
    questionnaire = tmp_path / "q.xml"
    questionnaire.write_bytes(resource_to_xml(SUBSCALES))
    qr = tmp_path / "qr.xml"
    qr.write_bytes(resource_to_xml(response))
    result = runner.invoke(main, ["questionnaire", "score", str(questionnaire), str(qr)])
    assert result.exit_code == 0, result.output
    assert [(s["linkId"], s["value"], s.get("instance")) for s in json.loads(result.output)] == [
        ("day-total", 2, [["day", 0]]),
        ("day-total", 6, [["day", 1]]),
        ("week-total", 8, None),
    ]
