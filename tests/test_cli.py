"""The fhir-burnout command as a content author and `make demo` use it."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from fhir_burnout.cli import main

from .conftest import SCREENSHOTS


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
    # Seeded patients are on their way, in different tracks and at different points, with
    # the weeks behind them (tests/test_demo_history.py).
    assert "Enrolled: pat-01 (Anna Voorbeeld): standard, 1 week(s) in, 1 module(s) done" in (
        result.output
    )
    assert "pat-03 (Cato de Testgeval): after-care, 3 week(s) in, 2 module(s) done" in (
        result.output
    )
    assert "pat-04 (Daan Oefenaar): standard, 7 week(s) in, 5 module(s) done, 20 quest" in (
        result.output
    )
    assert "/launcher?app=fhir-burnout&patient=pat-04&practitioner=prac-1\n" in result.output
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
    # The app inside the sandbox EHR's chart page: the demo lets the launcher frame it.
    assert "/launcher?app=fhir-burnout&patient=pat-04&practitioner=prac-1&frame=1" in result.output
    # The address printed last is what the client sees: Daan, from the patient portal.
    last = result.output.rstrip().splitlines()[-1]
    assert re.fullmatch(
        r"  http://127\.0\.0\.1:\d+/launcher\?app=fhir-burnout&patient=pat-04&portal=1", last
    )
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


#: What the demo says while it starts, in this order, each line once its step is done.
DEMO_STEPS = (
    "Building the package",
    "Starting the sandbox EHR",
    "Publishing the programme into it",
    "Starting the app and its sync worker",
    "Enrolling the demo clients, with their weeks of history",
    "Taking in the sandbox's referrals",
)


def _lines_of(process):
    """The lines a child prints, as they come (None when it closes its output): a test
    waits for them with a deadline instead of forever."""
    lines = queue.Queue()

    def read():
        with process.stdout:  # closed here, once the child closed it
            for line in process.stdout:
                lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    return lines


def _follow_to_the_client_s_home(page, link, size):
    """Open the demo's client link as a newcomer would; the client's home and progress,
    with a screenshot of each."""
    page.goto(link)
    page.wait_for_url(re.compile(r"http://127\.0\.0\.1:\d+/(\?ctx=[\w-]+)?$"))
    home = page.locator("main").inner_text()
    assert "Daan Oefenaar" in page.content() and "Fase 2" in home
    assert "Welkom" in home and "zorgverlener" not in home.lower()  # the client, signed in
    page.screenshot(path=str(SCREENSHOTS / f"demo-home-{size}.png"), full_page=True)
    page.goto(re.sub(r"/(\?|$)", r"/progress\1", page.url, count=1))
    progress = page.locator("main").inner_text()
    # Weeks of history: scores at the start and the end of phase 1, energy-diary days.
    assert "PHQ-9" in progress and "WHO-5" in progress
    assert "Wandelen met de hond" in progress
    page.screenshot(path=str(SCREENSHOTS / f"demo-progress-{size}.png"), full_page=True)


def test_a_new_user_follows_the_demo_output_to_a_client_on_their_way(tmp_path, page, phone):
    """What the README promises: run the demo, watch it say what it does, open the address
    it prints last and see the client's own home (issue 20, point 8)."""
    fhir_burnout = Path(sys.executable).with_name("fhir-burnout")
    command = [str(fhir_burnout), "demo", "--out", str(tmp_path / "dist")]
    command += ["--work-dir", str(tmp_path / "work")]
    log = (tmp_path / "demo.log").open("w")  # the app's log lines, apart from what it says
    began = time.monotonic()
    demo = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True,
    )  # fmt: skip
    said_so_far = _lines_of(demo)
    try:
        printed, arrived = [], []
        deadline = time.monotonic() + 300
        while not (printed and printed[-1].endswith("&portal=1")):  # the client's, printed last
            try:
                line = said_so_far.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            assert line is not None, "the demo stopped saying things:\n" + "\n".join(printed)
            printed.append(line)
            arrived.append(time.monotonic() - began)
        output = "\n".join(printed)
        with pytest.raises(queue.Empty):  # nothing after it: the demo waits for Ctrl-C
            said_so_far.get(timeout=1)
        # Each step's line, in order, as soon as it is done: the first long before the end.
        said = [
            (i, match) for i, line in enumerate(printed)
            if (match := re.fullmatch(r"(.+)\N{HORIZONTAL ELLIPSIS} done \((\d+\.\d) s\)", line))
        ]  # fmt: skip
        assert [m.group(1) for _, m in said] == list(DEMO_STEPS), output
        assert arrived[-1] - arrived[said[0][0]] > 1.0, arrived
        client = printed[-1].strip()
        assert re.fullmatch(
            r"http://127\.0\.0\.1:\d+/launcher\?app=fhir-burnout&patient=pat-04&portal=1", client
        ), output
        assert printed[-3].startswith("Start here, with what the client sees: Daan Oefenaar, 7")
        for pg, size in ((phone, "phone"), (page, "desktop")):
            _follow_to_the_client_s_home(pg, client, size)
        # Then the care professional's view: the practice's list holds the seeded waiting list.
        professional = next(p.strip() for p in printed if p.endswith("&practitioner=prac-1"))
        page.goto(professional)
        page.wait_for_url(re.compile(r"http://127\.0\.0\.1:\d+/(\?ctx=[\w-]+)?$"))
        page.goto(re.sub(r"/(\?|$)", r"/practice\1", page.url, count=1))
        practice = page.locator("main").inner_text()
        assert "pat-07" in practice and "Op de wachtlijst" in practice
        assert "Aanmeldingen om te beoordelen (3)" in practice and "pat-16" in practice
    finally:
        os.killpg(demo.pid, signal.SIGINT)  # Ctrl-C, as the README says
        demo.wait(timeout=30)
        log.close()
        while said_so_far.get(timeout=10) is not None:  # until the reader has closed the pipe
            pass
        assert demo.returncode == 0, (tmp_path / "demo.log").read_text()
