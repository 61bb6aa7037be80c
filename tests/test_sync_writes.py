"""Writes that reach real EHRs, visibly (issue 17, point 5): per EHR the worker writes with
SMART Backend Services or with the authorisation of the person whose action caused the
write; a refusal keeps the EHR's words; ``sync status`` and ``/practice`` say what cannot be
delivered and why. Against the sandbox EHR, on SQLite and PostgreSQL."""

from __future__ import annotations

import html
import json
import re

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from fhir_burnout.cli import main
from fhir_burnout.errors import ContentError
from fhir_burnout.integration import EhrClients
from fhir_burnout.settings import Settings
from fhir_burnout.sync import KEY_SYSTEM, OutboxEntry, Worker, queue_status
from fhir_burnout.web import create_app
from fhir_burnout.web._session_tokens import SessionTokens
from fhir_burnout.web._sessions import LaunchSessionRow, purge
from fhir_burnout.workflow import EnrolmentRow, ResponseRow, TaskRow, enrol

from .conftest import hidden_fields
from .launches import as_patient, launch
from .outbox_load import deliver_all, worker_config

PRACTICE = 'practice = "Organization/practice-1"'


def configured(tmp_path, sandbox, database_url, *lines, worker="fhir-burnout-worker"):
    """A config file for the app and the worker (as the EHR's client ``worker``), and the
    app built from it."""
    config = worker_config(tmp_path, sandbox, database_url, PRACTICE, *lines)
    config.write_text(config.read_text().replace('"fhir-burnout-worker"', f'"{worker}"'))
    app = create_app(Settings.from_file(config))
    return str(config), app


@pytest.fixture
def user_writes(tmp_path, sandbox, database_url):
    """An EHR set to ``writes = "user"`` that offers the worker no Backend Services (its
    client is the app's public one): only people's own tokens can carry the writes."""
    config, app = configured(
        tmp_path, sandbox, database_url, 'writes = "user"', worker="fhir-burnout"
    )
    yield config, app
    app.extensions["fhir_burnout"]["engine"].dispose()


@pytest.fixture
def refused_worker(tmp_path, sandbox, database_url):
    """Backend Services with a client the EHR does not offer them to (the app's public
    client: no client_credentials grant, no keys registered): the sandbox refuses it."""
    config, app = configured(tmp_path, sandbox, database_url, worker="fhir-burnout")
    yield config, app
    app.extensions["fhir_burnout"]["engine"].dispose()


def worker_of(app):
    """The worker as ``fhir-burnout worker`` composes it, on the app's database."""
    state = app.extensions["fhir_burnout"]
    settings = state["settings"]
    clients = EhrClients(settings, SessionTokens(state["store"], settings.ehrs))
    return Worker(state["engine"], clients.get, access_for=clients.access, owner="w"), clients


def post(client, path, **form):
    page = client.get("/practitioner").get_data(as_text=True)
    return client.post(path, data={**hidden_fields(page), **form})


def entries(app):
    with Session(app.extensions["fhir_burnout"]["engine"]) as db:
        return [
            (e.kind, e.caused_by, e.state, e.waiting_for, e.last_error)
            for e in db.scalars(select(OutboxEntry).order_by(OutboxEntry.id))
        ]


def sid_of(client):
    with client.session_transaction() as kept:
        return kept["sid"]


def option(page, link, label):
    pattern = rf'name="a\.{link}" value="(\d+)"[^>]*> <span>{re.escape(label)}'
    return re.search(pattern, page)[1]


def test_without_backend_services_the_writes_go_with_the_tokens_of_who_made_them(
    user_writes, sandbox, fhir
):
    _config, app = user_writes
    state = app.extensions["fhir_burnout"]
    # The care professional enrols the client from the chart; the client answers at home.
    professional = app.test_client()
    launch(professional, sandbox, patient="pat-21", practitioner="prac-1")
    assert post(professional, "/practitioner/enrol", track="waiting-list").status_code == 303
    client = as_patient(app, "pat-21")
    with Session(state["engine"]) as db:
        enrolment = db.scalars(select(EnrolmentRow).where(EnrolmentRow.patient == "pat-21")).one()
        checkin = db.scalars(
            select(TaskRow).where(
                TaskRow.enrolment_key == enrolment.key,
                TaskRow.action_id == "weekly-checkin.weekly",
            )
        ).one()
    url = f"/task/{checkin.key}/form"
    page = client.get(url, headers={"Accept-Language": "nl"}).get_data(as_text=True)
    sent = client.post(url, data={
        **hidden_fields(page), "a.checkin-energy": "6", "a.checkin-tension": "4",
        "a.checkin-sleep": option(page, "checkin-sleep", "Redelijk"),
        "a.checkin-went-well": "Een wandeling", "action": "submit",
        "a.checkin-safety": option(page, "checkin-safety", "Nee"),
    })  # fmt: skip
    assert sent.status_code == 303
    # Each write remembers whose launch caused it.
    caused = {kind: cause for kind, cause, *_ in entries(app)}
    assert caused["enrolment"] == sid_of(professional)
    assert sid_of(client) in caused.values() and len(set(caused.values())) == 2
    # The client signs out before the worker runs: their pages end at once, but their
    # authorisation is kept (for the worker only) until their answers are delivered.
    patient_sid = sid_of(client)
    page = client.get("/").get_data(as_text=True)
    assert client.post("/logout", data=hidden_fields(page)).status_code == 200
    with client.session_transaction() as kept:
        kept["sid"] = patient_sid  # an old copy of the cookie: it must reach nothing
    assert client.get("/").status_code == 401
    assert purge(state["engine"]) == (0, 0)  # still needed by the answers
    worker, clients = worker_of(app)
    try:
        deliver_all(worker)
    finally:
        clients.close()
    assert [(s, w) for _, _, s, w, _ in entries(app)] == [("delivered", None)] * len(caused)
    [careplan] = fhir.search("CarePlan", {"identifier": f"{KEY_SYSTEM}|{enrolment.key}"})
    assert careplan["subject"] == {"reference": "Patient/pat-21"}
    with Session(state["engine"]) as db:
        sent_key = db.scalars(select(ResponseRow.key).where(ResponseRow.task_key == checkin.key))
        identifier = f"{KEY_SYSTEM}|{sent_key.one()}"
    [answer] = fhir.search("QuestionnaireResponse", {"identifier": identifier})
    assert answer["subject"] == {"reference": "Patient/pat-21"}
    assert answer["questionnaire"].endswith("/Questionnaire/weekly-checkin|0.1.0")
    [task] = fhir.search("Task", {"identifier": f"{KEY_SYSTEM}|{checkin.key}"})
    assert task["status"] == "completed"
    # Delivered, and the client signed out: their tokens go at the next purge; the care
    # professional's launch is still theirs.
    assert purge(state["engine"]) == (0, 1)
    with Session(state["engine"]) as db:
        assert {r.id for r in db.scalars(select(LaunchSessionRow))} == {sid_of(professional)}
    assert professional.get("/practitioner").status_code == 200
    assert queue_status(state["engine"]).dead == 0


def test_writes_nobody_signed_in_made_wait_and_say_why(user_writes, sandbox, runner):
    config, app = user_writes
    state = app.extensions["fhir_burnout"]
    with Session(state["engine"]) as db, db.begin():  # as $apply or a referral would
        enrol(db, state["definitions"], fhir_base=sandbox.fhir_base, patient="pat-22",
              track="waiting-list", practice="Organization/practice-1")  # fmt: skip
    worker, clients = worker_of(app)
    assert worker.run_once() == 1
    clients.close()
    [(_, cause, entry_state, waiting, error)] = entries(app)
    assert (cause, entry_state, waiting) == (None, "pending", "no-user")
    assert "nobody signed in made this change" in error
    status = json.loads(runner.invoke(main, ["sync", "status", "--config", config,
                                             "--json"]).output)  # fmt: skip
    [ehr] = status["ehrs"]
    user = "writes with the signed-in user's authorisation"
    assert (ehr["writes"], ehr["how"]) == ("user", user)
    [waiting] = ehr["waiting"]
    assert (waiting["reason"], waiting["count"]) == ("no-user", 1)
    assert "nobody signed in made these changes" in waiting["why"]
    text = runner.invoke(main, ["sync", "status", "--config", config]).output
    assert "1 cannot be delivered: the EHR takes writes only with a signed-in person's" in text
    started = runner.invoke(main, ["worker", "--config", config, "--once"])
    assert f"worker: {sandbox.fhir_base} writes with the signed-in user's authorisation" in (
        started.output
    )
    page = practice_page(app, sandbox)
    assert "Alles is afgeleverd of onderweg" not in page
    assert "1 wijziging wacht." in page  # a plural of its own (gettext ngettext)
    assert "niet van iemand die was ingelogd" in page


def practice_page(app, sandbox):
    professional = app.test_client()
    launch(professional, sandbox, patient="pat-22", practitioner="prac-1")
    answer = professional.get("/practice", headers={"Accept-Language": "nl"})
    assert answer.status_code == 200
    return answer.get_data(as_text=True)


def test_a_worker_the_ehr_refuses_is_stored_as_the_ehrs_refusal(refused_worker, sandbox, runner):
    config, app = refused_worker
    state = app.extensions["fhir_burnout"]
    assert "Alles is afgeleverd of onderweg" in practice_page(app, sandbox)
    with Session(state["engine"]) as db, db.begin():
        enrol(db, state["definitions"], fhir_base=sandbox.fhir_base, patient="pat-23",
              track="waiting-list", practice="Organization/practice-1")  # fmt: skip
    started = runner.invoke(main, ["worker", "--config", config, "--once"])
    assert f"worker: {sandbox.fhir_base} writes with SMART Backend Services as fhir-burnout" in (
        started.output
    )
    [(_, _, entry_state, waiting, error)] = entries(app)
    assert (entry_state, waiting) == ("pending", "worker-refused")
    # oidc-provider answers a client it cannot authenticate with 401 (RFC 6749 §5.2 allows
    # 400 or 401); either way the EHR's status, error and description are kept.
    refusal = "the EHR's authorization server refused the worker: 401 invalid_client"
    assert error == f"{refusal}: client authentication failed"
    with Session(state["engine"]) as db:
        assert db.scalars(select(OutboxEntry.last_status)).one() == 401
    text = runner.invoke(main, ["sync", "status", "--config", config]).output
    assert "writes with SMART Backend Services as fhir-burnout" in text
    assert "1 cannot be delivered: the EHR's authorization server refused the worker's" in text
    assert f"last error: {refusal}: client authentication failed" in text
    page = practice_page(app, sandbox)
    assert "Alles is afgeleverd of onderweg" not in page
    assert "Het EHR weigert de koppeling van de app" in page
    assert f"{refusal}: client authentication failed" in html.unescape(page)


def _ehr_config(**ehr):
    return {
        "base_url": "https://app.example", "secret_key": "s", "token_key": "k",
        "ehr": [{"fhir_base": "https://ehr.example/fhir", "client_id": "app", **ehr}],
    }  # fmt: skip


def test_writes_default_to_backend_services_only_where_the_worker_has_a_key(tmp_path, sandbox):
    keyless = Settings.from_mapping(_ehr_config(), base_dir=tmp_path, env={})
    assert keyless.ehrs[0].writes == "user" and keyless.ehrs[0].user_writes
    key = tmp_path / "worker.jwk"
    key.write_text(json.dumps(sandbox.client("fhir-burnout-worker")["private_keys"][0]))
    keyed = Settings.from_mapping(
        _ehr_config(backend_private_key="worker.jwk"), base_dir=tmp_path, env={}
    )
    assert keyed.ehrs[0].writes == "backend" and not keyed.ehrs[0].user_writes
    with pytest.raises(ContentError, match=r"ehr\[0\]\.writes"):
        Settings.from_mapping(_ehr_config(writes="sometimes"), base_dir=tmp_path, env={})
