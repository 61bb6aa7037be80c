"""Requests per second against the sandbox EHR from Python (our FhirClient, one connection).

Later benchmarks state their results as a ratio of these figures. The baseline measured in
the same run is GET /metadata (no token, no repository work): each interaction is also given
as a ratio of it.

Last line: one JSON object with the figures.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fhir_burnout.fhir import FhirClient  # noqa: E402
from fhir_burnout.sandbox import start_sandbox  # noqa: E402
from fhir_burnout.smart_launch import backend_token  # noqa: E402


def rate(count: int, action: Callable[[int], object]) -> float:
    start = time.perf_counter()
    for i in range(count):
        action(i)
    return count / (time.perf_counter() - start)


def main(count: int = 300) -> None:
    started = time.perf_counter()
    with start_sandbox() as info:
        startup = time.perf_counter() - started
        smart = requests.get(
            f"{info.fhir_base}/.well-known/smart-configuration", timeout=30
        ).json()
        worker = info.client("fhir-burnout-worker")
        token = backend_token(
            smart["token_endpoint"],
            worker["client_id"],
            worker["private_keys"][0],
            "system/*.cruds",
        )
        session = requests.Session()
        baseline = rate(count, lambda _: session.get(f"{info.fhir_base}/metadata", timeout=30))
        ids: list[str] = []
        with FhirClient(info.fhir_base, token=token.access_token) as client:

            def create(i: int) -> None:
                patient = {
                    "resourceType": "Patient",
                    "identifier": [{"system": "urn:bench", "value": str(i)}],
                    "name": [{"family": f"Bench{i}"}],
                }
                ids.append(client.create(patient)["id"])

            creates = rate(count, create)
            reads = rate(count, lambda i: client.read("Patient", ids[i]))
            searches = rate(
                count, lambda i: list(client.search("Patient", {"identifier": f"urn:bench|{i}"}))
            )
    figures = {
        "metadata_per_s": baseline,
        "create_per_s": creates,
        "read_per_s": reads,
        "search_per_s": searches,
    }
    print(f"sandbox started in {startup:.2f} s; {count} requests each")
    for name, value in figures.items():
        print(f"{name:>16}: {value:8.1f}/s   ratio to metadata {value / baseline:5.2f}")
    result = {k: round(v, 1) for k, v in figures.items()}
    result |= {f"{k}_ratio": round(v / baseline, 3) for k, v in figures.items()}
    print(
        json.dumps(
            {"bench": "sandbox", "startup_s": round(startup, 2), "requests": count} | result
        )
    )


if __name__ == "__main__":
    main()
