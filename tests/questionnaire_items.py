"""Questionnaires built in a test, item by item: FHIRPath expressions as SDC extensions
(variables, calculated values) and a repeating group whose entries carry their own scores."""

from __future__ import annotations

CORE = "http://hl7.org/fhir/StructureDefinition/"
SDC = "http://hl7.org/fhir/uv/sdc/StructureDefinition/"


def expression(url, text, name=None):
    value = {"language": "text/fhirpath", "expression": text}
    if name:
        value["name"] = name
    return {"url": url, "valueExpression": value}


def variable(name, text):
    return expression(CORE + "variable", text, name)


def calculated(text):
    return expression(SDC + "sdc-questionnaire-calculatedExpression", text)


def q(*items, **extra):
    return {"resourceType": "Questionnaire", "status": "active", "item": list(items), **extra}


SUBSCALES = q(
    {
        "linkId": "day",
        "type": "group",
        "repeats": True,
        "extension": [
            variable("scores", "%context.item.where(linkId != 'day-total').answer.value")
        ],
        "item": [
            {"linkId": "energy", "type": "integer"},
            {"linkId": "sleep", "type": "integer"},
            {
                "linkId": "day-total",
                "type": "integer",
                "readOnly": True,
                "extension": [calculated("%scores.sum()")],
            },
        ],
    },
    {
        "linkId": "week-total",
        "type": "decimal",
        "readOnly": True,
        "extension": [
            calculated("%dayGroups.item.where(linkId = 'day-total').answer.value.sum()")
        ],
    },
    {"linkId": "remark", "type": "string"},
    extension=[variable("dayGroups", "%resource.item.where(linkId = 'day')")],
)
