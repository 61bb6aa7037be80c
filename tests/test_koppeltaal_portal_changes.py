"""Against the Koppeltaal sandbox: a Task the portal cancels or puts on hold acts on our
programme (the enrolment stopped or paused, and back), nothing goes back for a Task the
portal cancelled, and a status we sent ourselves is never taken for the portal's.

The portal assigns with ``POST {portal}/tasks`` and changes the Task as the portal client
(Device/portal) with If-Match; the app runs on a real port for the notifications (or, for
the client's home after an HTI launch, at its registered address through the test client);
the poll and the outbox worker run here, on SQLite and PostgreSQL, with every request
recorded.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fhir_burnout.fhir import FhirClient
from fhir_burnout.integration import KOPPELTAAL_TASKS, EhrClients, Poller, PollRow
from fhir_burnout.koppeltaal import KoppeltaalFeed
from fhir_burnout.koppeltaal._notify import CRITERIA
from fhir_burnout.koppeltaal._outbox import deliver_for
from fhir_burnout.koppeltaal._plan import queue_task_status
from fhir_burnout.koppeltaal._portal import CANCELLED_REASON, HOLD_REASON, follow_portal
from fhir_burnout.sync import OutboxEntry, OutboxEvent, Worker
from fhir_burnout.web import create_app
from fhir_burnout.workflow import Definitions, EnrolmentRow, TaskRow, pause, programme_views

from .conftest import kt_token_source, path_of
from .koppeltaal_domain import (
    _deliver,
    _row,
    _start_after_what_is_there,
    kt_clients,
)
from .koppeltaal_launches import (
    AD_BASE,
    WAITING_LIST,
    launch,
    launch_form,
    text_of,
)
from .koppeltaal_launches import assign as launch_assign
from .koppeltaal_launches import kt_settings as launch_settings


def _portal_sets(domain, task_id: str, status: str) -> dict:
    """The portal changes the Task's status (as Device/portal, If-Match on what it read)."""
    with FhirClient(domain.fhir_base, token_source=kt_token_source(domain.info, "portal")) as p:
        current = p.read("Task", task_id)
        return p.update({**current, "status": status}, version_id=current["meta"]["versionId"])


def _enrolment(engine, key: str) -> EnrolmentRow:
    with Session(engine) as db:
        enrolment = db.get(EnrolmentRow, key)
        assert enrolment is not None
        db.expunge(enrolment)
        return enrolment


def _reasons(db, enrolment_key: str, status: str) -> list[str | None]:
    """The status reasons of an enrolment's Tasks in ``status``."""
    found = select(TaskRow.status_reason).where(
        TaskRow.enrolment_key == enrolment_key, TaskRow.status == status
    )
    return list(db.scalars(found))


def _delivered(engine) -> bool:
    """Whether every outbox entry went (so a PUT that is not there was not sent)."""
    with Session(engine) as db:
        return set(db.scalars(select(OutboxEntry.state))) == {"delivered"}


def _later(poller) -> None:
    """The scheduled poll is due again: its last success an hour back (the clock stays
    real, so what the poll queues is due for the worker now)."""
    with Session(poller.engine) as db, db.begin():
        db.execute(
            update(PollRow)
            .where(PollRow.feed == KOPPELTAAL_TASKS)
            .values(succeeded_at=datetime.now(UTC) - timedelta(hours=1))
        )


def _about_task(recorded, domain, task_id: str, since: int) -> list[tuple[str, str]]:
    """(method, path) of the requests about one KT Task after the ``since``-th."""
    return [
        (r.method, r.url.split("?")[0][len(domain.fhir_base.rstrip("/")) + 1 :])
        for r in recorded.requests[since:]
        if f"/Task/{task_id}" in r.url
    ]


def test_our_subscription_watches_the_portals_changes_too(domain, tools):
    _, recorded, _, poller, _ = tools
    poller.run_once()  # the first round subscribes
    endpoint = f"{domain.app_url}/koppeltaal/notify"
    ours = [s for s in recorded.get(domain.fhir_base).search("Subscription", {"status": "active"})
            if s["channel"]["endpoint"].startswith(endpoint)]  # fmt: skip
    assert [s["criteria"] for s in ours] == [CRITERIA]
    assert {"ready", "on-hold", "cancelled"} <= set(CRITERIA.split("=", 1)[1].split(","))


def test_a_track_cancelled_in_the_portal_stops_the_programme_and_nothing_goes_back(domain, tools):
    engine, recorded, worker, poller, definitions = tools
    poller.run_once()  # subscribed; whatever the sandbox holds is behind us
    domain.notified.clear()
    task = domain.assign("pat-22", "waiting-list")
    assert domain.notified.wait(15), "the domain sent no notification of the new Task"
    poller.run_once()
    row = _row(engine, domain.fhir_base, task["id"])
    assert row is not None and row.local_task_key is None
    with Session(engine) as db:
        views = programme_views(db, definitions, fhir_base=domain.fhir_base, patient="pat-22")
    assert [v.track for v in views] == ["waiting-list"]  # the client's home offers it
    _deliver(worker)

    domain.notified.clear()
    _portal_sets(domain, task["id"], "cancelled")
    assert domain.notified.wait(15), "the domain sent no notification of the cancel"
    outcome = poller.run_once()[0]
    assert (outcome.state, outcome.why) == ("polled", "notified")
    assert outcome.result.portal == [f"Task/{task['id']}: stopped"]
    enrolment = _enrolment(engine, row.enrolment_key)
    assert enrolment.status == "revoked"
    with Session(engine) as db:
        views = programme_views(db, definitions, fhir_base=domain.fhir_base, patient="pat-22")
        reasons = set(_reasons(db, row.enrolment_key, "cancelled"))
    assert views == []  # the client's home no longer offers it
    assert reasons == {CANCELLED_REASON}
    assert _row(engine, domain.fhir_base, task["id"]).status == "cancelled"

    # Our stop, and a status we would send anyway (the launch's in-progress): neither is
    # even tried on the domain.
    before = len(recorded.requests)
    with Session(engine) as db, db.begin():
        queue_task_status(db, _row(engine, domain.fhir_base, task["id"]), "in-progress")
    _deliver(worker)
    assert _delivered(engine)
    assert _about_task(recorded, domain, task["id"], before) == []
    assert not [w for w in recorded.writes(domain.fhir_base) if w[0] == "PUT"]
    with Session(engine) as db:
        events = db.scalars(select(OutboxEvent.what)).all()
    assert any(f"Task/{task['id']} is cancelled: nothing sent" in e for e in events)
    with FhirClient(domain.fhir_base, token_source=kt_token_source(domain.info)) as client:
        assert client.read("Task", task["id"])["status"] == "cancelled"
    # What we did is on record at the domain: a receive AuditEvent about that version.
    about = f"Task/{task['id']}/_history/"
    received = [b for m, p, _, b in recorded.writes(domain.fhir_base)
                if p == "AuditEvent" and b["type"]["code"] == "receive"
                and b["entity"][0]["what"]["reference"].startswith(about)]  # fmt: skip
    assert len(received) == 1
    assert received[0]["outcomeDesc"] == "Task.status ready -> cancelled in the portal: stopped"

    # The next poll sees nothing new: the stop is not done twice.
    _later(poller)
    assert poller.run_once()[0].result.portal == []


def test_a_module_cancelled_in_the_portal_cancels_its_local_task_only(domain, tools):
    engine, recorded, worker, poller, _ = tools
    task = domain.assign("pat-23", "body-signals")
    poller.run_once()
    row = _row(engine, domain.fhir_base, task["id"])
    assert row.local_task_key is not None
    _deliver(worker)
    _portal_sets(domain, task["id"], "entered-in-error")
    _later(poller)  # no notification needed: the scheduled poll sees it as well
    assert poller.run_once()[0].result.portal == [f"Task/{task['id']}: cancelled"]
    with Session(engine) as db:
        local = db.get(TaskRow, row.local_task_key)
        assert (local.status, local.status_reason) == ("cancelled", CANCELLED_REASON)
    assert _enrolment(engine, row.enrolment_key).status == "active"  # the rest carries on
    before = len(recorded.requests)
    _deliver(worker)
    assert _delivered(engine)
    assert _about_task(recorded, domain, task["id"], before) == []
    assert not [w for w in recorded.writes(domain.fhir_base) if w[0] == "PUT"]


def test_on_hold_in_the_portal_pauses_the_programme_and_back_resumes_it(domain, tools):
    engine, recorded, worker, poller, definitions = tools
    task = domain.assign("pat-24", "waiting-list")
    poller.run_once()
    row = _row(engine, domain.fhir_base, task["id"])
    _deliver(worker)

    _portal_sets(domain, task["id"], "on-hold")
    _later(poller)
    assert poller.run_once()[0].result.portal == [f"Task/{task['id']}: paused"]
    enrolment = _enrolment(engine, row.enrolment_key)
    assert enrolment.status == "on-hold"
    with Session(engine) as db:
        held = _reasons(db, row.enrolment_key, "on-hold")
        views = programme_views(db, definitions, fhir_base=domain.fhir_base, patient="pat-24")
    assert held and set(held) == {HOLD_REASON}
    assert [(v.paused, v.due) for v in views] == [(True, ())]  # nothing due meanwhile
    _deliver(worker)  # our pause reaches the Task as it is: on hold already, no PUT

    _portal_sets(domain, task["id"], "in-progress")
    _later(poller)
    assert poller.run_once()[0].result.portal == [f"Task/{task['id']}: resumed"]
    assert _enrolment(engine, row.enrolment_key).status == "active"
    with Session(engine) as db:
        still_held = _reasons(db, row.enrolment_key, "on-hold")
    assert still_held == []
    _deliver(worker)
    assert _delivered(engine)
    # Never fought the portal: no PUT of ours, and the Task is where the portal put it.
    assert not [w for w in recorded.writes(domain.fhir_base) if w[0] == "PUT"]
    with FhirClient(domain.fhir_base, token_source=kt_token_source(domain.info)) as client:
        assert client.read("Task", task["id"])["status"] == "in-progress"


def test_our_own_status_change_is_not_taken_for_the_portals(domain, tools):
    engine, recorded, worker, poller, definitions = tools
    task = domain.assign("pat-02", "waiting-list")
    poller.run_once()
    row = _row(engine, domain.fhir_base, task["id"])
    _deliver(worker)
    # The care professional pauses: our PUT puts the KT Task on hold.
    with Session(engine) as db, db.begin():
        pause(db, row.enrolment_key, by="Practitioner/prac-1", reason="Vakantie")
    _deliver(worker)
    puts = [w for w in recorded.writes(domain.fhir_base) if w[0] == "PUT"]
    assert [(p[1], p[3]["status"]) for p in puts] == [(f"Task/{task['id']}", "on-hold")]
    mine = _row(engine, domain.fhir_base, task["id"])
    with FhirClient(domain.fhir_base, token_source=kt_token_source(domain.info)) as client:
        server = client.read("Task", task["id"])
    assert (mine.status, mine.version_id) == ("on-hold", server["meta"]["versionId"])

    # The poll reads that version: ours, recorded, so no portal change.
    _later(poller)
    assert poller.run_once()[0].result.portal == []
    assert _enrolment(engine, row.enrolment_key).status == "on-hold"

    # Even read before the outbox recorded it (the row as it was before our PUT), our own
    # on-hold finds the programme paused already: noted, nothing done.
    with Session(engine) as db, db.begin():
        stale = db.get(type(mine), (mine.fhir_base, mine.task_id))
        stale.status, stale.version_id = "ready", "0"
        change = follow_portal(db, definitions, stale, server, now=datetime.now(UTC))
    assert change is not None and change.action == "noted"
    assert _enrolment(engine, row.enrolment_key).status == "on-hold"

    # The portal puts it back in progress during the care professional's own pause: that
    # pause is not the portal's to end, and we do not fight the portal's status either.
    _portal_sets(domain, task["id"], "in-progress")
    _later(poller)
    assert poller.run_once()[0].result.portal == [f"Task/{task['id']}: noted"]
    assert _enrolment(engine, row.enrolment_key).status == "on-hold"
    before = len(recorded.requests)
    _deliver(worker)
    assert _delivered(engine)
    assert [m for m, _ in _about_task(recorded, domain, task["id"], before)
            if m == "PUT"] == []  # fmt: skip


def test_a_client_no_longer_finds_at_home_what_the_portal_cancelled(
    kt_sandbox, published, tmp_path, database_url, resources
):
    # The client launched from the portal (the app at its registered address) and sees the
    # track at home; the portal cancels it; the next poll stops it; home no longer has it.
    settings = launch_settings(kt_sandbox, tmp_path, database_url=database_url)
    app = create_app(settings)
    engine = app.extensions["fhir_burnout"]["engine"]
    clients = kt_clients(settings)
    requests_sent: list = []

    def hook(response, *args, **kwargs):
        requests_sent.append(response.request)

    client_for = _recording(clients, hook)
    worker = Worker(engine, client_for, deliver_for=deliver_for(settings, engine, client_for))
    feed = KoppeltaalFeed(Definitions.from_resources(resources),
                          [(kt_sandbox.fhir_base, "Organization/practice-1")])  # fmt: skip
    poller = Poller(engine, client_for, feed)
    _start_after_what_is_there(engine, SimpleNamespace(fhir_base=kt_sandbox.fhir_base,
                                                       info=kt_sandbox))  # fmt: skip
    try:
        task = launch_assign(kt_sandbox, published[AD_BASE + "track-waiting-list"], "pat-09")
        browser = app.test_client()
        assert (
            path_of(launch(browser, launch_form(kt_sandbox, task["id"])).headers["Location"])
            == "/"
        )
        assert WAITING_LIST in text_of(browser.get("/", headers={"Accept-Language": "nl"}))
        _deliver(worker)  # the launch's in-progress: our own PUT
        puts = [r for r in requests_sent if r.method == "PUT"]
        assert [r.url.rsplit("/", 1)[1] for r in puts] == [task["id"]]

        _portal_sets(SimpleNamespace(fhir_base=kt_sandbox.fhir_base, info=kt_sandbox),
                     task["id"], "cancelled")  # fmt: skip
        assert poller.run_once()[0].result.portal == [f"Task/{task['id']}: stopped"]
        home = browser.get("/", headers={"Accept-Language": "nl"})
        # Nothing left to do; what was done stays readable (issue 20: "Mijn programma").
        assert home.status_code == 200 and "Je programma is afgesloten." in text_of(home)
        assert "Nu te doen" not in text_of(home) and "Deze week" not in text_of(home)

        before = len(requests_sent)
        _deliver(worker)  # the stop: nothing of it goes to the domain
        assert _delivered(engine)
        assert not [r for r in requests_sent[before:] if f"/Task/{task['id']}" in r.url]
    finally:
        clients.close()
        engine.dispose()


def _recording(clients: EhrClients, hook):
    def client_for(fhir_base: str) -> FhirClient:
        client = clients.get(fhir_base)
        if hook not in client.session.hooks["response"]:
            client.session.hooks["response"].append(hook)
        return client

    return client_for
