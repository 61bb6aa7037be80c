"""The outbox under faults, against a real sandbox EHR and a real database.

Each test makes the same small load (four patients: an enrolment, then two finished
modules each), breaks something while the worker delivers it, and ends with one check:
every entry delivered, each resource and each Provenance exactly once on the EHR (counted
by write key), order per patient kept, and the EHR's Task statuses equal to ours.

Real parts throughout: the sandbox is stopped and started again, runs with a rate limit,
issues tokens that really expire; the worker process is really killed. One stand-in: the
answer lost after the EHR committed cannot be produced on demand by a real network, so a
small proxy forwards the request and then drops the connection instead of the answer.
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from requests.adapters import HTTPAdapter
from sqlalchemy import select
from sqlalchemy.orm import Session
from urllib3.util import Retry

from fhir_burnout.fhir import FhirClient
from fhir_burnout.sandbox import SandboxProcess
from fhir_burnout.sync import OutboxEntry, OutboxEvent
from fhir_burnout.workflow import Definitions, TaskRow, change_task

from .outbox_load import (
    assert_delivered_exactly_once,
    fast_worker,
    make_load,
    running,
    wait_until_delivered,
    worker_config,
    worker_token_source,
)


@pytest.fixture(scope="module")
def definitions(resources):
    return Definitions.from_resources(resources)


def events(engine):
    with Session(engine) as db:
        return [e.what for e in db.scalars(select(OutboxEvent).order_by(OutboxEvent.id))]


@pytest.fixture
def durable(tmp_path):
    """A sandbox of this test's own whose store survives a restart."""
    with SandboxProcess(data_dir=tmp_path / "ehr") as process:
        yield process


def test_the_ehr_stopped_in_the_middle_and_started_again(engine, definitions, durable):
    info = durable.info
    make_load(engine, definitions, info.fhir_base)
    client = FhirClient(info.fhir_base, token_source=worker_token_source(info), timeout=5)
    worker = fast_worker(engine, lambda base: client)
    with running(worker):
        deadline = time.monotonic() + 30
        while not any(e.startswith("delivered (by") for e in events(engine)):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        durable.stop()  # in the middle: the first entries are in, the rest is not
        # One more change while the EHR is down, so the worker surely meets the closed
        # port, however fast it delivered the rest before the stop.
        with Session(engine) as db, db.begin():
            waiting = db.scalars(
                select(TaskRow).where(TaskRow.kind == "module", TaskRow.status == "ready")
            ).first()
            who = f"Patient/{waiting.enrolment.patient}"
            change_task(db, definitions, waiting.key, "in-progress", actor="client", who=who)
        time.sleep(1.0)  # the worker meets a closed port and backs off
        durable.start()
        wait_until_delivered(engine)
    assert any("no answer from the EHR" in e for e in events(engine))
    assert_delivered_exactly_once(engine, client)
    client.close()


def test_a_worker_killed_in_the_middle_of_a_delivery(engine, definitions, durable, tmp_path):
    info = durable.info
    make_load(engine, definitions, info.fhir_base, steps=3)
    config = worker_config(tmp_path, info, engine.url.render_as_string(hide_password=False))
    command = [str(Path(sys.executable).with_name("fhir-burnout")), "worker", "--config"]
    command.append(str(config))
    command += ["--lease", "2", "--idle", "0.05"]
    for _ in range(5):  # until a worker dies holding an entry it had not finished
        if _kill_while_leased(command, engine):
            break
    else:
        pytest.fail("never caught a worker holding a lease")
    second = subprocess.Popen(command, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_until_delivered(engine)
    finally:
        os.killpg(second.pid, signal.SIGTERM)
        second.wait(timeout=30)
    assert any("lease of" in e and "taken over" in e for e in events(engine))
    with FhirClient(info.fhir_base, token_source=worker_token_source(info)) as client:
        assert_delivered_exactly_once(engine, client)


def _kill_while_leased(command, engine) -> bool:
    """Start a worker, SIGKILL it as soon as it holds a lease; whether one was left behind
    (it may have finished the entry in the moment between looking and killing)."""
    worker = subprocess.Popen(command, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    leased = select(OutboxEntry.id).where(OutboxEntry.state == "leased")
    while True:
        assert time.monotonic() < deadline and worker.poll() is None
        with Session(engine) as db:
            if db.scalar(leased):
                os.killpg(worker.pid, signal.SIGKILL)
                break
    worker.wait()
    with Session(engine) as db:
        return db.scalar(leased) is not None


class _LosingProxy(http.server.ThreadingHTTPServer):
    """Forwards to the EHR; the first transaction of each kind reaches the EHR, but its
    answer is dropped (the connection closes), as when a network fails at the worst moment."""

    daemon_threads = True

    def __init__(self, upstream: str) -> None:
        super().__init__(("127.0.0.1", 0), _LosingHandler)
        self.upstream = upstream.rstrip("/")
        self.lost: list[str] = []
        self.lock = threading.Lock()


class _LosingHandler(http.server.BaseHTTPRequestHandler):
    server: _LosingProxy

    def log_message(self, *args: object) -> None:
        pass

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        path = self.path.split("/fhir", 1)[1] if "/fhir" in self.path else self.path
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host",)}
        answer = requests.request(
            self.command, self.server.upstream + path, data=body, headers=headers, timeout=30
        )
        if self.command == "POST" and path in ("", "/") and body:
            kinds = {e["request"]["method"] for e in json.loads(body).get("entry", [])}
            kind = "update" if "PUT" in kinds else "create"
            with self.server.lock:
                lose = kind not in self.server.lost and answer.status_code < 300
                if lose:
                    self.server.lost.append(kind)
            if lose:
                self.connection.shutdown(socket.SHUT_RDWR)  # committed, never answered
                return
        self.send_response(answer.status_code)
        for name, value in answer.headers.items():
            # requests has decoded the body already: its encoding headers no longer apply
            hop = ("transfer-encoding", "connection", "content-length", "content-encoding")
            if name.lower() not in hop:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)

    do_GET = do_POST = do_PUT = _forward  # noqa: N815 -- the names http.server calls


def test_an_answer_lost_after_the_ehr_committed(engine, definitions, sandbox, fhir):
    proxy = _LosingProxy(sandbox.fhir_base)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    through_proxy = f"http://127.0.0.1:{proxy.server_address[1]}/fhir"
    make_load(engine, definitions, sandbox.fhir_base, patients=("pat-15", "pat-16"))
    client = FhirClient(through_proxy, token_source=worker_token_source(sandbox), timeout=10)
    worker = fast_worker(engine, lambda base: client)
    with running(worker):
        wait_until_delivered(engine)
    proxy.shutdown()
    proxy.server_close()
    client.close()
    assert sorted(proxy.lost) == ["create", "update"]  # both kinds of write were hit
    assert any("was completed already" in e for e in events(engine))
    assert_delivered_exactly_once(engine, fhir)


def test_429_with_retry_after_is_honoured(engine, definitions, tmp_path):
    with SandboxProcess(rate_limit=3) as limited:
        info = limited.info
        make_load(engine, definitions, info.fhir_base)
        client = FhirClient(info.fhir_base, token_source=worker_token_source(info))
        workers = [fast_worker(engine, lambda base: client, owner=f"w{i}") for i in range(3)]
        with running(*workers):
            wait_until_delivered(engine)
        waited = [e for e in events(engine) if "answered 429" in e]
        assert waited, "the rate limit was never reached"
        with Session(engine) as db:
            retried = db.scalars(select(OutboxEvent).where(OutboxEvent.what.contains("429")))
            for event in retried:
                next_try = event.what.rsplit("next try at ", 1)[1]
                gap = _parse(next_try) - event.at.replace(tzinfo=_parse(next_try).tzinfo)
                assert gap.total_seconds() >= 0.99  # Retry-After: 1, never sooner
        client.close()
        # Checking needs many reads: a client that waits out the limit between them.
        patient = requests.Session()
        retry = Retry(total=30, status_forcelist=[429], allowed_methods={"GET"})
        patient.mount("http://", HTTPAdapter(max_retries=retry))
        with FhirClient(
            info.fhir_base, session=patient, token_source=worker_token_source(info)
        ) as c:
            assert_delivered_exactly_once(engine, c)


def _parse(text):
    from datetime import datetime  # noqa: PLC0415

    return datetime.fromisoformat(text)


def test_an_expired_token_is_replaced_and_the_write_goes_through(engine, definitions):
    with SandboxProcess(token_ttl=2) as short:
        info = short.info
        make_load(engine, definitions, info.fhir_base, patients=("pat-17",), steps=1)
        # A source that believes its token is fresh forever: the EHR decides it expired.
        source = worker_token_source(info, clock=lambda: 0.0)
        client = FhirClient(info.fhir_base, token_source=source)
        worker = fast_worker(engine, lambda base: client, batch=1)
        assert worker.run_once() == 1
        time.sleep(2.5)  # the token's lifetime, on the EHR's clock
        while worker.run_once():
            pass
        # The source never renews by itself (its clock stands still), so every further
        # token came from a 401; on a slow machine a new one may expire again meanwhile.
        assert source.requests >= 2
        assert_delivered_exactly_once(engine, client)
        client.close()
