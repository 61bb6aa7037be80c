"""The builder: resources, the NPM package, the bundles, determinism, XML round trip."""

from __future__ import annotations

import base64
import itertools
import json
import tarfile

import pytest
from lxml import etree
from markdown_it import MarkdownIt

from fhir_burnout.resources import (
    build_resources,
    bundle_from_xml,
    load_programme,
    read_package,
    write_package,
)

from .conftest import by_id


def test_build_writes_the_package_and_both_bundles(built, programme):
    assert built.tgz.name == f"fhir-burnout.programme-{programme.version}.tgz"
    assert built.bundle_json.exists() and built.bundle_xml.exists()
    bundle = json.loads(built.bundle_json.read_text())
    assert bundle["type"] == "collection"
    assert len(bundle["entry"]) == built.resources


def test_two_builds_are_byte_identical(programme, tmp_path):
    first = write_package(programme, build_resources(programme), tmp_path / "a")
    again, _ = load_programme(programme.root)
    second = write_package(again, build_resources(again), tmp_path / "b")
    for a, b in [
        (first.tgz, second.tgz),
        (first.bundle_json, second.bundle_json),
        (first.bundle_xml, second.bundle_xml),
    ]:
        assert a.read_bytes() == b.read_bytes(), a.name


def test_package_has_manifest_index_and_a_file_per_resource(built, resources, programme):
    with tarfile.open(built.tgz) as tar:
        names = tar.getnames()
        manifest = json.load(tar.extractfile("package/package.json"))
        index = json.load(tar.extractfile("package/.index.json"))
    assert manifest["name"] == programme.name
    assert manifest["version"] == programme.version
    assert manifest["fhirVersions"] == ["4.0.1"]
    assert manifest["canonical"] == programme.canonical
    assert index["index-version"] == 2
    files = {f["filename"] for f in index["files"]}
    assert files == {n.removeprefix("package/") for n in names} - {"package.json", ".index.json"}
    assert len(files) == len(resources)
    _, read_back = read_package(built.tgz)
    assert read_back == resources


def test_json_to_xml_to_json_round_trips_exactly(built):
    bundle = json.loads(built.bundle_json.read_text())
    assert bundle_from_xml(built.bundle_xml.read_bytes()) == bundle


def test_xml_is_fhir_xml(built):
    root = etree.fromstring(built.bundle_xml.read_bytes())
    ns = "{http://hl7.org/fhir}"
    assert root.tag == f"{ns}Bundle"
    first = root.find(f"{ns}entry/{ns}resource/*")
    assert first is not None and first.tag.startswith(ns)
    # primitives carry value attributes, as FHIR XML requires
    assert root.find(f"{ns}type").get("value") == "collection"


def test_xml_reader_does_not_expand_entities(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("do-not-leak")
    evil = (
        f'<?xml version="1.0"?><!DOCTYPE Bundle [<!ENTITY x SYSTEM "file://{secret}">]>'
        '<Bundle xmlns="http://hl7.org/fhir"><id value="&x;"/><type value="collection"/></Bundle>'
    ).encode()
    try:
        bundle = bundle_from_xml(evil)
    except (ValueError, etree.XMLSyntaxError):
        return
    assert "do-not-leak" not in json.dumps(bundle)


@pytest.mark.parametrize(
    ("track", "phases"),
    [
        ("standard", ["recovery", "insight", "change"]),
        ("waiting-list", ["recovery"]),
        ("after-care", ["recovery", "change"]),
    ],
)
def test_each_track_is_a_plan_definition_with_its_phases_in_order(resources, track, phases):
    plan = by_id(resources, "PlanDefinition", track)
    actions = [a for a in plan["action"] if a["id"] != "measures"]
    assert [a["id"] for a in actions] == phases
    for previous, action in itertools.pairwise(actions):
        assert action["relatedAction"] == [
            {"actionId": previous["id"], "relationship": "after-end"}
        ]


def test_module_actions_point_at_versioned_canonicals_in_order(resources, programme):
    plan = by_id(resources, "PlanDefinition", "standard")
    insight = next(a for a in plan["action"] if a["id"] == "insight")
    modules = [a for a in insight["action"] if "." not in a["id"]]
    assert [a["id"] for a in modules] == list(programme.phase_of("insight").modules)
    for action in modules:
        url = f"{programme.canonical}/ActivityDefinition/{action['id']}|{programme.version}"
        assert action["definitionCanonical"] == url
    homework = next(a for a in insight["action"] if a["id"] == "boundaries.boundary-log")
    assert homework["definitionCanonical"].endswith(
        f"/Questionnaire/boundary-log|{programme.version}"
    )
    assert homework["relatedAction"] == [{"actionId": "boundaries", "relationship": "after-start"}]


def test_later_phases_say_how_they_unlock(resources, programme):
    standard = by_id(resources, "PlanDefinition", "standard")
    unlock = f"{programme.canonical}/StructureDefinition/unlock"
    assert [e["valueCode"] for e in standard["action"][1]["extension"] if e["url"] == unlock] == [
        "practitioner"
    ]
    after_care = by_id(resources, "PlanDefinition", "after-care")
    assert after_care["action"][1]["extension"][0]["valueCode"] == "automatic"


def test_waiting_list_needs_no_therapist(resources):
    plan = by_id(resources, "PlanDefinition", "waiting-list")
    codes = {a["id"] for phase in plan["action"] for a in phase.get("action", [])}
    assert "perfectionism" not in codes and "behavioural-experiments" not in codes
    assert "weekly-checkin.weekly" in codes


def test_activity_definition_carries_the_module_text_in_both_languages(resources, programme):
    ad = by_id(resources, "ActivityDefinition", "body-signals")
    assert ad["kind"] == "Task"
    assert ad["code"]["coding"][0]["code"] == "body-signals"
    docs = {
        a["document"]["language"]: a for a in ad["relatedArtifact"] if a["type"] == "documentation"
    }
    assert set(docs) == {"nl", "en"}
    text = base64.b64decode(docs["nl"]["document"]["data"]).decode()
    assert text == programme.module("body-signals").file("nl").body
    assert "## Oefening: " in text
    assert ad["title"] == programme.module("body-signals").title.get("nl")
    assert ad["_title"]["extension"][0]["extension"][1]["valueString"] == programme.module(
        "body-signals"
    ).title.get("en")


def links_in(markdown: str) -> list[str]:
    """Every link's address in ``markdown``, as a CommonMark reader finds them."""
    tokens = MarkdownIt("commonmark").parse(markdown)
    inline = [c for t in tokens for c in t.children or []]
    return [str(c.attrGet("href")) for c in inline if c.type == "link_open"]


def test_every_link_between_modules_in_the_package_is_the_canonical_url_of_that_module(
    resources, programme
):
    modules = {r["url"] for r in resources if r["resourceType"] == "ActivityDefinition"}
    base = programme.url("ActivityDefinition", "")
    found = []
    for ad in (r for r in resources if r["resourceType"] == "ActivityDefinition"):
        for doc in (a["document"] for a in ad.get("relatedArtifact", []) if "document" in a):
            for href in links_in(base64.b64decode(doc["data"]).decode()):
                assert ".md" not in href, (ad["id"], href)  # a file of ours means nothing there
                if href.startswith(base):
                    assert href.split("#")[0] in modules, (ad["id"], href)
                    found.append((ad["id"], doc["language"], href))
    assert len(found) >= 20  # all of them, in both languages (issue 20 counted 20)
    assert ("tension-relaxation", "en", f"{base}body-signals") in found


def test_every_extension_of_ours_is_defined_in_the_package(resources, programme):
    defined = {r["url"] for r in resources if r["resourceType"] == "StructureDefinition"}
    used = set()

    def walk(value):
        if isinstance(value, dict):
            if (isinstance(value.get("url"), str) and "extension" in value) or any(
                k.startswith("value") for k in value
            ):
                url = value.get("url", "")
                if isinstance(url, str) and url.startswith(
                    programme.canonical + "/StructureDefinition/"
                ):
                    used.add(url)
            for child in value.values():
                walk(child)
        elif isinstance(value, list):
            for child in value:
                walk(child)

    walk(resources)
    assert used and used <= defined


def test_answer_code_systems_get_a_code_system_and_an_expanded_value_set(resources, programme):
    cs = by_id(resources, "CodeSystem", "safety-answer")
    vs = by_id(resources, "ValueSet", "safety-answer")
    assert cs["content"] == "complete"
    codes = [c["code"] for c in cs["concept"]]
    assert [c["code"] for c in vs["expansion"]["contains"]] == codes
    assert all(c["designation"][0]["language"] == "en" for c in cs["concept"])
