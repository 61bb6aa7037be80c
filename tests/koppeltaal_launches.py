"""The Koppeltaal portal and launch, as the sandbox's domain has them: our definitions
published, a Task assigned in the portal, its launch form posted to the app and followed
through the domain's authorization service; and the settings of an app in that domain."""

from __future__ import annotations

import base64
import html
import json
import re
import threading
from urllib.parse import urlsplit

import pytest
import requests
from cryptography.fernet import Fernet
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

from fhir_burnout.fhir import FhirClient
from fhir_burnout.koppeltaal._publish import publish_koppeltaal
from fhir_burnout.sandbox import start_sandbox
from fhir_burnout.settings import Settings
from fhir_burnout.sync import OutboxEntry
from fhir_burnout.web import create_app

from .conftest import PROMISE, configured_ehr, kt_token_source
from .smart_flow import APP, follow_to_redirect_uri

AD_BASE = "https://fhir-burnout.org/fhir/koppeltaal/ActivityDefinition/"
KT = "http://koppeltaal.nl/fhir/StructureDefinition/"
WAITING_LIST = "Herstellen van burn-out: Op de wachtlijst"


def publish(info, resources, base_url):
    """Our KT2 ActivityDefinitions on the domain (idempotent): their ids by url."""
    with FhirClient(info.fhir_base, token_source=kt_token_source(info)) as client:
        steps = publish_koppeltaal(
            resources, client, base_url=base_url, publisher_id="fhir-burnout"
        )
    return {s.key: s.id for s in steps if s.resource_type == "ActivityDefinition"}


@pytest.fixture(scope="module")
def published(kt_sandbox, resources):
    return publish(kt_sandbox, resources, APP)


def assign(info, definition, patient, practitioner="prac-1"):
    """A Task assigned in the portal (POST {portal}/tasks), as the server stored it."""
    response = requests.post(
        f"{info.portal}/tasks",
        json={"patient": patient, "practitioner": practitioner, "definition": definition},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return response.json()


def launch_form(info, task_id, as_="patient", **knobs):
    """The fields of the portal's auto-submitting launch form."""
    params = {"task": task_id, "as": as_, **knobs}
    page = requests.get(f"{info.portal}/launch", params=params, timeout=30)
    assert page.status_code == 200, page.text
    fields = dict(re.findall(r'name="(launch|iss)"\s+value="([^"]*)"', page.text))
    assert set(fields) == {"launch", "iss"}, page.text
    return {k: html.unescape(v) for k, v in fields.items()}


def launch(client, fields, callback=f"{APP}/koppeltaal/callback"):
    """Post the launch form to us, sign in at the domain, come back: our last answer."""
    started = client.post("/koppeltaal/launch", data=fields)
    assert started.status_code == 303, started.get_data(as_text=True)
    back = urlsplit(follow_to_redirect_uri(requests.Session(), started.headers["Location"],
                                           callback))  # fmt: skip
    return client.get(f"{back.path}?{back.query}")


def kt_settings(info, folder, *, database_url=None, base_url=APP):
    """Settings for an app connected to the Koppeltaal domain ``info`` as Device/fhir-burnout."""
    key = info.client("fhir-burnout")["private_keys"][0]
    return Settings(
        base_url=base_url,
        database_url=database_url or f"sqlite:///{folder / 'app.db'}",
        secret_key="kt-test-secret",
        token_key=Fernet.generate_key().decode(),
        ehrs=(
            configured_ehr(
                info.fhir_base,
                auth_method="private_key_jwt",
                private_jwk=key,
                worker_private_jwk=key,
                practice="Organization/practice-1",
                mode="koppeltaal",
            ),
        ),
        keys_dir=folder / "keys",
        safety_promise=PROMISE,
    )


@pytest.fixture
def kt_app(kt_sandbox, published, tmp_path, database_url):
    """The app connected to the Koppeltaal sandbox (our definitions published), per database."""
    app = create_app(kt_settings(kt_sandbox, tmp_path, database_url=database_url))
    yield app
    app.extensions["fhir_burnout"]["engine"].dispose()


def engine_of(app):
    return app.extensions["fhir_burnout"]["engine"]


def audits(app):
    """The AuditEvents queued for the domain, oldest first."""
    with Session(engine_of(app)) as db:
        entries = db.scalars(
            select(OutboxEntry)
            .where(OutboxEntry.kind == "koppeltaal-audit")
            .order_by(OutboxEntry.id)
        ).all()
    return [op["resource"] for e in entries for op in json.loads(e.payload)["operations"]]


def extension(resource, name):
    """The valueId of a KT2 extension (trace-id, request-id, ...) of ``resource``."""
    return next(
        (e["valueId"] for e in resource.get("extension", []) if e["url"] == KT + name), None
    )


def claims_of(token):
    """A JWT's claims, unchecked."""
    segment = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


class LiveApp:
    """The app on a free port of this machine, served in a thread: the Koppeltaal sandbox
    needs its URL (the module's Endpoint) before the app, made with the sandbox's keys, is
    handed to :meth:`serve`. Leaving it stops the server and disposes of the app's engine."""

    def __init__(self):
        self.app = None
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _wsgi(self, environ, start_response):
        return self.app(environ, start_response)

    def serve(self, app):
        self.app = app
        self._thread.start()
        return app

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=10)
        self._server.server_close()
        if self.app is not None:
            engine_of(self.app).dispose()


def text_of(response):
    body = response.get_data(as_text=True)
    main = body[body.index("<main>") : body.index("</main>")]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", main))


@pytest.fixture(scope="module")
def kt_live(tmp_path_factory, resources):
    """The app on a real port, and a Koppeltaal sandbox whose module Endpoint points at it
    (for the browser): ``(app_url, info, definitions, app)``."""
    holder = {}

    def wsgi(environ, start_response):
        return holder["app"](environ, start_response)

    server = make_server("127.0.0.1", 0, wsgi, threaded=True)
    app_url = f"http://127.0.0.1:{server.server_port}"
    folder = tmp_path_factory.mktemp("kt-live")
    with start_sandbox(koppeltaal=True, app_url=app_url) as info:
        holder["app"] = create_app(kt_settings(info, folder, base_url=app_url))
        definitions = publish(info, resources, app_url)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield app_url, info, definitions, holder["app"]
        finally:
            server.shutdown()
            thread.join(timeout=10)
            holder["app"].extensions["fhir_burnout"]["engine"].dispose()
