"""fhir-burnout enrol / worker / sync / db, as an integrator at a practice uses them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from fhir_burnout.cli import main
from fhir_burnout.db import head_revision
from fhir_burnout.sync import KEY_SYSTEM

from .outbox_load import worker_config


@pytest.fixture
def config(sandbox, tmp_path, database_url):
    return str(
        worker_config(tmp_path, sandbox, database_url, 'practice = "Organization/practice-1"')
    )


def run(runner, *args):
    result = runner.invoke(main, [*args], catch_exceptions=False)
    return result


def test_enrol_then_the_worker_delivers_and_status_says_so(runner, config, fhir):
    result = run(runner, "enrol", "--config", config, "--patient", "pat-09", "--track",
                 "waiting-list", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    enrolment = json.loads(result.output)
    assert enrolment["phases"] == {"recovery": "open"}
    assert enrolment["tasks"]["understanding-burnout"] == "ready"
    status = json.loads(run(runner, "sync", "status", "--config", config, "--json").output)
    assert (status["pending"], status["delivered"]) == (1, 0)
    assert status["oldest_waiting_seconds"] >= 0
    assert run(runner, "worker", "--config", config, "--once").exit_code == 0
    status = json.loads(run(runner, "sync", "status", "--config", config, "--json").output)
    assert (status["pending"], status["delivered"], status["dead"]) == (0, 1, 0)
    [careplan] = fhir.search("CarePlan", {"identifier": f"{KEY_SYSTEM}|{enrolment['enrolment']}"})
    assert careplan["subject"] == {"reference": "Patient/pat-09"}
    again = run(runner, "enrol", "--config", config, "--patient", "pat-09", "--track",
                "waiting-list", "--json")  # fmt: skip
    assert json.loads(again.output)["enrolment"] == enrolment["enrolment"]


def test_an_unknown_track_and_an_unknown_dead_letter_get_clear_messages(runner, config):
    result = run(runner, "enrol", "--config", config, "--patient", "pat-09", "--track", "x")
    assert result.exit_code == 1 and "there is no track 'x'" in result.output
    result = run(runner, "sync", "retry", "--config", config, "999")
    assert result.exit_code == 1 and "there is no outbox entry 999" in result.output


def test_db_upgrade_reports_the_migration(runner, config):
    result = run(runner, "db", "upgrade", "--config", config)
    assert result.exit_code == 0 and f"database at migration {head_revision()}" in result.output


_THREADS_SEE = """
import json, os, signal, sys, threading
from fhir_burnout.db import Base
from fhir_burnout.cli import main

start, seen = threading.Thread.start, []

def recording_start(thread):
    mappers = list(Base.registry.mappers)
    seen.append((len(mappers), all(m.configured for m in mappers)))
    start(thread)
    if len(seen) == 1:  # the worker runs: stop it as Ctrl-C would
        threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM)).start()

threading.Thread.start = recording_start
try:
    main(["worker", "--config", sys.argv[1], "--idle", "0.05"])
except SystemExit:
    pass
print(json.dumps(seen))
"""


def test_the_worker_threads_start_on_configured_mappers(config):
    # A worker thread that imported a table module while another queried caught
    # SQLAlchemy's mappers half-way, and from then on every round of that process failed
    # ("expression 'TaskRow.position' failed to locate a name"): a worker that delivers
    # nothing, forever. Every thread must start on tables that are all there.
    result = subprocess.run(
        [sys.executable, "-c", _THREADS_SEE, config], capture_output=True, text=True,
        timeout=120, check=True,
    )  # fmt: skip
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(seen) >= 3  # delivery, the session purge, the weekly measures
    tables = {count for count, _ in seen}
    assert tables == {max(tables)} and max(tables) >= 10, seen
    assert all(configured for _, configured in seen), seen
