"""The fhir-burnout command as a content author and `make demo` use it."""

from __future__ import annotations

import json

from fhir_burnout.cli import main


def test_demo_builds_publishes_into_the_sandbox_and_prints_the_programme(
    runner, tmp_path, programme, resources
):
    info = tmp_path / "demo.json"
    args = ["demo", "--out", str(tmp_path / "dist"), "--info", str(info), "--exit"]
    args += ["--work-dir", str(tmp_path / "work")]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    for phase in programme.phases:
        assert phase.title.get("en") in result.output
    for module in programme.modules:
        assert f"[{module.code}]" in result.output
    assert "[phq-9]" in result.output
    tgz = tmp_path / "dist" / f"fhir-burnout.programme-{programme.version}.tgz"
    assert str(tgz.resolve()) in result.output
    assert (
        f"Published into the sandbox EHR: {len(resources)} created, 0 already there."
        in result.output
    )
    assert "FHIR server:          http://127.0.0.1:" in result.output
    assert "The app:              http://127.0.0.1:" in result.output
    assert "Sync worker:          delivering the outbox to the sandbox EHR" in result.output
    # Seeded patients are on their way, in different tracks and at different points.
    assert "Enrolled: Patient/pat-01 in standard, 1 module(s) done" in result.output
    assert "Enrolled: Patient/pat-03 in after-care, 2 module(s) done" in result.output
    assert "Enrolled: Patient/pat-04 in standard, 5 module(s) done" in result.output
    written = json.loads(info.read_text())
    assert {"fhir_base", "issuer", "launcher", "clients", "seed", "app_url"} <= set(written)
    assert written["app_client_id"] == "fhir-burnout"


def test_summary_in_dutch(runner):
    result = runner.invoke(main, ["summary", "--lang", "nl"])
    assert result.exit_code == 0
    assert "Fase 1: Herstel via het lichaam" in result.output


def test_validate_passes_on_the_built_artifacts(runner, built):
    args = ["validate", str(built.tgz), str(built.bundle_json), str(built.bundle_xml)]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok: ")


def test_validate_fails_on_a_broken_artifact(runner, built, tmp_path):
    bundle = json.loads(built.bundle_json.read_text())
    plan = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "PlanDefinition"
    )
    plan["action"][0]["action"][0]["definitionCanonical"] = (
        "https://fhir-burnout.org/fhir/ActivityDefinition/gone|0.1.0"
    )
    broken = tmp_path / "bundle.json"
    broken.write_text(json.dumps(bundle))
    result = runner.invoke(main, ["validate", str(broken)])
    assert result.exit_code == 1
    assert "ActivityDefinition/gone|0.1.0' does not resolve inside the package" in result.output


def test_build_writes_where_asked(runner, tmp_path):
    result = runner.invoke(main, ["build", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "bundle.xml").exists()
