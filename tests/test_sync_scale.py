"""Several worker processes on one PostgreSQL: 2,000 entries, none twice, none missing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from fhir_burnout.db import create_db_engine, upgrade
from fhir_burnout.fhir import FhirClient
from fhir_burnout.sandbox import SandboxProcess
from fhir_burnout.sync import OutboxEvent

from .outbox_load import (
    light_entries,
    postgres_schema,
    wait_until_delivered,
    worker_config,
    worker_token_source,
)

ENTRIES = 2000


@pytest.fixture
def postgres():
    with postgres_schema() as url:
        engine = create_db_engine(url)
        upgrade(engine)
        yield url, engine
        engine.dispose()


@pytest.fixture
def own_sandbox():
    """A sandbox of the test's own: 2,000 responses would slow the shared one down."""
    with SandboxProcess() as process:
        yield process.info


@pytest.fixture
def own_fhir(own_sandbox):
    source = worker_token_source(own_sandbox)
    with FhirClient(own_sandbox.fhir_base, token_source=source) as client:
        yield client


@pytest.mark.parametrize("workers", [2, 4])
def test_worker_processes_deliver_each_entry_exactly_once(
    workers, postgres, own_sandbox, own_fhir, tmp_path
):
    url, engine = postgres
    sandbox, fhir = own_sandbox, own_fhir
    marker = f"https://fhir-burnout.org/fhir/Questionnaire/scale-{uuid.uuid4().hex[:8]}"
    light_entries(engine, sandbox.fhir_base, count=ENTRIES, partitions=100, marker=marker)
    command = [str(Path(sys.executable).with_name("fhir-burnout")), "worker", "--config"]
    command += [str(worker_config(tmp_path, sandbox, url)), "--idle", "0.05"]
    processes = [
        subprocess.Popen(command, stderr=subprocess.DEVNULL, start_new_session=True)
        for _ in range(workers)
    ]
    try:
        wait_until_delivered(engine, timeout=300)
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            process.wait(timeout=30)
    found = list(fhir.search("QuestionnaireResponse", {"questionnaire": marker, "_count": "1000"}))
    counts = Counter(r["identifier"]["value"] for r in found)
    assert len(counts) == ENTRIES and set(counts.values()) == {1}
    # Order per patient: within each queue, the EHR stored the responses in sequence.
    arrived = defaultdict(list)
    for response in found:
        queue, seq = (i["answer"][0]["valueInteger"] for i in response["item"])
        arrived[queue].append((response["meta"]["lastUpdated"], seq))
    for stored in arrived.values():
        assert [seq for _, seq in sorted(stored)] == sorted(seq for _, seq in stored)
    with Session(engine) as db:
        owners = Counter(
            e.what.rsplit("(by ", 1)[1].rstrip(")")
            for e in db.scalars(
                select(OutboxEvent).where(OutboxEvent.what.startswith("delivered"))
            )
        )
    assert len(owners) == workers  # every process took part
    assert sum(owners.values()) == ENTRIES
