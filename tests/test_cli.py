"""The fhir-burnout command as a content author and `make demo` use it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

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
    assert "Enrolled: pat-01 (Anna Voorbeeld): standard, 1 module(s) done" in result.output
    assert "pat-03 (Cato de Testgeval): after-care, 2 module(s) done, 4 quest" in result.output
    assert "pat-04 (Daan Oefenaar): standard, 5 module(s) done, 4 quest" in result.output
    assert "/launcher?app=fhir-burnout&patient=pat-04&practitioner=prac-1" in result.output
    # The seeded referrals: three wait for triage, the care professional accepted three
    # onto the waiting list (each client with an invitation); a client in treatment
    # already keeps their plan.
    assert (
        "Referrals (8 from the seed, taken in by the poll; 3 wait for triage on /practice,"
        " the others were accepted onto the waiting list):"
    ) in result.output
    assert re.search(
        r"    pat-16 \([^)]+\): waiting for triage \(aangemeld, nog niet beoordeeld\)\n",
        result.output,
    ), result.output
    assert re.search(
        r"pat-07 \(Gijs [^)]+\): waiting-list, invitation ([0-9A-Z]{4}-[0-9A-Z]{4}): "
        r"http://127\.0\.0\.1:\d+/invite/\1",
        result.output,
    ), result.output
    assert "    pat-04 (Daan Oefenaar): standard\n" in result.output
    assert "/launcher?app=fhir-burnout&patient=pat-04&portal=1" in result.output
    # The app inside the sandbox EHR's chart page: the demo lets the launcher frame it.
    assert "/launcher?app=fhir-burnout&patient=pat-04&practitioner=prac-1&frame=1" in result.output
    written = json.loads(info.read_text())
    assert {"fhir_base", "issuer", "launcher", "clients", "seed", "app_url"} <= set(written)
    assert written["app_client_id"] == "fhir-burnout"


@pytest.mark.slow
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


@pytest.mark.slow
def test_build_writes_where_asked(runner, tmp_path):
    result = runner.invoke(main, ["build", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "bundle.xml").exists()


def test_a_new_user_follows_the_demo_output_to_a_client_on_their_way(tmp_path, page):
    """What the README promises: run the demo, open the address it prints, see a programme."""
    fhir_burnout = Path(sys.executable).with_name("fhir-burnout")
    command = [str(fhir_burnout), "demo", "--out", str(tmp_path / "dist")]
    command += ["--work-dir", str(tmp_path / "work")]
    demo = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        printed = []
        for line in demo.stdout:
            printed.append(line)
            if "launcher?app=" in line:
                break
        straight = printed[-1].strip()
        assert straight.startswith("http://127.0.0.1:"), "".join(printed)
        page.goto(straight)
        page.wait_for_url(re.compile(r"http://127\.0\.0\.1:\d+/(\?ctx=[\w-]+)?$"))
        home = page.locator("main").inner_text()
        assert "Daan Oefenaar" in page.content() and "Fase 2" in home
        page.get_by_role("link", name="Bekijk hoe het gaat").click()
        progress = page.locator("main").inner_text()
        assert "Je energiedagboek" in progress and "Welbevinden (WHO-5)" in progress
        # The care professional's side: the practice's list holds the seeded waiting list.
        page.goto(re.sub(r"/progress.*$", "/practice", page.url))
        practice = page.locator("main").inner_text()
        assert "pat-07" in practice and "Op de wachtlijst" in practice
        assert "Aanmeldingen om te beoordelen (3)" in practice and "pat-16" in practice
    finally:
        os.killpg(demo.pid, signal.SIGINT)  # Ctrl-C, as the README says
        rest, _ = demo.communicate(timeout=30)
        assert demo.returncode == 0, rest
