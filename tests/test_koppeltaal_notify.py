"""Against the Koppeltaal sandbox: a Task the portal assigns is taken in by the notification
and by the poll, once; the client's progress reaches the domain as the KT Task's status, with
If-Match, and nothing Koppeltaal forbids is ever sent; a Task cancelled in the portal stays
cancelled.

The app runs on a real port (the sandbox delivers its rest-hook there); the outbox worker and
the poll run here, on the same database (SQLite and PostgreSQL), with FHIR clients whose every
request is recorded.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fhir_burnout.cli import main
from fhir_burnout.errors import FhirServerError
from fhir_burnout.fhir import FhirClient
from fhir_burnout.integration import channel_id
from fhir_burnout.koppeltaal import KOPPELTAAL_CHANNEL, subscribe_tasks
from fhir_burnout.koppeltaal._audit import notification_received
from fhir_burnout.koppeltaal._notify import InsecureNotifyEndpointError
from fhir_burnout.koppeltaal._outbox import KoppeltaalOutbox, deliver_for
from fhir_burnout.koppeltaal._plan import queue_task_status
from fhir_burnout.sync import OutboxEntry, OutboxEvent, Worker
from fhir_burnout.workflow import EnrolmentRow, change_task

from .conftest import SAFETY_OWNER_TOML, SAFETY_TOML, kt_token_source
from .koppeltaal_domain import _deliver, _row

KT2_TASK = "http://koppeltaal.nl/fhir/StructureDefinition/KT2Task"
RESOURCE_ORIGIN = "http://koppeltaal.nl/fhir/StructureDefinition/resource-origin"
#: Task elements KT2_Task has 0..0 (IG KT2_Task.fsh).
FORBIDDEN_TASK = (
    "instantiatesUri", "basedOn", "groupIdentifier", "statusReason", "businessStatus",
    "focus", "encounter", "performerType", "location", "reasonCode", "reasonReference",
    "insurance", "note", "relevantHistory", "restriction", "input", "output",
)  # fmt: skip


def _enrolments(engine, patient) -> int:
    with Session(engine) as db:
        return db.scalar(
            select(func.count()).select_from(EnrolmentRow).where(EnrolmentRow.patient == patient)
        )


def test_a_task_assigned_in_the_portal_is_taken_in_by_the_notification_once(domain, tools):
    engine, recorded, worker, poller, _ = tools
    settings = domain.app.extensions["fhir_burnout"]["settings"]
    ours = {"base_url": domain.app_url, "secret_key": settings.secret_key}
    subscribed = subscribe_tasks(recorded.get(domain.fhir_base), **ours)
    assert subscribed.action in ("created", "reactivated", "updated")
    assert subscribed.endpoint == (
        f"{domain.app_url}/koppeltaal/notify?ehr={channel_id(domain.fhir_base)}"
    )
    # Subscribing again changes nothing.
    again = subscribe_tasks(recorded.get(domain.fhir_base), **ours)
    assert again.action == "unchanged" and again.subscription == subscribed.subscription
    poller.run_once()  # the first poll: whatever the shared sandbox holds already
    task = domain.assign("pat-11", "body-signals")
    assert domain.notified.wait(15), "the domain sent no notification"
    polled = poller.run_once()
    assert [(p.state, p.why) for p in polled] == [("polled", "notified")]
    row = _row(engine, domain.fhir_base, task["id"])
    assert row is not None and row.local_task_key is not None and row.patient == "Patient/pat-11"
    assert _enrolments(engine, "pat-11") == 1
    # The scheduled poll sees the same Task again and takes nothing in twice.
    poller.clock = lambda: datetime.now(UTC) + timedelta(hours=1)
    assert [p.why for p in poller.run_once()] == ["interval"]
    assert _enrolments(engine, "pat-11") == 1
    # The receive AuditEvent reaches the domain through the outbox (a POST, with the trace).
    _deliver(worker)
    posted = [w for w in recorded.writes(domain.fhir_base) if w[1] == "AuditEvent"]
    assert posted and posted[0][0] == "POST"
    receive = [b for _, _, _, b in posted if b["type"].get("code") == "receive"]
    assert receive and "extension" in receive[0]


class _Receiver:
    """An https rest-hook receiver on 127.0.0.1 that records the path of each notification."""

    def __init__(self, tls) -> None:
        received: list[str] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                received.append(self.path)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.received = received
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = tls.context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def _subscription(endpoint: str, criteria: str, status: str = "requested") -> dict:
    return {
        "resourceType": "Subscription",
        "meta": {"profile": ["http://koppeltaal.nl/fhir/StructureDefinition/KT2Subscription"]},
        "status": status,
        "reason": "narrowing test",
        "criteria": criteria,
        "channel": {"type": "rest-hook", "endpoint": endpoint},
    }


def test_with_narrowing_on_the_module_is_notified_of_its_task_but_not_of_what_it_may_not_read(
    domain, tools, loopback_tls
):
    """The domain notifies a Subscription only of what the subscriber's role may read (the
    reference's SubscriptionNarrowingInterceptor): our module's role grants the portal's
    Tasks, so the Task the portal assigns still reaches us; it does not grant the portal's
    Subscriptions, so a Subscription of ours that watches those hears only of our own."""
    engine, recorded, _, poller, _ = tools
    settings = domain.app.extensions["fhir_burnout"]["settings"]
    module = recorded.get(domain.fhir_base)
    subscribe_tasks(module, base_url=domain.app_url, secret_key=settings.secret_key)
    poller.run_once()
    receiver = _Receiver(loopback_tls)
    watched = f"https://127.0.0.1:9/{uuid.uuid4()}"  # only a search key: never notified
    ours = module.create(_subscription(f"{receiver.url}/watch", f"Subscription?url={watched}"))
    made = [ours]
    try:
        portal_tokens = kt_token_source(domain.info, "portal")
        with FhirClient(domain.fhir_base, token_source=portal_tokens) as portal:
            portal.create(_subscription(watched, "Task?status=ready", status="off"))
        # Our own, written after the portal's: the same Subscription hears of it, in order.
        made.append(module.create(_subscription(watched, "Task?status=ready", status="off")))
        for _ in range(100):
            if receiver.received:
                break
            time.sleep(0.05)
        time.sleep(0.2)
        assert receiver.received == ["/watch"], "notified of the portal's Subscription too"

        domain.notified.clear()
        task = domain.assign("pat-16", "body-signals")
        assert domain.notified.wait(15), "the domain did not notify us of the portal's Task"
        assert [(p.state, p.why) for p in poller.run_once()] == [("polled", "notified")]
        row = _row(engine, domain.fhir_base, task["id"])
        assert row is not None and row.patient == "Patient/pat-16"
    finally:
        receiver.close()
        for sub in made:
            current = module.read("Subscription", sub["id"])
            if current["status"] != "off":
                version = current["meta"]["versionId"]
                module.update({**current, "status": "off"}, version_id=version)


def test_the_app_subscribes_only_over_https_as_the_domain_notifies_nothing_else(kt_fhir):
    """Off this machine a plain-http base_url is refused before anything is sent, in words;
    on it (a sandbox) the request goes out and the domain itself refuses it (422)."""
    elsewhere = "http://burnout.example-practice.nl"
    with pytest.raises(InsecureNotifyEndpointError) as refused:
        subscribe_tasks(kt_fhir, base_url=elsewhere, secret_key="s")
    assert "alleen naar https" in str(refused.value) and "https endpoints only" in str(
        refused.value
    )
    assert refused.value.outcome()["issue"][0]["code"] == "security"
    endpoint = KOPPELTAAL_CHANNEL.endpoint(elsewhere, kt_fhir.base_url)
    assert list(kt_fhir.search("Subscription", {"url": endpoint})) == []
    with pytest.raises(FhirServerError) as by_the_domain:
        subscribe_tasks(kt_fhir, base_url="http://127.0.0.1:9", secret_key="s")
    assert by_the_domain.value.status == 422


def test_a_task_is_taken_in_by_the_poll_without_a_notification(domain, tools):
    engine, _, _, poller, _ = tools
    task = domain.assign("pat-12", "waiting-list")
    outcome = poller.run_once()[0]
    assert outcome.state == "polled" and outcome.why == "first"
    row = _row(engine, domain.fhir_base, task["id"])
    assert row is not None and row.local_task_key is None
    with Session(engine) as db:
        track = db.scalar(select(EnrolmentRow.track).where(EnrolmentRow.key == row.enrolment_key))
    assert track == "waiting-list"


def test_the_clients_progress_reaches_the_kt_task_and_nothing_forbidden_is_sent(domain, tools):
    engine, recorded, worker, poller, definitions = tools
    task = domain.assign("pat-13", "body-signals")
    poller.run_once()
    row = _row(engine, domain.fhir_base, task["id"])
    _deliver(worker)  # the enrolment's writes: they all stay with us
    with Session(engine) as db, db.begin():
        change_task(db, definitions, row.local_task_key, "in-progress", actor="client",
                    who="Patient/pat-13")  # fmt: skip
    _deliver(worker)
    server = recorded.get(domain.fhir_base).read("Task", task["id"])
    assert server["status"] == "in-progress"
    with Session(engine) as db, db.begin():
        change_task(db, definitions, row.local_task_key, "completed", actor="client",
                    who="Patient/pat-13")  # fmt: skip
    _deliver(worker)
    server = recorded.get(domain.fhir_base).read("Task", task["id"])
    assert server["status"] == "completed"
    assert _row(engine, domain.fhir_base, task["id"]).status == "completed"
    with Session(engine) as db:
        states = set(db.scalars(select(OutboxEntry.state)))
        events = db.scalars(select(OutboxEvent.what)).all()
    assert states == {"delivered"}
    assert any("stays with us" in e for e in events)

    writes = recorded.writes(domain.fhir_base)
    puts = [w for w in writes if w[0] == "PUT"]
    assert len(puts) == 2  # ready → in-progress, in-progress → completed
    read_ids = {r.url.split("/Task/")[1].split("?")[0] for r in recorded.requests
                if r.method == "GET" and "/Task/" in r.url}  # fmt: skip
    for method, path, headers, body in writes:
        # Only a KT Task's status (PUT), AuditEvents and our Subscription (POST): never a
        # CarePlan, RequestGroup, our own Tasks, QuestionnaireResponse, Provenance.
        allowed = (("PUT", "Task"), ("POST", "AuditEvent"), ("POST", "Subscription"))
        assert (method, path.split("/")[0]) in allowed
        if path == "Subscription":
            assert body["channel"]["type"] == "rest-hook" and "payload" not in body["channel"]
        assert RESOURCE_ORIGIN not in json.dumps(body) or method == "PUT"
        if method == "PUT":
            assert headers.get("If-Match", "").startswith('W/"')  # never without If-Match
            assert path.split("/")[1] in read_ids  # an update of what we read: no PUT-create
            assert KT2_TASK in body["meta"]["profile"]
            assert not any(element in body for element in FORBIDDEN_TASK)
            # The resource-origin stays the portal's, as read.
            origin = [e for e in body.get("extension", []) if e["url"] == RESOURCE_ORIGIN]
            assert origin and origin[0]["valueReference"]["reference"] == "Device/portal"
        else:
            assert "id" not in body
    statuses = [b for m, p, _, b in writes if p == "AuditEvent"
                and b.get("outcomeDesc", "").startswith("Task.status")]  # fmt: skip
    assert [b["outcomeDesc"] for b in statuses] == [
        "Task.status ready -> in-progress", "Task.status in-progress -> completed",
    ]  # fmt: skip


def test_a_task_cancelled_in_the_portal_stays_cancelled(domain, tools):
    engine, recorded, worker, poller, definitions = tools
    task = domain.assign("pat-14", "body-signals")
    poller.run_once()
    row = _row(engine, domain.fhir_base, task["id"])
    portal_tokens = kt_token_source(domain.info, "portal")
    with FhirClient(domain.fhir_base, token_source=portal_tokens) as portal:
        current = portal.read("Task", task["id"])
        portal.update({**current, "status": "cancelled"}, version_id=current["meta"]["versionId"])
    with Session(engine) as db, db.begin():
        change_task(db, definitions, row.local_task_key, "in-progress", actor="client",
                    who="Patient/pat-14")  # fmt: skip
    _deliver(worker)
    server = recorded.get(domain.fhir_base).read("Task", task["id"])
    assert server["status"] == "cancelled"
    assert not [w for w in recorded.writes(domain.fhir_base) if w[0] == "PUT"]
    with Session(engine) as db:
        events = db.scalars(select(OutboxEvent.what)).all()
        states = set(db.scalars(select(OutboxEntry.state)))
    assert states == {"delivered"}
    assert any(f"Task/{task['id']} is cancelled on the server" in e for e in events)


def test_a_task_we_cannot_take_in_is_reported_to_the_domain(domain, tools):
    engine, recorded, worker, poller, _ = tools
    poller.run_once()
    portal_tokens = kt_token_source(domain.info, "portal")
    task = domain.assign("pat-15", "body-signals")
    with FhirClient(domain.fhir_base, token_source=portal_tokens) as portal:
        current = portal.read("Task", task["id"])
        # Owned by a care professional: not the client's assignment, so not ours to enrol.
        changed = {**current, "owner": {"reference": "Practitioner/prac-2"}}
        portal.update(changed, version_id=current["meta"]["versionId"])
    poller.clock = lambda: datetime.now(UTC) + timedelta(hours=1)
    outcome = poller.run_once()[0]
    assert f"Task/{task['id']}: owner" in outcome.result.refused
    assert _row(engine, domain.fhir_base, task["id"]) is None
    assert _enrolments(engine, "pat-15") == 0
    _deliver(worker)
    about = f"Task/{task['id']}/_history/"
    errors = [b for m, p, _, b in recorded.writes(domain.fhir_base)
              if p == "AuditEvent" and b["type"]["code"] == "rest"
              and b["entity"][0]["what"]["reference"].startswith(about)]  # fmt: skip
    assert len(errors) == 1 and errors[0]["outcome"] == "4" and errors[0]["outcomeDesc"]


@pytest.mark.parametrize(
    ("ehr", "authorization", "status"),
    [("right", "Bearer wrong", 401), ("right", None, 401), ("nobody", "right", 404)],
)
def test_a_notification_needs_a_known_domain_and_its_token(domain, ehr, authorization, status):
    settings = domain.app.extensions["fhir_burnout"]["settings"]
    url = KOPPELTAAL_CHANNEL.endpoint(domain.app_url, domain.fhir_base).split(domain.app_url)[1]
    if ehr == "nobody":
        url = url.split("?")[0] + "?ehr=0000000000000000"
    headers = {}
    if authorization == "right":
        token = KOPPELTAAL_CHANNEL.token(settings.secret_key, domain.fhir_base)
        headers["Authorization"] = f"Bearer {token}"
    elif authorization:
        headers["Authorization"] = authorization
    answer = domain.app.test_client().post(url, headers=headers)
    assert answer.status_code == status
    assert answer.get_json()["resourceType"] == "OperationOutcome"
    engine = domain.app.extensions["fhir_burnout"]["engine"]
    with Session(engine) as db:  # nothing asked of the worker
        assert db.scalar(select(func.count()).select_from(OutboxEntry)) == 0


def test_a_kt_task_changed_meanwhile_is_read_again_and_the_status_still_goes_on(domain, tools):
    engine, recorded, _, poller, definitions = tools
    task = domain.assign("pat-16", "body-signals")
    poller.run_once()
    row = _row(engine, domain.fhir_base, task["id"])
    portal_tokens = kt_token_source(domain.info, "portal")
    client = recorded.get(domain.fhir_base)
    real_update = client.update
    raced = []

    def update_after_the_portal(resource, *, version_id=None):
        if not raced:  # the portal edits the Task between our read and our PUT, once
            with FhirClient(domain.fhir_base, token_source=portal_tokens) as portal:
                current = portal.read("Task", task["id"])
                portal.update({**current, "description": "Lees dit deze week"},
                              version_id=current["meta"]["versionId"])  # fmt: skip
            raced.append(True)
        return real_update(resource, version_id=version_id)

    client.update = update_after_the_portal
    settings = domain.app.extensions["fhir_burnout"]["settings"]
    worker = Worker(engine, recorded.get, deliver_for=deliver_for(settings, engine, recorded.get))
    with Session(engine) as db, db.begin():
        change_task(db, definitions, row.local_task_key, "in-progress", actor="client",
                    who="Patient/pat-16")  # fmt: skip
    _deliver(worker)
    server = client.read("Task", task["id"])
    # Our status, on top of the portal's edit (kept): read again after the 412.
    assert server["status"] == "in-progress" and server["description"] == "Lees dit deze week"
    puts = [r for r in recorded.requests if r.method == "PUT"]
    assert len(puts) == 2 and puts[0].headers["If-Match"] != puts[1].headers["If-Match"]


def test_an_audit_event_is_sent_once_whatever_the_retries(domain, tools):
    engine, recorded, _, _, _ = tools
    settings = domain.app.extensions["fhir_burnout"]["settings"]
    outbox = KoppeltaalOutbox(engine, recorded.get)
    event = notification_received(client_id="fhir-burnout", base_url=settings.base_url,
                                  subscription_id="s1")  # fmt: skip
    entry = SimpleNamespace(
        key="e1", fhir_base=domain.fhir_base,
        payload={"operations": [{"op": "create", "key": str(uuid.uuid4()), "resource": event}]},
    )  # fmt: skip
    first, second = outbox.deliver(entry), outbox.deliver(entry)
    assert first.state == second.state == "delivered"
    assert first.what == second.what  # the same AuditEvent/<id>: found, not made again


def test_requests_carry_the_trace_of_the_notification(domain, tools):
    _, recorded, worker, poller, _ = tools
    poller.run_once()
    domain.notified.clear()
    domain.assign("pat-17", "waiting-list")
    assert domain.notified.wait(15), "the domain sent no notification"
    before = len(recorded.requests)
    poller.run_once()
    searches = [r for r in recorded.requests[before:] if r.method == "GET"
                and r.url.split("?")[0].endswith("/Task")]  # fmt: skip
    _deliver(worker)
    receive = [b for _, p, _, b in recorded.writes(domain.fhir_base)
               if p == "AuditEvent" and b["type"].get("code") == "receive"][-1]  # fmt: skip
    ids = {e["url"].rsplit("/", 1)[1]: e["valueId"] for e in receive["extension"]}
    assert searches and all(r.headers["X-Trace-Id"] == ids["trace-id"] for r in searches)
    assert all(r.headers["X-Correlation-Id"] == ids["request-id"] for r in searches)
    assert len({r.headers["X-Request-Id"] for r in recorded.requests}) == len(recorded.requests)


def test_the_worker_command_sends_a_kt_task_status_for_a_koppeltaal_ehr(
    domain, tools, tmp_path, database_url
):
    engine, _, _, poller, _ = tools
    task = domain.assign("pat-18", "waiting-list")
    poller.run_once()
    with Session(engine) as db, db.begin():
        queue_task_status(db, _row(engine, domain.fhir_base, task["id"]), "in-progress")
    key = tmp_path / "module.jwk"
    key.write_text(json.dumps(domain.info.client("fhir-burnout")["private_keys"][0]))
    config = tmp_path / "fhir-burnout.toml"
    config.write_text(
        f'base_url = "{domain.app_url}"\ndatabase_url = "{database_url}"\n'
        'secret_key = "kt-secret"\ntoken_key = "'
        + Fernet.generate_key().decode()
        + '"\n'
        + SAFETY_TOML
        + f'[[ehr]]\nfhir_base = "{domain.fhir_base}"\nclient_id = "fhir-burnout"\n'
        f'mode = "koppeltaal"\nbackend_private_key = "{key}"\n' + SAFETY_OWNER_TOML
    )
    result = CliRunner().invoke(main, ["worker", "--config", str(config), "--once"],
                                catch_exceptions=False)  # fmt: skip
    assert result.exit_code == 0, result.output
    with FhirClient(domain.fhir_base, token_source=kt_token_source(domain.info)) as client:
        assert client.read("Task", task["id"])["status"] == "in-progress"


def test_a_status_the_domain_refuses_is_a_dead_letter_and_reported(domain, tools):
    engine, recorded, _, poller, definitions = tools
    task = domain.assign("pat-19", "body-signals")
    poller.run_once()
    row = _row(engine, domain.fhir_base, task["id"])
    client = recorded.get(domain.fhir_base)
    real_update = client.update

    def broken_update(resource, *, version_id=None):
        # A bug that would put Task.input on the wire: the domain refuses it (KT2_Task 0..0).
        return real_update({**resource, "input": [{"type": {"text": "x"}, "valueString": "x"}]},
                           version_id=version_id)  # fmt: skip

    client.update = broken_update
    settings = domain.app.extensions["fhir_burnout"]["settings"]
    worker = Worker(engine, recorded.get, deliver_for=deliver_for(settings, engine, recorded.get))
    with Session(engine) as db, db.begin():
        change_task(db, definitions, row.local_task_key, "in-progress", actor="client",
                    who="Patient/pat-19")  # fmt: skip
    _deliver(worker)
    with Session(engine) as db:
        dead = db.scalars(select(OutboxEntry).where(OutboxEntry.state == "dead")).all()
    assert len(dead) == 1 and dead[0].last_status in (400, 422)
    assert client.read("Task", task["id"])["status"] == "ready"
    about = f"Task/{task['id']}"
    reports = [b for m, p, _, b in recorded.writes(domain.fhir_base)
               if p == "AuditEvent" and b["type"]["code"] == "rest"
               and b["entity"][0]["what"]["reference"] == about]  # fmt: skip
    assert len(reports) == 1 and reports[0]["outcome"] == "4"
    assert reports[0]["subtype"][0]["code"] == "update"


def test_a_task_read_without_a_version_is_never_put_without_if_match(domain, tools):
    """Every PUT we send carries If-Match (TOP-KT-002). A Task is PUT with the version we
    read; the only way to a PUT without one is a read answer without ``meta.versionId``,
    which neither the sandbox nor the reference HAPI server gives: so that answer is the
    stand-in here (the read stripped of it), and everything else is the real sandbox. The
    status is not sent at all (before, it went without If-Match and the domain answered
    412): the entry is a dead letter that says why, and the Task is unchanged."""
    engine, recorded, _, poller, definitions = tools
    task = domain.assign("pat-20", "body-signals")
    poller.run_once()
    row = _row(engine, domain.fhir_base, task["id"])
    client = recorded.get(domain.fhir_base)
    real_read = client.read

    def read_without_version(resource_type, resource_id):
        found = real_read(resource_type, resource_id)
        if resource_type == "Task":
            found["meta"] = {k: v for k, v in found["meta"].items() if k != "versionId"}
        return found

    client.read = read_without_version
    settings = domain.app.extensions["fhir_burnout"]["settings"]
    worker = Worker(engine, recorded.get, deliver_for=deliver_for(settings, engine, recorded.get))
    with Session(engine) as db, db.begin():
        change_task(db, definitions, row.local_task_key, "in-progress", actor="client",
                    who="Patient/pat-20")  # fmt: skip
    _deliver(worker)
    assert not [r for r in recorded.requests if r.method == "PUT"]
    with Session(engine) as db:
        dead = db.scalars(select(OutboxEntry).where(OutboxEntry.state == "dead")).all()
        events = db.scalars(select(OutboxEvent.what)).all()
    assert len(dead) == 1
    assert any(f"Task/{task['id']} as read from the domain has no meta.versionId" in e
               for e in events)  # fmt: skip
    assert real_read("Task", task["id"])["status"] == "ready"


def _view_subtask(domain, main, patient, owner):
    """A ``view`` subtask of ``main``, made by the portal on the FHIR server."""
    task = {
        "resourceType": "Task",
        "meta": {"profile": [KT2_TASK]},
        "extension": [e for e in main["extension"] if e["url"].endswith("/instantiates")],
        "identifier": [{"system": "http://fhir-burnout.example/portal-task",
                        "value": str(uuid.uuid4())}],
        "status": "ready", "intent": "order", "priority": "routine",
        "code": {"coding": [{"system": "http://vzvz.nl/fhir/CodeSystem/koppeltaal-task-code",
                             "code": "view"}]},
        "partOf": [{"reference": f"Task/{main['id']}"}],
        "for": {"reference": f"Patient/{patient}"},
        "owner": {"reference": owner},
        "requester": {"reference": "Practitioner/prac-1"},
    }  # fmt: skip
    with FhirClient(domain.fhir_base, token_source=kt_token_source(domain.info, "portal")) as p:
        return p.create(task)


def test_a_view_subtask_enrols_no_one_and_a_broken_one_is_reported(domain, tools):
    engine, recorded, worker, poller, _ = tools
    main = domain.assign("pat-20", "body-signals")
    good = _view_subtask(domain, main, "pat-20", "Practitioner/prac-2")
    broken = _view_subtask(domain, main, "pat-21", "Patient/pat-21")  # another patient
    result = poller.run_once()[0].result
    assert _row(engine, domain.fhir_base, main["id"]) is not None
    assert _row(engine, domain.fhir_base, good["id"]) is None
    assert _row(engine, domain.fhir_base, broken["id"]) is None
    assert result.refused == [f"Task/{broken['id']}: view"]
    assert _enrolments(engine, "pat-20") == 1 and _enrolments(engine, "pat-21") == 0
    _deliver(worker)
    reported = [b["entity"][0]["what"]["reference"] for _, p, _, b in
                recorded.writes(domain.fhir_base)
                if p == "AuditEvent" and b["type"]["code"] == "rest"]  # fmt: skip
    assert [r.split("/_history/")[0] for r in reported] == [f"Task/{broken['id']}"]
