"""Outbox delivery rate with 1, 2 and 4 worker processes, against plain ``requests``.

For each worker count: fresh sandbox EHRs (one for the baseline, one for the outbox, both
from the same seed, since the sandbox slows down as it fills) and a fresh database
(PostgreSQL when it answers at 127.0.0.1:5432, else SQLite with one worker). The baseline: plain
``requests`` posting N transaction Bundles (a QuestionnaireResponse and its Provenance,
both conditional creates, as the worker sends them) one after another. Then N outbox
entries of the same shape, delivered by `fhir-burnout worker` processes; the rate is
taken between the first and the last delivery (process start-up is not counted).
Targets: one worker at least 0.5 of the baseline; more workers scale until the sandbox,
which handles one request at a time, is the limit.

Then the latency from submit to "in the EHR" under load: two workers while entries are
submitted at half the baseline rate; p50 and p95 of (delivered_at - created_at).

Last line: one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fhir_burnout.db import create_db_engine, upgrade  # noqa: E402
from fhir_burnout.sandbox import SandboxInfo, start_sandbox  # noqa: E402
from fhir_burnout.sync import KEY_SYSTEM, OutboxEntry, queue_status  # noqa: E402
from fhir_burnout.sync._bundle import ENTRY_TAG, provenance  # noqa: E402
from tests.outbox_load import (  # noqa: E402
    POSTGRES,
    light_entries,
    light_response,
    postgres_schema,
    worker_config,
    worker_token_source,
)


@contextmanager
def database(use_postgres: bool, folder: Path) -> Iterator[str]:
    if not use_postgres:
        yield f"sqlite:///{folder / f'bench-{uuid.uuid4().hex[:6]}.db'}"
        return
    with postgres_schema() as url:
        yield url


def postgres_available() -> bool:
    try:
        engine = create_engine(POSTGRES)
        with engine.connect():
            pass
        engine.dispose()
    except Exception:
        return False
    return True


def bundle(marker: str, n: int) -> dict[str, Any]:
    key, entry_key = str(uuid.uuid4()), str(uuid.uuid4())
    response = light_response(key, marker, n % 100, n // 100 + 1)
    agent = {"who": f"Patient/pat-{n % 24 + 1:02d}"}
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": f"urn:uuid:{key}",
                "resource": response,
                "request": {
                    "method": "POST",
                    "url": "QuestionnaireResponse",
                    "ifNoneExist": f"identifier={KEY_SYSTEM}|{key}",
                },
            },
            {
                "fullUrl": f"urn:uuid:{entry_key}",
                "resource": provenance(
                    entry_key, [{"reference": f"urn:uuid:{key}"}], agent, response["authored"]
                ),
                "request": {
                    "method": "POST",
                    "url": "Provenance",
                    "ifNoneExist": f"_tag={ENTRY_TAG}|{entry_key}",
                },
            },
        ],
    }


def baseline(info: SandboxInfo, count: int) -> float:
    """Deliveries per second of plain requests posting the bundles one by one."""
    marker = f"urn:bench:{uuid.uuid4().hex}"
    bundles = [bundle(marker, n) for n in range(count)]
    bearer = worker_token_source(info).token()
    headers = {"Authorization": f"Bearer {bearer}", "Content-Type": "application/fhir+json"}
    with requests.Session() as http:
        start = time.perf_counter()
        for body in bundles:
            http.post(info.fhir_base, json=body, headers=headers, timeout=30).raise_for_status()
        return count / (time.perf_counter() - start)


@contextmanager
def workers(count: int, config_path: Path) -> Iterator[None]:
    command = [str(Path(sys.executable).with_name("fhir-burnout")), "worker"]
    command += ["--config", str(config_path), "--idle", "0.02"]
    processes = [
        subprocess.Popen(command, stderr=subprocess.DEVNULL, start_new_session=True)
        for _ in range(count)
    ]
    try:
        yield
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            process.wait(timeout=30)


def drain(engine: Any, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = queue_status(engine)
        if status.pending == status.leased == 0:
            return
        time.sleep(0.5)  # rarely: on two cores, polling would slow what it measures
    raise RuntimeError(f"the outbox did not drain: {queue_status(engine)}")


def delivery_rate(engine: Any) -> float:
    with Session(engine) as db:
        times = sorted(db.scalars(select(OutboxEntry.delivered_at)))
    span = (times[-1] - times[0]).total_seconds()
    return (len(times) - 1) / span if span > 0 else float("inf")


def measure(worker_count: int, count: int, use_postgres: bool, folder: Path) -> dict[str, float]:
    # Each measurement on a sandbox of its own, fresh from the same seed: the sandbox's
    # conditional creates scan what it holds, so whoever came second would be slower.
    with start_sandbox() as info:
        base = baseline(info, count)
    with start_sandbox() as info, database(use_postgres, folder) as url:
        engine = create_db_engine(url)
        upgrade(engine)
        light_entries(
            engine, info.fhir_base, count=count, partitions=100,
            marker=f"urn:bench:{uuid.uuid4().hex}",
        )  # fmt: skip
        with workers(worker_count, worker_config(folder, info, url)):
            drain(engine)
        rate = delivery_rate(engine)
        engine.dispose()
    return {"workers": worker_count, "baseline_per_s": base, "per_s": rate, "ratio": rate / base}


def latency(count: int, rate: float, use_postgres: bool, folder: Path) -> dict[str, float]:
    """Submit ``count`` entries at ``rate`` per second while two workers deliver."""
    with start_sandbox() as info, database(use_postgres, folder) as url:
        engine = create_db_engine(url)
        upgrade(engine)
        marker = f"urn:bench:{uuid.uuid4().hex}"
        with workers(2 if use_postgres else 1, worker_config(folder, info, url)):
            time.sleep(2.0)  # let the processes start before the clock runs
            start = time.perf_counter()
            for n in range(count):
                light_entries(engine, info.fhir_base, count=1, partitions=1, marker=f"{marker}{n}")
                wait = start + (n + 1) / rate - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
            drain(engine)
        with Session(engine) as db:
            rows = db.execute(select(OutboxEntry.created_at, OutboxEntry.delivered_at)).all()
        engine.dispose()
    waits = sorted((done - made).total_seconds() * 1000 for made, done in rows)
    return {
        "submitted_per_s": rate,
        "p50_ms": statistics.median(waits),
        "p95_ms": waits[int(0.95 * (len(waits) - 1))],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=400)
    parser.add_argument("--latency-entries", type=int, default=200)
    args = parser.parse_args()
    use_postgres = postgres_available()
    counts = (1, 2, 4) if use_postgres else (1,)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rows = [measure(w, args.entries, use_postgres, folder) for w in counts]
        submitted = rows[0]["baseline_per_s"] / 2
        lag = latency(args.latency_entries, submitted, use_postgres, folder)
    print(f"database: {'PostgreSQL' if use_postgres else 'SQLite'}; {args.entries} entries a run")
    print(f"{'workers':>8} {'baseline/s':>11} {'outbox/s':>9} {'ratio':>6}")
    for row in rows:
        print(
            f"{row['workers']:>8} {row['baseline_per_s']:>11.1f} {row['per_s']:>9.1f} "
            f"{row['ratio']:>6.2f}"
        )
    print(
        f"submit -> in the EHR at {lag['submitted_per_s']:.0f} entries/s with 2 workers: "
        f"p50 {lag['p50_ms']:.0f} ms, p95 {lag['p95_ms']:.0f} ms"
    )
    print(
        json.dumps(
            {
                "bench": "sync",
                "database": "postgresql" if use_postgres else "sqlite",
                "entries": args.entries,
                "runs": [{k: round(v, 3) for k, v in row.items()} for row in rows],
                "latency": {k: round(v, 1) for k, v in lag.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
