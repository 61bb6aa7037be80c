"""Against the Koppeltaal sandbox, on SQLite and PostgreSQL: behind ``koppeltaal_results``,
a KT Task completed by the client's progress brings one DocumentReference (draft T029) to the
domain: metadata and a link to our own download, never the data; the link opens only for a
care professional launched from the portal of that domain; a domain that takes no
DocumentReference still gets the Task's status.

The worker's FHIR clients record every request; the app runs at its registered address
through Flask's test client for the launches (test_koppeltaal_launch), or on a real port with
the poll taking the Tasks in (test_koppeltaal_notify).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
import requests
from click.testing import CliRunner
from cryptography.fernet import Fernet
from sqlalchemy import select
from sqlalchemy.orm import Session

from fhir_burnout.cli import main
from fhir_burnout.errors import ContentError
from fhir_burnout.fhir import FhirClient
from fhir_burnout.koppeltaal import ResultsDocumentRow, expire_results
from fhir_burnout.koppeltaal._outbox import KoppeltaalOutbox, deliver_for
from fhir_burnout.koppeltaal._plan import queue_task_status
from fhir_burnout.koppeltaal._results import (
    KT2_DOCUMENT_REFERENCE,
    RESULTS_OP,
    identifier_system,
    queue_results,
    sha1_base64,
)
from fhir_burnout.sandbox import start_sandbox
from fhir_burnout.settings import Settings
from fhir_burnout.smart_launch import (
    ASSERTION_TYPE,
    client_assertion,
    current_private_key,
    generate_key,
    public_jwks,
)
from fhir_burnout.sync import OutboxEntry, OutboxEvent, Worker
from fhir_burnout.web import create_app, results_renderer
from fhir_burnout.workflow import TaskRow, change_task, finish

from .conftest import SAFETY_OWNER_TOML, SAFETY_TOML, kt_token_source, path_of
from .koppeltaal_domain import (
    Recorded,
    _deliver,
    _row,
    _start_after_what_is_there,
)
from .koppeltaal_launches import (
    AD_BASE,
    APP,
    launch,
    launch_form,
    text_of,
)
from .koppeltaal_launches import assign as launch_assign
from .koppeltaal_launches import kt_settings as launch_settings
from .practitioners import PHQ9_ITEMS, submit


def with_results(settings: Settings, on: bool = True) -> Settings:
    """The same settings with ``koppeltaal_results`` on (or off) for every domain."""
    ehrs = tuple(dataclasses.replace(e, results=on) for e in settings.ehrs)
    return dataclasses.replace(settings, ehrs=ehrs)


class Recording(Recorded):
    """The worker's clients, every request recorded."""

    def posted(self, resource_type: str) -> list[dict]:
        return [json.loads(r.body) for r in posts(self.requests, resource_type)]


def posts(sent, resource_type: str) -> list:
    """The POSTs to ``[base]/<resource_type>`` among the requests ``sent``."""
    path = "/" + resource_type
    return [r for r in sent if r.method == "POST" and r.url.split("?")[0].endswith(path)]


def documents(info, base_url: str, key: str) -> list[dict]:
    """Our DocumentReferences for ``key`` on the domain (read as the module)."""
    with FhirClient(info.fhir_base, token_source=kt_token_source(info)) as client:
        found = client.search(
            "DocumentReference", {"identifier": f"{identifier_system(base_url)}|{key}"}
        )
        return [d for d in found if d.get("resourceType") == "DocumentReference"]


def entries(engine, kind: str) -> list[OutboxEntry]:
    with Session(engine) as db:
        return list(db.scalars(select(OutboxEntry).where(OutboxEntry.kind == kind)))


# --- the setting ------------------------------------------------------------------------


def test_the_setting_is_read_per_ehr_and_off_by_default(tmp_path):
    base = {"base_url": "https://app.example", "secret_key": "s", "token_key": "t"}
    ehr = {"fhir_base": "https://kt.example/fhir", "client_id": "m", "mode": "koppeltaal"}
    off = Settings.from_mapping({**base, "ehr": [ehr]}, base_dir=tmp_path, env={})
    on = Settings.from_mapping({**base, "ehr": [{**ehr, "koppeltaal_results": True}]},
                               base_dir=tmp_path, env={})  # fmt: skip
    assert off.ehrs[0].results is False and on.ehrs[0].results is True
    with pytest.raises(ContentError, match="koppeltaal_results"):
        Settings.from_mapping({**base, "ehr": [{**ehr, "koppeltaal_results": "yes"}]},
                              base_dir=tmp_path, env={})  # fmt: skip


# --- setting off: nothing -------------------------------------------------------------------


def test_with_the_setting_off_no_document_reference_is_ever_sent(domain, tools):
    engine, recorded, worker, poller, definitions = tools  # the fixture's settings: off
    task = domain.assign("pat-23", "body-signals")
    poller.run_once()
    row = _row(engine, domain.fhir_base, task["id"])
    for status in ("in-progress", "completed"):
        with Session(engine) as db, db.begin():
            change_task(db, definitions, row.local_task_key, status, actor="client",
                        who="Patient/pat-23")  # fmt: skip
        _deliver(worker)
    with FhirClient(domain.fhir_base, token_source=kt_token_source(domain.info)) as client:
        assert client.read("Task", task["id"])["status"] == "completed"
    assert recorded.requests  # the worker did write (the status), just no document
    assert not [r for r in recorded.requests if "DocumentReference" in r.url]
    assert entries(engine, RESULTS_OP) == []
    assert documents(domain.info, domain.app_url, task["id"]) == []


# --- setting on: one document, the link for the domain's care professionals ---------------


@pytest.fixture
def results_app(kt_sandbox, published, tmp_path, database_url):
    """The app at its registered address (launches work), with ``koppeltaal_results`` on,
    and its worker with every request recorded."""
    settings = with_results(launch_settings(kt_sandbox, tmp_path, database_url=database_url))
    app = create_app(settings)
    engine = app.extensions["fhir_burnout"]["engine"]
    recording = Recording(settings)
    worker = Worker(engine, recording.get,
                    deliver_for=deliver_for(settings, engine, recording.get,
                                            render=results_renderer(app)))  # fmt: skip
    _start_after_what_is_there(engine, SimpleNamespace(fhir_base=kt_sandbox.fhir_base,
                                                       info=kt_sandbox))  # fmt: skip
    yield SimpleNamespace(app=app, engine=engine, settings=settings, recording=recording,
                          worker=worker)  # fmt: skip
    recording.clients.close()
    engine.dispose()


def test_a_completed_programme_brings_one_document_reference_and_the_link_shows_the_results(
    results_app, kt_sandbox, published
):
    app, engine, worker, recording = (
        results_app.app, results_app.engine, results_app.worker, results_app.recording,
    )  # fmt: skip
    definitions = app.extensions["fhir_burnout"]["definitions"]
    base_url = results_app.settings.base_url
    task = launch_assign(kt_sandbox, published[AD_BASE + "track-waiting-list"], "pat-22")
    patient = app.test_client()
    assert path_of(launch(patient, launch_form(kt_sandbox, task["id"])).headers["Location"]) == "/"
    carer = app.test_client()
    landed = launch(carer, launch_form(kt_sandbox, task["id"], "practitioner"))
    assert path_of(landed.headers["Location"]) == "/practitioner"
    row = _row(engine, kt_sandbox.fhir_base, task["id"])
    with Session(engine) as db, db.begin():
        phq9 = db.scalar(
            select(TaskRow.key).where(
                TaskRow.enrolment_key == row.enrolment_key, TaskRow.action_id == "phq-9.start"
            )
        )
        submit(db, definitions, phq9, dict.fromkeys(PHQ9_ITEMS, 3), patient="pat-22",
               now=datetime.now(UTC))  # fmt: skip
    _deliver(worker)  # the launch's in-progress (and what stays with us)
    assert documents(kt_sandbox, base_url, task["id"]) == []  # not before it is completed
    with Session(engine) as db, db.begin():
        finish(db, row.enrolment_key, by="Practitioner/prac-1")
    _deliver(worker)

    with FhirClient(kt_sandbox.fhir_base, token_source=kt_token_source(kt_sandbox)) as client:
        assert client.read("Task", task["id"])["status"] == "completed"
    (document,) = documents(kt_sandbox, base_url, task["id"])
    url = document["content"][0]["attachment"]["url"]
    assert re.fullmatch(re.escape(f"{base_url}/koppeltaal/results/{task['id']}/") + "[0-9a-f]{32}",
                        url)  # a version of its own, not guessable  # fmt: skip
    assert document["status"] == "current"
    assert KT2_DOCUMENT_REFERENCE in document["meta"]["profile"]
    assert document["subject"]["reference"] == "Patient/pat-22"
    assert document["type"]["coding"][0] == {
        "system": "http://loinc.org", "code": "11506-3", "display": "Progress note",
    }  # fmt: skip
    assert document["date"]
    assert document["context"]["related"] == [{"reference": f"Task/{task['id']}", "type": "Task"}]
    assert document["author"][0]["reference"] == "Device/fhir-burnout"
    (content,) = document["content"]
    attachment = content["attachment"]
    assert attachment["url"] == url and attachment["contentType"] == "text/html"
    assert attachment["title"] and "data" not in attachment
    assert attachment["size"] > 0 and len(base64.b64decode(attachment["hash"])) == 20  # SHA-1
    origin = [e["valueReference"]["reference"] for e in document["extension"]
              if e["url"].endswith("/resource-origin")]  # fmt: skip
    assert origin == ["Device/fhir-burnout"]  # the server's: we sent none
    assert "Binary" not in json.dumps(document)
    posted = recording.posted("DocumentReference")
    assert len(posted) == 1 and "extension" not in posted[0] and "id" not in posted[0]

    # Delivered twice (the same entry again, and the completion queued again): still one.
    (entry,) = entries(engine, RESULTS_OP)
    again = KoppeltaalOutbox(engine, recording.get, audit=lambda _: ("fhir-burnout", base_url),
                             render=results_renderer(app))  # fmt: skip
    claimed = SimpleNamespace(key=entry.key, fhir_base=entry.fhir_base,
                              payload=json.loads(entry.payload))  # fmt: skip
    first, second = again.deliver(claimed), again.deliver(claimed)
    assert first.state == second.state == "delivered" and first.what == second.what
    with Session(engine) as db, db.begin():
        queue_results(db, _row(engine, kt_sandbox.fhir_base, task["id"]))
    _deliver(worker)
    assert len(documents(kt_sandbox, base_url, task["id"])) == 1
    # The same bytes keep their version: found pointing there, nothing is sent again.
    assert len(recording.posted("DocumentReference")) == 1
    assert documents(kt_sandbox, base_url, task["id"])[0]["content"][0]["attachment"]["url"] == url
    assert {e.state for e in entries(engine, RESULTS_OP)} == {"delivered"}

    # The link, for the care professional launched from the portal: the scores, in words,
    # in the published document's language whatever the browser asks.
    path = url.removeprefix(base_url)
    page = carer.get(path, headers={"Accept-Language": "nl"})
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    text = text_of(page)
    assert "Resultaten burn-outprogramma" in text
    assert "Stemming (PHQ-9): Totaalscore (0-27)" in text
    assert "27 Zware klachten" in text  # the score and its band
    assert "Bijna elke dag" in text  # the answers, in words
    english = carer.get(path, headers={"Accept-Language": "en"})
    assert english.get_data() == page.get_data()  # the published bytes, for everyone
    # Its one style block is let in by its hash: the stored bytes carry no nonce.
    assert "'sha256-" in page.headers["Content-Security-Policy"]
    # A key the domain does not know; the link without a version (nothing stored there).
    assert carer.get("/koppeltaal/results/no-such-task").status_code == 404
    assert carer.get(f"/koppeltaal/results/{task['id']}").status_code == 404
    # Another client's results (not in this care professional's CareTeams, their Task not
    # launched by them): not found, as on /practice, though the domain knows the Task.
    other = launch_assign(kt_sandbox, published[AD_BASE + "track-waiting-list"], "pat-23",
                          practitioner="prac-2")  # fmt: skip
    assert path_of(launch(app.test_client(), launch_form(kt_sandbox, other["id"])).headers[
        "Location"]) == "/"  # fmt: skip
    assert _row(engine, kt_sandbox.fhir_base, other["id"]) is not None
    with Session(engine) as db, db.begin():
        finish(db, _row(engine, kt_sandbox.fhir_base, other["id"]).enrolment_key,
               by="Practitioner/prac-2")  # fmt: skip
    _deliver(worker)
    (theirs,) = documents(kt_sandbox, base_url, other["id"])
    there = theirs["content"][0]["attachment"]["url"].removeprefix(base_url)
    foreign = carer.get(there, headers={"Accept-Language": "nl"})
    assert foreign.status_code == 404 and "Bijna elke dag" not in text_of(foreign)
    # The client's own session: 403; a browser with no session and no token: 401. Readable.
    for someone, status in ((patient, 403), (app.test_client(), 401)):
        refused = someone.get(path, headers={"Accept-Language": "nl"})
        assert refused.status_code == status
        assert "Open eerst de module vanuit het portaal" in text_of(refused)
        assert "27" not in text_of(refused) and refused.headers["Cache-Control"] == "no-store"
    assert refused.headers["WWW-Authenticate"] == "Bearer"


# --- the document, fetched by the domain's EHR with a token (IG 0.16.3 Documenten Delen) ------


def finish_and_publish(app, info, task_ids) -> dict[str, str]:
    """Finish the enrolments of these KT2_Tasks and run the worker: each Task completed, its
    document published; the DocumentReference's link per Task."""
    state = app.extensions["fhir_burnout"]
    settings, engine = state["settings"], state["engine"]
    recording = Recording(settings)
    worker = Worker(engine, recording.get, deliver_for=deliver_for(
        settings, engine, recording.get, render=results_renderer(app)))  # fmt: skip
    for task_id in task_ids:
        with Session(engine) as db, db.begin():
            finish(db, _row(engine, info.fhir_base, task_id).enrolment_key,
                   by="Practitioner/prac-1")  # fmt: skip
    _deliver(worker)
    recording.clients.close()
    return {
        task_id: documents(info, settings.base_url, task_id)[0]["content"][0]["attachment"]["url"]
        for task_id in task_ids
    }


def domain_token(info, client_id: str, key: dict, resource: str | None = APP) -> str:
    """A client_credentials token of the domain's app ``client_id`` (RS512 private_key_jwt),
    for ``resource`` (RFC 8707: our base URL; None: the domain's FHIR service)."""
    smart = requests.get(f"{info.fhir_base}/.well-known/smart-configuration", timeout=30)
    endpoint = smart.json()["token_endpoint"]
    form = {
        "grant_type": "client_credentials",
        "scope": "system/DocumentReference.rs",  # ignored: the domain grants the app's role
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": client_assertion(client_id, endpoint, key, alg="RS512"),
    }
    if resource:
        form["resource"] = resource
    answer = requests.post(endpoint, data=form, timeout=30)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


@pytest.fixture
def other_domain(tmp_path):
    """A second Koppeltaal domain with, besides the module and its portal, a lab app whose
    role reads Tasks but no DocumentReferences."""
    keys = tmp_path / "lab-keys"
    generate_key(keys, "RS512")
    config = tmp_path / "clients.json"
    lab = {
        "client_id": "lab-app", "token_endpoint_auth_method": "private_key_jwt",
        "grant_types": ["client_credentials"], "jwks": public_jwks(keys),
        "scope": "system/Task.rs system/DocumentReference.rs?resource-origin=Device/lab-app",
    }  # fmt: skip
    config.write_text(json.dumps({"clients": [lab]}))
    with start_sandbox(koppeltaal=True, client_config=config) as info:
        yield SimpleNamespace(info=info, lab_key=current_private_key(keys))


def test_the_domains_ehr_fetches_the_document_with_its_token_and_no_one_else_does(
    kt_sandbox, published, other_domain, tmp_path, database_url
):
    settings = with_results(launch_settings(kt_sandbox, tmp_path, database_url=database_url))
    second = dataclasses.replace(settings.ehrs[0], fhir_base=other_domain.info.fhir_base)
    settings = dataclasses.replace(settings, ehrs=(*settings.ehrs, second))
    app = create_app(settings)
    engine = app.extensions["fhir_burnout"]["engine"]
    definitions = app.extensions["fhir_burnout"]["definitions"]
    track = published[AD_BASE + "track-waiting-list"]
    tasks = {}
    for patient, score in (("pat-18", 3), ("pat-17", 0)):
        tasks[patient] = launch_assign(kt_sandbox, track, patient)
        browser = app.test_client()
        launch(browser, launch_form(kt_sandbox, tasks[patient]["id"]))
        row = _row(engine, kt_sandbox.fhir_base, tasks[patient]["id"])
        with Session(engine) as db, db.begin():
            phq9 = db.scalar(select(TaskRow.key).where(
                TaskRow.enrolment_key == row.enrolment_key, TaskRow.action_id == "phq-9.start"
            ))  # fmt: skip
            submit(db, definitions, phq9, dict.fromkeys(PHQ9_ITEMS, score), patient=patient,
                   now=datetime.now(UTC))  # fmt: skip
    urls = finish_and_publish(app, kt_sandbox, [t["id"] for t in tasks.values()])
    path = urls[tasks["pat-18"]["id"]].removeprefix(settings.base_url)
    portal = kt_sandbox.client("portal")["private_keys"][0]
    ehr = app.test_client()  # no cookie, no session: only the token

    def fetch(token: str | None, where: str = path, **headers: str):
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        answer = ehr.get(where, headers=headers)
        assert answer.headers["Cache-Control"] == "no-store"
        return answer

    fetched = fetch(domain_token(kt_sandbox, "portal", portal), **{"Accept-Language": "en"})
    assert fetched.status_code == 200 and fetched.mimetype == "text/html"
    body = fetched.get_data(as_text=True)
    assert "Set-Cookie" not in fetched.headers  # nothing of a browser session
    text = text_of(fetched)
    assert "Resultaten burn-outprogramma" in text  # Dutch: the attachment's language
    assert "27 Zware klachten" in text and "Bijna elke dag" in text
    assert "Patient/pat-18" in text and "pat-17" not in body  # that client only
    # Self-contained: an EHR archives it as it is (no scripts, links or files from us).
    assert not re.search(r"<script|<link|\bsrc=|\bhref=|<form", body)

    other_portal = other_domain.info.client("portal")["private_keys"][0]
    refusals = {
        "no token": (fetch(None), 401),
        "not a JWT": (fetch("not-a-token"), 401),
        # The portal's token for the FHIR service: not a token for us (RFC 9068 §4).
        "for the FHIR server": (fetch(domain_token(kt_sandbox, "portal", portal, None)), 401),
        # Another app of a domain we serve, whose role reads only its own documents.
        "no DocumentReference read": (
            fetch(domain_token(other_domain.info, "lab-app", other_domain.lab_key)),
            403,
        ),
        # The other domain's EHR, with a good token: the Task is not of its domain.
        "another domain": (fetch(domain_token(other_domain.info, "portal", other_portal)), 404),
        "an unknown key": (
            fetch(domain_token(kt_sandbox, "portal", portal), "/koppeltaal/results/nope"),
            404,
        ),
    }
    for why, (answer, status) in refusals.items():
        assert answer.status_code == status, why
        assert "Zware klachten" not in answer.get_data(as_text=True), why
        if why != "no token":
            assert answer.json["resourceType"] == "OperationOutcome", why
    assert refusals["not a JWT"][0].headers["WWW-Authenticate"].startswith("Bearer")
    engine.dispose()


# --- a domain that takes no DocumentReference -------------------------------------------------


def test_a_domain_refusing_document_reference_still_gets_the_status(domain, tools):
    engine, recorded, _, poller, definitions = tools
    settings = with_results(domain.app.extensions["fhir_burnout"]["settings"])
    client = recorded.get(domain.fhir_base)
    real_create = client.create
    portal_tokens = kt_token_source(domain.info, "portal")

    def create(resource, *, if_none_exist=None):
        if resource["resourceType"] != "DocumentReference":
            return real_create(resource, if_none_exist=if_none_exist)
        # A domain whose role for the module grants no DocumentReference: the real server
        # answers a token without that scope (the portal's) with 403.
        with FhirClient(domain.fhir_base, token_source=portal_tokens) as other:
            other.session.hooks["response"].append(recorded._hook)
            return other.create(resource, if_none_exist=if_none_exist)

    client.create = create
    worker = Worker(engine, recorded.get, deliver_for=deliver_for(
        settings, engine, recorded.get, render=results_renderer(domain.app)))  # fmt: skip
    task = domain.assign("pat-24", "body-signals")
    poller.run_once()
    row = _row(engine, domain.fhir_base, task["id"])
    for status in ("in-progress", "completed"):
        with Session(engine) as db, db.begin():
            change_task(db, definitions, row.local_task_key, status, actor="client",
                        who="Patient/pat-24")  # fmt: skip
        _deliver(worker)
    assert client.read("Task", task["id"])["status"] == "completed"
    # Tried once: a refusal is not tried again.
    assert len(posts(recorded.requests, "DocumentReference")) == 1
    with Session(engine) as db:
        states = set(db.scalars(select(OutboxEntry.state)))
        said = [e for e in db.scalars(select(OutboxEvent.what)) if "DocumentReference" in e]
    assert states == {"delivered"}
    assert len(said) == 1 and "not taken by the domain (403)" in said[0]
    assert documents(domain.info, domain.app_url, task["id"]) == []
    with Session(engine) as db:  # a version sent nowhere is not kept
        assert db.scalars(select(ResultsDocumentRow)).all() == []


# --- immutable once published, each fetch audited, gone after 30 days (draft T029) ---------


def audit_events_about(info, reference: str) -> list[dict]:
    """The AuditEvents on the domain whose entity is ``reference`` (read as the module)."""
    with FhirClient(info.fhir_base, token_source=kt_token_source(info)) as client:
        found = client.search("AuditEvent", {"entity": reference, "_count": "200"})
        return [
            e for e in found
            if any(x.get("what", {}).get("reference") == reference for x in e.get("entity", []))
        ]  # fmt: skip


def test_the_published_document_never_changes_each_fetch_is_audited_and_after_30_days_it_goes(
    kt_sandbox, published, tmp_path, database_url
):
    settings = with_results(launch_settings(kt_sandbox, tmp_path, database_url=database_url))
    app = create_app(settings)
    engine = app.extensions["fhir_burnout"]["engine"]
    definitions = app.extensions["fhir_burnout"]["definitions"]
    base_url, track = settings.base_url, published[AD_BASE + "track-waiting-list"]
    task = launch_assign(kt_sandbox, track, "pat-16")
    launch(app.test_client(), launch_form(kt_sandbox, task["id"]))
    row = _row(engine, kt_sandbox.fhir_base, task["id"])
    with Session(engine) as db, db.begin():
        phq9 = db.scalar(select(TaskRow.key).where(
            TaskRow.enrolment_key == row.enrolment_key, TaskRow.action_id == "phq-9.start"
        ))  # fmt: skip
        submit(db, definitions, phq9, dict.fromkeys(PHQ9_ITEMS, 3), patient="pat-16",
               now=datetime.now(UTC))  # fmt: skip
    url = finish_and_publish(app, kt_sandbox, [task["id"]])[task["id"]]
    (document,) = documents(kt_sandbox, base_url, task["id"])
    attachment = document["content"][0]["attachment"]
    token = domain_token(kt_sandbox, "portal", kt_sandbox.client("portal")["private_keys"][0])
    ehr = app.test_client()

    def fetch(where: str):
        return ehr.get(where.removeprefix(base_url), headers={"Authorization": f"Bearer {token}"})

    first = fetch(url)
    assert first.status_code == 200
    assert sha1_base64(first.get_data()) == attachment["hash"]  # what the link promises
    assert len(first.get_data()) == attachment["size"]

    # The client starts again (the portal assigns another track): their records change; the
    # published document does not.
    again = launch_assign(kt_sandbox, published[AD_BASE + "track-standard"], "pat-16")
    launch(app.test_client(), launch_form(kt_sandbox, again["id"]))
    assert fetch(url).get_data() == first.get_data()

    # Published again: other bytes, so a new version at a new URL, and the same
    # DocumentReference updated to point there (the draft's way); the old URL keeps its bytes.
    with Session(engine) as db, db.begin():
        queue_results(db, _row(engine, kt_sandbox.fhir_base, task["id"]))
    recording = Recording(settings)
    worker = Worker(engine, recording.get, deliver_for=deliver_for(
        settings, engine, recording.get, render=results_renderer(app)))  # fmt: skip
    _deliver(worker)
    (updated,) = documents(kt_sandbox, base_url, task["id"])
    new_url = updated["content"][0]["attachment"]["url"]
    assert updated["id"] == document["id"] and new_url != url
    assert updated["meta"]["versionId"] != document["meta"]["versionId"]
    assert fetch(url).get_data() == first.get_data()
    newer = fetch(new_url)
    assert newer.status_code == 200 and newer.get_data() != first.get_data()
    assert sha1_base64(newer.get_data()) == updated["content"][0]["attachment"]["hash"]

    # One AuditEvent per fetch by the EHR reaches the domain: the read of the document.
    _deliver(worker)
    reference = f"DocumentReference/{document['id']}"
    events = audit_events_about(kt_sandbox, reference)
    assert len(events) == 4
    for event in events:
        assert event["subtype"][0]["code"] == "read" and event["action"] == "R"
        agents = [(a["who"]["reference"], a["type"]["coding"][0]["code"], a["requestor"])
                  for a in event["agent"]]  # fmt: skip
        assert agents == [("Device/fhir-burnout", "110153", False),
                          ("Device/portal", "110152", True)]  # fmt: skip

    # Retention, with the clock moved on (no sleeping): a version goes 30 days after it was
    # published. The first version is set ten days older than the second (as if published
    # then): at day 25 of the second only the first goes, and the link stays.
    with Session(engine) as db, db.begin():
        versions = db.scalars(select(ResultsDocumentRow).order_by(
            ResultsDocumentRow.published_at)).all()  # fmt: skip
        assert len(versions) == 2
        t0 = versions[1].published_at
        versions[0].published_at = t0 - timedelta(days=10)
    assert expire_results(engine, now=t0 + timedelta(days=25)) == 1
    _deliver(worker)
    assert fetch(url).status_code == 404 and fetch(new_url).status_code == 200
    assert len(documents(kt_sandbox, base_url, task["id"])) == 1
    # Day 31: the last version goes, and with it the DocumentReference on the domain.
    assert expire_results(engine, now=t0 + timedelta(days=29)) == 0
    assert expire_results(engine, now=t0 + timedelta(days=31)) == 1
    _deliver(worker)
    assert documents(kt_sandbox, base_url, task["id"]) == []
    gone = fetch(new_url)
    assert gone.status_code == 404 and gone.json["resourceType"] == "OperationOutcome"
    assert "Zware klachten" not in gone.get_data(as_text=True)
    with Session(engine) as db:  # the purge left nothing of the document
        assert db.scalars(select(ResultsDocumentRow)).all() == []
        said = [e for e in db.scalars(select(OutboxEvent.what)) if "retention ended" in e]
    assert len(said) == 1
    assert said[0].startswith(f"1 DocumentReference(s) for Task/{task['id']} removed: retention")
    assert len(audit_events_about(kt_sandbox, reference)) == 5  # the fetch at day 25 too
    assert expire_results(engine, now=t0 + timedelta(days=62)) == 0
    recording.clients.close()
    engine.dispose()


def test_the_worker_command_publishes_the_document_it_renders_itself(
    domain, tools, tmp_path, database_url
):
    engine, _, _, poller, _ = tools
    task = domain.assign("pat-21", "body-signals")
    poller.run_once()
    with Session(engine) as db, db.begin():
        queue_task_status(db, _row(engine, domain.fhir_base, task["id"]), "completed")
    key = tmp_path / "module.jwk"
    key.write_text(json.dumps(domain.info.client("fhir-burnout")["private_keys"][0]))
    config = tmp_path / "fhir-burnout.toml"
    config.write_text(
        f'base_url = "{domain.app_url}"\ndatabase_url = "{database_url}"\n'
        f'secret_key = "kt-secret"\ntoken_key = "{Fernet.generate_key().decode()}"\n'
        + SAFETY_TOML
        + f'[[ehr]]\nfhir_base = "{domain.fhir_base}"\nclient_id = "fhir-burnout"\n'
        f'mode = "koppeltaal"\nbackend_private_key = "{key}"\nkoppeltaal_results = true\n'
        + SAFETY_OWNER_TOML
    )
    result = CliRunner().invoke(main, ["worker", "--config", str(config), "--once"],
                                catch_exceptions=False)  # fmt: skip
    assert result.exit_code == 0, result.output
    (document,) = documents(domain.info, domain.app_url, task["id"])
    attachment = document["content"][0]["attachment"]
    with Session(engine) as db:
        (stored,) = db.scalars(select(ResultsDocumentRow)).all()
    assert attachment["url"].endswith(f"/{task['id']}/{stored.version_id}")
    assert attachment["hash"] == sha1_base64(bytes(stored.html)) == stored.sha1
    assert b"Resultaten burn-outprogramma" in bytes(stored.html)
