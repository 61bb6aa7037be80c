"""A Koppeltaal domain for the notification and poll tests: the KT sandbox with our
definitions published, the app on a real port over https (the sandbox delivers its rest-hook
there), and the worker and the poll on the app's database with FHIR clients whose every
request is recorded."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta

import pytest
import requests
from cryptography.fernet import Fernet
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

from fhir_burnout.db import create_db_engine, upsert
from fhir_burnout.fhir import FhirClient
from fhir_burnout.integration import KOPPELTAAL_TASKS, EhrClients, Poller, PollRow
from fhir_burnout.koppeltaal import (
    CONNECTION,
    KOPPELTAAL_CHANNEL,
    KoppeltaalFeed,
    KoppeltaalTaskRow,
)
from fhir_burnout.koppeltaal._outbox import deliver_for
from fhir_burnout.koppeltaal._profiles import canonical_base, definition_url
from fhir_burnout.koppeltaal._publish import publish_koppeltaal
from fhir_burnout.settings import Settings
from fhir_burnout.sync import Worker
from fhir_burnout.web import create_app
from fhir_burnout.workflow import Definitions

from .conftest import PROMISE, configured_ehr, kt_token_source


class Domain:
    """The KT sandbox with our definitions published, and the app on a real port."""

    def __init__(self, info, app_url, ads, notified, app):
        self.info, self.app_url, self.ads, self.notified, self.app = (
            info, app_url, ads, notified, app,
        )  # fmt: skip

    @property
    def fhir_base(self) -> str:
        return self.info.fhir_base

    def assign(self, patient: str, code: str) -> dict:
        """The portal assigns our module or track ``code`` to ``patient`` (POST {portal}/tasks)."""
        answer = requests.post(
            f"{self.info.portal}/tasks",
            json={"patient": patient, "practitioner": "prac-1", "definition": self.ads[code]},
            timeout=30,
        )
        assert answer.status_code == 201, answer.text
        return answer.json()


@pytest.fixture
def domain(kt_sandbox, loopback_tls, resources, tmp_path, database_url):
    notified = threading.Event()
    holder = {}

    def wsgi(environ, start_response):
        try:
            return holder["app"](environ, start_response)
        finally:
            if environ.get("PATH_INFO") == "/koppeltaal/notify":
                notified.set()

    # Over https, as a Koppeltaal domain notifies nothing else (the sandbox's Node trusts the
    # certificate: kt_sandbox).
    server = make_server("127.0.0.1", 0, wsgi, threaded=True, ssl_context=loopback_tls.context)
    app_url = f"https://127.0.0.1:{server.server_port}"
    settings = kt_settings(kt_sandbox, tmp_path, database_url, app_url)
    holder["app"] = create_app(settings)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    with FhirClient(kt_sandbox.fhir_base, token_source=kt_token_source(kt_sandbox)) as client:
        publish_koppeltaal(resources, client, base_url=app_url, publisher_id="fhir-burnout")
        canonical = canonical_base(resources)
        ads = {}
        for kind, code in (("module", "body-signals"), ("track", "waiting-list")):
            url = definition_url(canonical, kind, code)
            found = [a for a in client.search("ActivityDefinition", {"url": url})
                     if a["url"] == url]  # fmt: skip
            ads[code] = found[0]["id"]
    try:
        yield Domain(kt_sandbox, app_url, ads, notified, holder["app"])
    finally:
        _unsubscribe(kt_sandbox, KOPPELTAAL_CHANNEL.endpoint(app_url, kt_sandbox.fhir_base))
        server.shutdown()
        thread.join(timeout=10)
        holder["app"].extensions["fhir_burnout"]["engine"].dispose()


def _unsubscribe(info, endpoint: str) -> None:
    """Our Subscriptions on the shared sandbox go off with the app they notify."""
    with FhirClient(info.fhir_base, token_source=kt_token_source(info)) as client:
        for found in client.search("Subscription", {"url": endpoint}):
            if found.get("status") in ("active", "requested", "error"):
                client.update({**found, "status": "off"}, version_id=found["meta"]["versionId"])


def kt_settings(info, folder, database_url, app_url) -> Settings:
    key = info.client("fhir-burnout")["private_keys"][0]
    return Settings(
        base_url=app_url,
        database_url=database_url,
        secret_key="kt-secret",
        token_key=Fernet.generate_key().decode(),
        ehrs=(configured_ehr(info.fhir_base, auth_method="private_key_jwt", private_jwk=key,
                             worker_private_jwk=key, mode="koppeltaal"),),
        keys_dir=folder / "keys",
        safety_promise=PROMISE,
    )  # fmt: skip


def kt_clients(settings: Settings) -> EhrClients:
    """The client pool as the worker composes it for a Koppeltaal domain."""
    return EhrClients(settings, connections={"koppeltaal": CONNECTION})


class Recorded:
    """Every request the worker's and the poll's FHIR clients send (a requests hook)."""

    def __init__(self, settings: Settings):
        self.clients = kt_clients(settings)
        self.requests: list[requests.PreparedRequest] = []

    def _hook(self, response, *args, **kwargs):
        self.requests.append(response.request)

    def get(self, fhir_base: str) -> FhirClient:
        client = self.clients.get(fhir_base)
        if self._hook not in client.session.hooks["response"]:
            client.session.hooks["response"].append(self._hook)
        return client

    def writes(self, fhir_base: str) -> list[tuple[str, str, dict, dict]]:
        """(method, path, headers, body) of each write to the FHIR server."""
        found = []
        for request in self.requests:
            if request.method in ("GET", "HEAD") or not request.url.startswith(fhir_base):
                continue
            path = request.url[len(fhir_base.rstrip("/")) + 1 :].split("?")[0]
            body = json.loads(request.body) if request.body else {}
            found.append((request.method, path, dict(request.headers), body))
        return found


@pytest.fixture
def tools(domain, resources):
    settings = domain.app.extensions["fhir_burnout"]["settings"]
    engine = create_db_engine(settings.database_url)
    recorded = Recorded(settings)
    definitions = Definitions.from_resources(resources)
    worker = Worker(engine, recorded.get, deliver_for=deliver_for(settings, engine, recorded.get))
    poller = Poller(engine, recorded.get, KoppeltaalFeed.from_settings(definitions, settings))
    _start_after_what_is_there(engine, domain)
    yield engine, recorded, worker, poller, definitions
    recorded.clients.close()
    engine.dispose()


def _start_after_what_is_there(engine, domain) -> None:
    """The sandbox is shared by the run: this test's polls start after the Tasks other tests
    left there (as a practice that starts using us long after the domain did)."""
    with FhirClient(domain.fhir_base, token_source=kt_token_source(domain.info)) as client:
        newest = next(client.search("Task", {"_sort": "-_lastUpdated", "_count": "1"}), None)
    if newest is None:
        return
    last = datetime.fromisoformat(newest["meta"]["lastUpdated"].replace("Z", "+00:00"))
    mark = (last + timedelta(milliseconds=1)).isoformat(timespec="milliseconds")
    with Session(engine) as db, db.begin():
        row = {"fhir_base": domain.fhir_base.rstrip("/"), "feed": KOPPELTAAL_TASKS,
               "seen_until": mark}  # fmt: skip
        upsert(db, PollRow, [row], ("fhir_base", "feed"))


def _row(engine, fhir_base, task_id) -> KoppeltaalTaskRow | None:
    with Session(engine) as db:
        return db.get(KoppeltaalTaskRow, (fhir_base.rstrip("/"), task_id))


def _deliver(worker):
    while worker.run_once():
        pass
