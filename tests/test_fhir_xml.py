"""FHIR XML read into FHIR JSON by our converter, where fhir.resources' reader refuses."""

from __future__ import annotations

import json

import pytest
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.questionnaire import Questionnaire

from fhir_burnout.fhir import FhirXmlError, resource_from_xml, resource_to_xml
from fhir_burnout.questionnaire import load_form

# Valid R4, written the way other systems write it: comments, a translation on the value of
# an extension (a primitive extension on Extension.valueString), a primitive that has only
# an extension inside a repeating list, a contained ValueSet, a narrative.
MESSY = b"""<?xml version="1.0" encoding="UTF-8"?>
<!-- exported by another system -->
<Questionnaire xmlns="http://hl7.org/fhir">
  <id value="messy"/>
  <contained>
    <ValueSet>
      <id value="moods"/>
      <status value="active"/>
      <expansion>
        <timestamp value="2026-11-01T00:00:00Z"/>
        <contains>
          <system value="urn:moods"/><code value="ok"/><display value="Goed"/>
        </contains>
        <contains>
          <system value="urn:moods"/><code value="low"/><display value="Somber"/>
        </contains>
      </expansion>
    </ValueSet>
  </contained>
  <text>
    <status value="generated"/>
    <div xmlns="http://www.w3.org/1999/xhtml"><p>Stemming</p></div>
  </text>
  <url value="https://example.org/Questionnaire/messy"/>
  <version value="2"/>
  <status value="active"/>
  <subjectType value="Patient"/>
  <subjectType>
    <extension url="http://hl7.org/fhir/StructureDefinition/data-absent-reason">
      <valueCode value="unknown"/>
    </extension>
  </subjectType>
  <item>
    <!-- the mood question -->
    <extension url="http://hl7.org/fhir/StructureDefinition/entryFormat">
      <valueString value="kies er een">
        <extension url="http://hl7.org/fhir/StructureDefinition/translation">
          <extension url="lang"><valueCode value="en"/></extension>
          <extension url="content"><valueString value="pick one"/></extension>
        </extension>
      </valueString>
    </extension>
    <linkId value="mood"/>
    <text value="Hoe gaat het?">
      <extension url="http://hl7.org/fhir/StructureDefinition/translation">
        <extension url="lang"><valueCode value="en"/></extension>
        <extension url="content"><valueString value="How are you?"/></extension>
      </extension>
    </text>
    <type value="choice"/>
    <required value="true"/>
    <answerValueSet value="#moods"/>
  </item>
  <item>
    <linkId value="hours"/>
    <type value="decimal"/>
    <initial><valueDecimal value="7.5"/></initial>
  </item>
  <item>
    <linkId value="count"/>
    <type value="integer"/>
    <maxLength value="3"/>
  </item>
</Questionnaire>
"""


def test_a_questionnaire_fhir_resources_refuses_is_read_and_loads():
    with pytest.raises(ValueError, match="valueString"):
        Questionnaire.model_validate_xml(MESSY)
    q = resource_from_xml(MESSY)
    assert q["resourceType"] == "Questionnaire" and q["id"] == "messy"
    assert q["subjectType"] == ["Patient", None]
    assert q["_subjectType"][0] is None and q["_subjectType"][1]["extension"][0]["url"].endswith(
        "data-absent-reason"
    )
    entry = q["item"][0]["extension"][0]
    assert entry["valueString"] == "kies er een"
    assert entry["_valueString"]["extension"][0]["url"].endswith("/translation")
    assert q["item"][0]["required"] is True and q["item"][2]["maxLength"] == 3
    assert q["item"][1]["initial"] == [{"valueDecimal": 7.5}]
    assert q["contained"][0]["resourceType"] == "ValueSet"
    assert q["text"]["div"].startswith('<div xmlns="http://www.w3.org/1999/xhtml">')
    assert "fhir_comments" not in json.dumps(q)

    form = load_form(q, lang="en")
    mood = form.index["mood"]
    assert mood.text == "How are you?" and [o.label for o in mood.options] == ["Goed", "Somber"]
    assert form.canonical == "https://example.org/Questionnaire/messy|2"


def test_every_resource_we_build_round_trips_through_fhir_xml(resources):
    for resource in resources:
        ours = resource_to_xml(resource)
        assert resource_from_xml(ours) == json.loads(json.dumps(resource)), resource["id"]
        # We also read what fhir.resources writes. (Not the other way round for everything:
        # it writes and reads Element.id as a child element; FHIR XML has it an attribute.)
        model = get_fhir_model_class(resource["resourceType"])
        theirs = model.model_validate(resource).model_dump_xml()
        read = resource_from_xml(theirs if isinstance(theirs, bytes) else theirs.encode())
        assert model.model_validate(read) == model.model_validate(resource)


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        (b"<Questionnaire xmlns='http://hl7.org/fhir'><statuss value='x'/></Questionnaire>",
         "Questionnaire.statuss: no such element"),
        (b"<Questionnaire xmlns='http://hl7.org/fhir'><item><required value='yes'/></item>"
         b"</Questionnaire>", "Questionnaire.item.required: 'yes' is not a valid boolean"),
        (b"<Questionnaire><status value='active'/></Questionnaire>", "not in the FHIR namespace"),
        (b"<Nonsense xmlns='http://hl7.org/fhir'/>", "'Nonsense' is not a FHIR resource type"),
        (b"<Questionnaire xmlns='http://hl7.org/fhir'><status value='a'/><status value='b'/>"
         b"</Questionnaire>", "may occur only once"),
        (b"<Questionnaire xmlns='http://hl7.org/fhir'><status/></Questionnaire>",
         "neither a value nor extensions"),
        (b"<Questionnaire xmlns='http://hl7.org/fhir'>", "not well-formed"),
    ],
)  # fmt: skip
def test_xml_that_is_not_fhir_gets_an_error_that_says_where(xml, message):
    with pytest.raises(FhirXmlError, match=message) as caught:
        resource_from_xml(xml)
    assert caught.value.outcome()["issue"][0]["code"] == "structure"


def test_entities_are_neither_resolved_nor_expanded(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("do-not-leak")
    external = (
        f'<?xml version="1.0"?><!DOCTYPE Questionnaire [<!ENTITY x SYSTEM "file://{secret}">]>'
        '<Questionnaire xmlns="http://hl7.org/fhir"><status value="active"/>'
        "<title>&x;</title></Questionnaire>"
    ).encode()
    laughs = (
        '<?xml version="1.0"?><!DOCTYPE Questionnaire [<!ENTITY a "aaaaaaaaaa">'
        + "".join(
            f'<!ENTITY {n} "{("&" + p + ";") * 10}">'
            for p, n in zip("abcdefg", "bcdefgh", strict=True)
        )
        + ']><Questionnaire xmlns="http://hl7.org/fhir"><status value="active"/>'
        "<title>&h;</title></Questionnaire>"
    ).encode()
    for evil in (external, laughs):
        try:
            read = json.dumps(resource_from_xml(evil))
        except FhirXmlError:
            continue
        assert "do-not-leak" not in read and "aaaaaaaaaaaaaaaaaaaa" not in read
