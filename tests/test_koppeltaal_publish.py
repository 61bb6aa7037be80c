"""Koppeltaal publishing: the programme as KT2_ActivityDefinitions and one KT2_Endpoint, and
``publish --mode koppeltaal`` against the sandbox in its Koppeltaal profile (server ids,
POST-only creates, If-Match on every PUT, resource-origin set by the server)."""

from __future__ import annotations

import copy
import json
import re
import uuid

import pytest
import requests

import fhir_burnout.koppeltaal
from fhir_burnout.cli import main
from fhir_burnout.errors import ValidationProblemsError
from fhir_burnout.fhir import FhirClient
from fhir_burnout.koppeltaal._profiles import (
    ACTIVITY_DEFINITION_PROFILE,
    DEFINITION_TOPIC_SYSTEM,
    ENDPOINT_EXTENSION,
    ENDPOINT_PROFILE,
    FORBIDDEN_ACTIVITY_DEFINITION,
    FORBIDDEN_ENDPOINT,
    PUBLISHER_ID_EXTENSION,
    RESOURCE_ORIGIN_EXTENSION,
    activity_definition_problems,
    definition_kind,
    endpoint_problems,
    kt2_activity_definitions,
    kt2_endpoint,
    self_start_of,
)
from fhir_burnout.koppeltaal._publish import publish_koppeltaal
from fhir_burnout.resources import build_resources, validate_sources
from fhir_burnout.resources._fhirjson import normalise, translations

from .conftest import kt_token_source

APP = "https://burnout.example-practice.nl"
SANDBOX_APP = "http://127.0.0.1:8999"
UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


@pytest.fixture(scope="module")
def definitions(resources):
    return kt2_activity_definitions(resources, endpoint="Endpoint/e1", publisher_id="fhir-burnout")


# --- the profiles, without a server ------------------------------------------------------------


def test_every_module_and_every_track_becomes_one_kt2_activity_definition(definitions, programme):
    kinds = [definition_kind(d) for d in definitions]
    assert kinds == [("module", m.code) for m in programme.modules] + [
        ("track", t.code) for t in programme.tracks
    ]
    assert len({d["url"] for d in definitions}) == len(definitions)


def test_kt2_activity_definitions_carry_what_the_profile_requires(definitions):
    for definition in definitions:
        assert definition["meta"]["profile"] == [ACTIVITY_DEFINITION_PROFILE]
        assert definition["url"] and definition["title"]
        assert definition["status"] == "active"
        extensions = {e["url"]: e for e in definition["extension"]}
        assert extensions[ENDPOINT_EXTENSION]["valueReference"]["reference"] == "Endpoint/e1"
        assert extensions[PUBLISHER_ID_EXTENSION]["valueId"] == "fhir-burnout"
        assert activity_definition_problems(definition) == []


def test_no_module_or_track_is_marked_for_a_client_to_start_alone_by_default(definitions):
    # IG 0.16.3 KT2_ActivityDefinition.topic: "used to indicate that the activity is intended
    # or suitable for initialization by patients". Our content marks none: a care
    # professional assigns every module and track.
    assert [d["url"] for d in definitions if "topic" in d] == []
    assert {self_start_of(d) for d in definitions} == {None}


@pytest.mark.parametrize("value", ["self-treatment", "self-assessment"])
def test_a_module_the_content_marks_self_start_is_published_with_that_topic(minimal, value):
    for lang in ("nl", "en"):
        path = minimal / "content" / lang / "breathing.md"
        path.write_text(
            path.read_text().replace("phase: rest\n", f"phase: rest\nself-start: {value}\n", 1)
        )
    programme, problems = validate_sources(minimal)
    assert problems == [] and programme is not None
    built = build_resources(programme)
    module, track = kt2_activity_definitions(built, endpoint="Endpoint/e1", publisher_id="m")
    display = {"self-treatment": "Zelfhulp", "self-assessment": "Zelfstarten"}[value]
    assert module["topic"] == [
        {"coding": [{"system": DEFINITION_TOPIC_SYSTEM, "code": value, "display": display}]}
    ]
    assert "topic" not in track  # the track is not marked: still the care professional's
    assert activity_definition_problems(module) == []


def test_a_track_the_content_marks_self_start_is_published_with_that_topic(minimal):
    path = minimal / "content" / "programme.yaml"
    path.write_text(path.read_text().replace(
        "    unlock: practitioner\n", "    unlock: practitioner\n    self-start: self-assessment\n"
    ))  # fmt: skip
    programme, problems = validate_sources(minimal)
    assert problems == [] and programme is not None
    module, track = kt2_activity_definitions(
        build_resources(programme), endpoint="Endpoint/e1", publisher_id="m"
    )
    assert self_start_of(track) == "self-assessment" and self_start_of(module) is None


def test_with_results_on_each_definition_announces_the_document_in_use_context(resources):
    # IG 0.16.3 documenten-delen.md, "Aankondiging via de ActivityDefinition": the module
    # announces the DocumentReference in useContext (koppeltaal-expansion 029-DocumentenDelen).
    announced = kt2_activity_definitions(
        resources, endpoint="Endpoint/e1", publisher_id="fhir-burnout", results=True
    )
    for definition in announced:
        assert definition["useContext"] == [{
            "code": {
                "system": "http://vzvz.nl/fhir/CodeSystem/koppeltaal-usage-context-type",
                "code": "koppeltaal-expansion",
            },
            "valueCodeableConcept": {"coding": [{
                "system": "http://vzvz.nl/fhir/CodeSystem/koppeltaal-expansion",
                "code": "029-DocumentenDelen",
                "display": "Documenten Delen",
            }]},
        }]  # fmt: skip
        assert activity_definition_problems(definition) == []
        normalise(definition)
    quiet = kt2_activity_definitions(resources, endpoint="Endpoint/e1", publisher_id="m")
    assert not [d for d in quiet if "useContext" in d]


@pytest.mark.parametrize(
    ("use_context", "problem"),
    [
        ([{"code": {"code": "age"}}], "useContext[0].code: not in KoppeltaalUsageContextType_VS"),
        (
            [{"code": {"system": "http://vzvz.nl/fhir/CodeSystem/koppeltaal-usage-context-type",
                       "code": "koppeltaal-expansion"},
              "valueCodeableConcept": {"text": "documents"}}],
            "useContext[0]: a koppeltaal-expansion needs a koppeltaal-expansion code",
        ),
    ],
)  # fmt: skip
def test_the_profile_check_finds_a_use_context_the_ig_does_not_bind(
    definitions, use_context, problem
):
    broken = {**copy.deepcopy(definitions[0]), "useContext": use_context}
    assert problem in activity_definition_problems(broken)


def test_the_profile_check_takes_the_igs_own_use_context_example(definitions):
    # IG example activitydefinition-standard-usecontext.fsh: age, gender and an expansion.
    example = {**copy.deepcopy(definitions[0]), "useContext": [
        {"code": {"system": "http://terminology.hl7.org/CodeSystem/usage-context-type",
                  "code": "age"},
         "valueRange": {"low": {"value": 18}, "high": {"value": 65}}},
        {"code": {"system": "http://vzvz.nl/fhir/CodeSystem/koppeltaal-usage-context-type",
                  "code": "koppeltaal-expansion"},
         "valueCodeableConcept": {"coding": [{
             "system": "http://vzvz.nl/fhir/CodeSystem/koppeltaal-expansion",
             "code": "026-RolvdNaaste"}]}},
    ]}  # fmt: skip
    assert activity_definition_problems(example) == []


def test_kt2_activity_definitions_leave_out_every_element_the_profile_forbids(definitions):
    for definition in definitions:
        present = {key.lstrip("_") for key in definition}
        for element in FORBIDDEN_ACTIVITY_DEFINITION:
            assert not any(k == element or k.startswith(element) for k in present), element
        assert RESOURCE_ORIGIN_EXTENSION not in {e["url"] for e in definition["extension"]}
        assert "id" not in definition  # the server assigns it


def test_titles_are_dutch_with_an_english_translation(definitions, programme):
    first = programme.modules[0]
    [module] = [d for d in definitions if definition_kind(d) == ("module", first.code)]
    assert module["title"] == first.title.get("nl")
    assert translations(module["_title"]) == {"en": first.title.get("en")}
    track = programme.tracks[0]
    [plan] = [d for d in definitions if definition_kind(d) == ("track", track.code)]
    assert plan["title"].endswith(track.title.get("nl"))  # "<programme>: <track>"
    assert translations(plan["_description"])["en"] == track.description.get("en")


def test_kt2_resources_are_valid_fhir_r4(definitions):
    for resource in [*definitions, kt2_endpoint(APP, "https://x.example/fhir", "fhir-burnout")]:
        normalise(resource)  # raises on a structural error


@pytest.mark.parametrize(
    ("element", "value"),
    [
        ("publisher", "someone"),
        ("date", "2026-01-01"),
        ("contact", [{"name": "x"}]),
        ("kind", "Task"),
        ("timingTiming", {"event": ["2026-01-01"]}),
        ("jurisdiction", [{"text": "NL"}]),
        ("relatedArtifact", [{"type": "documentation"}]),
    ],
)
def test_the_profile_check_finds_a_forbidden_element(definitions, element, value):
    broken = {**copy.deepcopy(definitions[0]), element: value}
    problems = activity_definition_problems(broken)
    assert any(p.startswith(element.removesuffix("Timing")) for p in problems), problems


def test_the_profile_check_finds_a_missing_endpoint_and_a_server_owned_extension(definitions):
    broken = copy.deepcopy(definitions[0])
    broken["extension"] = [
        {"url": RESOURCE_ORIGIN_EXTENSION, "valueReference": {"reference": "Device/x"}}
    ]
    problems = activity_definition_problems(broken)
    assert any("KT2EndpointExtension" in p for p in problems)
    assert any("resource-origin" in p for p in problems)


def test_the_endpoint_has_the_fixed_values_and_our_launch_url():
    endpoint = kt2_endpoint(APP, "https://x.example/fhir", "fhir-burnout")
    assert endpoint["meta"]["profile"] == [ENDPOINT_PROFILE]
    assert endpoint["connectionType"]["code"] == "hti-smart-on-fhir"
    assert endpoint["connectionType"]["system"] == (
        "http://vzvz.nl/fhir/CodeSystem/koppeltaal-endpoint-connection-type"
    )
    assert endpoint["payloadType"][0]["coding"] == [
        {"system": "http://terminology.hl7.org/CodeSystem/endpoint-payload-type", "code": "any"}
    ]
    assert endpoint["address"] == f"{APP}/koppeltaal/launch"
    assert not set(FORBIDDEN_ENDPOINT) & set(endpoint)
    assert endpoint_problems(endpoint) == []


@pytest.mark.parametrize("base", ["http://burnout.example.nl", "ftp://burnout.example.nl"])
def test_a_launch_url_that_is_not_https_is_refused(base):
    with pytest.raises(ValueError, match="https"):
        kt2_endpoint(base, "https://x.example/fhir", "fhir-burnout")


def test_a_publisher_id_that_is_not_a_fhir_id_is_refused(resources):
    with pytest.raises(ValueError, match="FHIR id"):
        kt2_activity_definitions(resources, endpoint="Endpoint/e1", publisher_id="fhir burnout!")


# --- publishing to the Koppeltaal sandbox -------------------------------------------------------


def fresh_copy(resources, programme):
    """The package under a canonical base of its own (and tagged titles, so the portal's list
    shows which are a test's), so the test starts from nothing on the shared sandbox."""
    tag = uuid.uuid4().hex[:8]
    copied = json.loads(
        json.dumps(resources).replace(programme.canonical, f"{programme.canonical}/t-{tag}")
    )
    for resource in copied:
        if resource["resourceType"] in ("ActivityDefinition", "PlanDefinition"):
            resource["title"] = f"{resource['title']} [test {tag}]"
    return copied


class Recording(requests.Session):
    """A real session that remembers each request's method, URL and headers."""

    def __init__(self):
        super().__init__()
        self.sent, self.bodies = [], []

    def send(self, request, **kwargs):
        self.sent.append((request.method, request.url, dict(request.headers)))
        self.bodies.append(json.loads(request.body) if request.body else None)
        return super().send(request, **kwargs)


@pytest.fixture
def recording(kt_sandbox):
    session = Recording()
    with FhirClient(
        kt_sandbox.fhir_base, session=session, token_source=kt_token_source(kt_sandbox)
    ) as client:
        yield client, session


def stored(kt_fhir, steps):
    return {s.key: kt_fhir.read(s.resource_type, s.id) for s in steps}


def test_publishing_creates_the_endpoint_first_with_ids_the_server_chose(
    recording, kt_fhir, resources, programme
):
    client, session = recording
    mine = fresh_copy(resources, programme)
    steps = publish_koppeltaal(mine, client, base_url=SANDBOX_APP, publisher_id="fhir-burnout")
    assert [s.resource_type for s in steps[:1]] == ["Endpoint"]
    assert {s.action for s in steps} == {"create"}
    assert len(steps) == 1 + len(programme.modules) + len(programme.tracks)
    assert all(UUID4.fullmatch(s.id) for s in steps)
    writes = [(m, u) for m, u, _ in session.sent if m != "GET"]
    assert {m for m, _ in writes} == {"POST"}  # never a PUT-create
    posted = [b for (m, _, _), b in zip(session.sent, session.bodies, strict=True) if m == "POST"]
    for body in posted:
        assert "id" not in body  # the server chooses ids
        assert RESOURCE_ORIGIN_EXTENSION not in json.dumps(body)  # the server sets it
    on_server = stored(kt_fhir, steps)
    endpoint_id = steps[0].id
    for step in steps[1:]:
        definition = on_server[step.key]
        refs = [e for e in definition["extension"] if e["url"] == ENDPOINT_EXTENSION]
        assert refs[0]["valueReference"]["reference"] == f"Endpoint/{endpoint_id}"
        origin = [e for e in definition["extension"] if e["url"] == RESOURCE_ORIGIN_EXTENSION]
        assert origin[0]["valueReference"]["reference"] == "Device/fhir-burnout"
    assert on_server[steps[0].key]["address"] == f"{SANDBOX_APP}/koppeltaal/launch"


def test_publishing_twice_changes_nothing_the_second_time(
    recording, kt_fhir, resources, programme
):
    client, session = recording
    mine = fresh_copy(resources, programme)
    first = publish_koppeltaal(mine, client, base_url=SANDBOX_APP, publisher_id="fhir-burnout")
    versions = {s.key: kt_fhir.read(s.resource_type, s.id)["meta"]["versionId"] for s in first}
    session.sent.clear()
    second = publish_koppeltaal(mine, client, base_url=SANDBOX_APP, publisher_id="fhir-burnout")
    assert {s.action for s in second} == {"unchanged"}
    assert [(s.key, s.id) for s in second] == [(s.key, s.id) for s in first]
    assert {m for m, _, _ in session.sent} == {"GET"}  # nothing written
    after = {s.key: kt_fhir.read(s.resource_type, s.id)["meta"]["versionId"] for s in second}
    assert after == versions


def test_a_changed_title_is_one_put_with_if_match_that_keeps_resource_origin(
    recording, kt_fhir, resources, programme
):
    client, session = recording
    mine = fresh_copy(resources, programme)
    first = publish_koppeltaal(mine, client, base_url=SANDBOX_APP, publisher_id="fhir-burnout")
    changed = copy.deepcopy(mine)
    module = next(r for r in changed if r["resourceType"] == "ActivityDefinition")
    module["title"] = "Wat is burn-out? (herzien)"
    before = {s.key: kt_fhir.read(s.resource_type, s.id)["meta"]["versionId"] for s in first}
    session.sent.clear()
    steps = publish_koppeltaal(changed, client, base_url=SANDBOX_APP, publisher_id="fhir-burnout")
    [updated] = [s for s in steps if s.action == "update"]
    assert [s.action for s in steps].count("unchanged") == len(steps) - 1
    puts = [(u, h) for m, u, h in session.sent if m == "PUT"]
    assert [u for u, _ in puts] == [f"{client.base_url}/ActivityDefinition/{updated.id}"]
    assert puts[0][1]["If-Match"] == f'W/"{before[updated.key]}"'
    assert not [m for m, _, _ in session.sent if m == "POST"]
    on_server = kt_fhir.read("ActivityDefinition", updated.id)
    assert on_server["title"] == "Wat is burn-out? (herzien)"
    assert on_server["meta"]["versionId"] != before[updated.key]
    origin = [e for e in on_server["extension"] if e["url"] == RESOURCE_ORIGIN_EXTENSION]
    assert origin[0]["valueReference"]["reference"] == "Device/fhir-burnout"


def test_a_new_launch_url_updates_the_one_endpoint(recording, kt_fhir, resources, programme):
    client, _ = recording
    mine = fresh_copy(resources, programme)
    first = publish_koppeltaal(mine, client, base_url=SANDBOX_APP, publisher_id="fhir-burnout")
    moved = "http://127.0.0.1:8998"
    steps = publish_koppeltaal(mine, client, base_url=moved, publisher_id="fhir-burnout")
    assert (steps[0].action, steps[0].id) == ("update", first[0].id)
    assert {s.action for s in steps[1:]} == {"unchanged"}  # they point at the same Endpoint
    assert kt_fhir.read("Endpoint", first[0].id)["address"] == f"{moved}/koppeltaal/launch"


def test_turning_results_on_updates_each_definition_to_announce_the_document(
    recording, kt_fhir, resources, programme
):
    client, _ = recording
    mine = fresh_copy(resources, programme)
    first = publish_koppeltaal(mine, client, base_url=SANDBOX_APP, publisher_id="fhir-burnout")
    steps = publish_koppeltaal(
        mine, client, base_url=SANDBOX_APP, publisher_id="fhir-burnout", results=True
    )
    assert [s.action for s in steps] == ["unchanged"] + ["update"] * (len(steps) - 1)
    for step in steps[1:]:
        on_server = kt_fhir.read("ActivityDefinition", step.id)
        codes = [c["code"] for u in on_server["useContext"]
                 for c in u["valueCodeableConcept"]["coding"]]  # fmt: skip
        assert codes == ["029-DocumentenDelen"] and "topic" not in on_server
    assert [s.id for s in steps] == [s.id for s in first]  # the portals' Tasks still point there


def test_a_dry_run_only_reads(recording, resources, programme):
    client, session = recording
    mine = fresh_copy(resources, programme)
    steps = publish_koppeltaal(
        mine, client, base_url=SANDBOX_APP, publisher_id="fhir-burnout", dry_run=True
    )
    assert {s.action for s in steps} == {"create"}
    assert {m for m, _, _ in session.sent} == {"GET"}


def test_nothing_is_written_when_a_definition_would_break_the_profile(
    recording, resources, programme
):
    client, session = recording
    mine = fresh_copy(resources, programme)
    for resource in mine:
        if resource["resourceType"] == "ActivityDefinition":
            resource["title"] = ""
    with pytest.raises(ValidationProblemsError, match="title: required"):
        publish_koppeltaal(mine, client, base_url=SANDBOX_APP, publisher_id="fhir-burnout")
    assert not [m for m, _, _ in session.sent if m != "GET"]


# --- the command --------------------------------------------------------------------------------


def test_the_command_publishes_in_koppeltaal_mode_and_a_second_run_changes_nothing(
    runner, kt_sandbox, resources, programme, tmp_path
):
    bundle = tmp_path / "package.json"
    mine = fresh_copy(resources, programme)
    bundle.write_text(
        json.dumps(
            {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"resource": r} for r in mine],
            }
        )
    )
    key = tmp_path / "module.jwk"
    key.write_text(json.dumps(kt_sandbox.client("fhir-burnout")["private_keys"][0]))
    args = [
        "publish", "--mode", "koppeltaal", "--package", str(bundle),
        "--server", kt_sandbox.fhir_base, "--client-id", "fhir-burnout",
        "--private-key", str(key), "--app-url", SANDBOX_APP,
    ]  # fmt: skip
    first = runner.invoke(main, args, env={"FHIR_BURNOUT_CONFIG": ""})
    assert first.exit_code == 0, first.output
    lines = first.output.splitlines()
    assert lines[0].startswith("create    Endpoint/")
    n = 1 + len(programme.modules) + len(programme.tracks)
    assert lines[-1] == f"{n} create, 0 update, 0 unchanged"
    second = runner.invoke(main, args, env={"FHIR_BURNOUT_CONFIG": ""})
    assert second.exit_code == 0, second.output
    assert second.output.splitlines()[-1] == f"0 create, 0 update, {n} unchanged"


def test_the_command_takes_server_app_url_key_and_alg_from_the_config(
    runner, kt_sandbox, resources, programme, tmp_path
):
    bundle = tmp_path / "package.json"
    entries = [{"resource": r} for r in fresh_copy(resources, programme)]
    bundle.write_text(
        json.dumps({"resourceType": "Bundle", "type": "collection", "entry": entries})
    )
    (tmp_path / "module.jwk").write_text(
        json.dumps(kt_sandbox.client("fhir-burnout")["private_keys"][0])
    )
    config = tmp_path / "fhir-burnout.toml"
    config.write_text(
        f'base_url = "{SANDBOX_APP}"\nsecret_key = "s"\ntoken_key = "t"\n'
        f'[[ehr]]\nfhir_base = "{kt_sandbox.fhir_base}"\nclient_id = "fhir-burnout"\n'
        'mode = "koppeltaal"\nbackend_private_key = "module.jwk"\nkoppeltaal_alg = "RS512"\n'
    )
    args = ["publish", "--mode", "koppeltaal", "--config", str(config), "--package", str(bundle)]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    n = 1 + len(programme.modules) + len(programme.tracks)
    assert result.output.splitlines()[-1] == f"{n} create, 0 update, 0 unchanged"


def test_the_command_without_a_server_lists_what_it_would_post(runner, built):
    args = [
        "publish", "--mode", "koppeltaal", "--package", str(built.tgz), "--dry-run",
        "--app-url", APP, "--client-id", "fhir-burnout",
    ]  # fmt: skip
    result = runner.invoke(main, args, env={"FHIR_BURNOUT_CONFIG": ""})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"POST Endpoint  {APP}/koppeltaal/launch"
    assert all(line.startswith("POST ActivityDefinition  ") for line in lines[1:-1])


def test_koppeltaal_options_in_smart_mode_are_a_usage_error(runner, built):
    result = runner.invoke(
        main, ["publish", "--package", str(built.tgz), "--dry-run", "--client-id", "x"]
    )
    assert result.exit_code == 2
    assert "--mode koppeltaal" in result.output


def test_publishing_tokens_and_tracing_are_in_the_public_api():
    assert {
        "CONNECTION", "KoppeltaalStep", "TracedSession", "from_headers",
        "publish_koppeltaal", "traced",
    } <= set(fhir_burnout.koppeltaal.__all__)  # fmt: skip
