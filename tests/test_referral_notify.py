"""Referrals by Subscription notification, and the reconciliation poll on a schedule:
against the sandbox EHR, with the app on a real port the sandbox notifies, on both
databases."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

from fhir_burnout.cli import main
from fhir_burnout.db import create_db_engine, upgrade
from fhir_burnout.fhir import FhirClient
from fhir_burnout.integration import REFERRALS, Poller, PollRow, channel_id, subscribe, want_poll
from fhir_burnout.referral import (
    REFERRAL_CHANNEL,
    REFERRAL_REASON,
    WAITING_LIST,
    ReferralFeed,
    ReferralRow,
    referral_criteria,
    subscribe_referrals,
    subscription_criteria,
)
from fhir_burnout.settings import Settings
from fhir_burnout.web import create_app
from fhir_burnout.workflow import Definitions, EnrolmentRow

from .conftest import PROMISE, configured_ehr
from .outbox_load import postgres_schema, worker_config

PRACTICE = "Organization/practice-1"
REFERRAL_SYSTEM = "https://verwijs.example/referral"
SECRET = "notify-tests-secret"
WAIT = 15.0  # seconds a notification may take to arrive (the sandbox sends within ms)


@pytest.fixture(scope="module")
def definitions(resources):
    return Definitions.from_resources(resources)


class Notified:
    """The app on a real port (the sandbox can reach it), and an Event per notification."""

    def __init__(self, app, app_url, fhir_base):
        self.app, self.app_url, self.fhir_base = app, app_url, fhir_base
        self.engine = app.extensions["fhir_burnout"]["engine"]
        self.answered = threading.Event()
        self.statuses: list[str] = []

    @property
    def endpoint(self) -> str:
        return REFERRAL_CHANNEL.endpoint(self.app_url, self.fhir_base)

    @property
    def token(self) -> str:
        return REFERRAL_CHANNEL.token(SECRET, self.fhir_base)

    def wanted_at(self, fhir_base=None):
        with Session(self.engine) as db:
            row = db.get(PollRow, ((fhir_base or self.fhir_base).rstrip("/"), REFERRALS))
            return None if row is None else row.wanted_at


def settings_for(fhir_base, folder, database_url, app_url, *extra_bases):
    bases = (fhir_base.rstrip("/"), *extra_bases)
    return Settings(
        base_url=app_url,
        database_url=database_url,
        secret_key=SECRET,
        token_key=Fernet.generate_key().decode(),
        ehrs=tuple(
            configured_ehr(b, worker_client_id="fhir-burnout-worker", practice=PRACTICE)
            for b in bases
        ),
        keys_dir=folder / "keys",
        safety_promise=PROMISE,
    )


@pytest.fixture
def notified(sandbox, tmp_path, database_url):
    """The app, trusting the sandbox with practice-1, served on a real port; each answered
    notification sets ``answered``."""
    holder = {}

    def wsgi(environ, start_response):
        def start(status, headers, *rest):
            if environ["PATH_INFO"] == "/referrals/notify":
                holder["notified"].statuses.append(status)
            return start_response(status, headers, *rest)

        body = holder["app"](environ, start)
        if environ["PATH_INFO"] == "/referrals/notify":
            holder["notified"].answered.set()  # the answer is made: the wish is committed
        return body

    server = make_server("127.0.0.1", 0, wsgi, threaded=True)
    app_url = f"http://127.0.0.1:{server.server_port}"
    holder["app"] = create_app(settings_for(sandbox.fhir_base, tmp_path, database_url, app_url))
    holder["notified"] = Notified(holder["app"], app_url, sandbox.fhir_base)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield holder["notified"]
    finally:
        server.shutdown()
        thread.join(timeout=10)
        holder["app"].extensions["fhir_burnout"]["engine"].dispose()


@pytest.fixture
def subscriptions(fhir):
    """Subscriptions a test made, turned off afterwards: the shared sandbox must not go on
    notifying an app that has stopped."""
    made: list[str] = []
    yield made
    for reference in made:
        current = fhir.read("Subscription", reference.split("/")[1])
        if current["status"] != "off":
            fhir.update({**current, "status": "off"})


def refer(fhir, patient, practice=PRACTICE, status="active"):
    """A new referral on the sandbox EHR, with an identifier of its own."""
    number = f"NOTIFY-{uuid.uuid4().hex[:12]}"
    return fhir.create(
        {
            "resourceType": "ServiceRequest",
            "identifier": [{"system": REFERRAL_SYSTEM, "value": number}],
            "status": status,
            "intent": "order",
            "subject": {"reference": f"Patient/{patient}"},
            "performer": [{"reference": practice}],
        }
    )


def taken_in(engine, service_request):
    value = service_request["identifier"][0]["value"]
    with Session(engine) as db:
        return db.scalars(select(ReferralRow).where(ReferralRow.identifier_value == value)).all()


def waiting_list_enrolments(engine, patient):
    with Session(engine) as db:
        return db.scalar(
            select(func.count())
            .select_from(EnrolmentRow)
            .where(EnrolmentRow.patient == patient, EnrolmentRow.track == WAITING_LIST)
        )


class Clock:
    def __init__(self, start=None):
        self.now = start or datetime.now(UTC)

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += timedelta(seconds=seconds)


def closed_port_url():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/fhir"


def wish(engine, fhir_base, at=None):
    """What the notification endpoint records: a poll of ``fhir_base`` is wanted."""
    with Session(engine) as db, db.begin():
        want_poll(db, fhir_base, REFERRALS, now=at)


# --- a referral by Subscription, end to end ----------------------------------------------


def test_a_referral_the_ehr_notifies_us_of_is_taken_in_once(
    notified, fhir, subscriptions, definitions
):
    done = subscribe_referrals(fhir, base_url=notified.app_url, secret_key=SECRET,
                               practice=PRACTICE)  # fmt: skip
    subscriptions.append(done.subscription)
    assert (done.action, done.status) == ("created", "active")
    assert done.endpoint == notified.endpoint
    assert done.criteria == "ServiceRequest?performer=Organization/practice-1"
    assert notified.wanted_at() is None
    request = refer(fhir, "pat-26")
    assert notified.answered.wait(WAIT), "the sandbox sent no notification"
    assert notified.statuses[0].startswith("200")
    assert notified.wanted_at() is not None
    # interval 0: the poll runs only because the notification asked for it
    poller = Poller(
        notified.engine,
        lambda _base: fhir,
        ReferralFeed(definitions, [(notified.fhir_base, PRACTICE)]),
        interval=0,
    )
    [outcome] = poller.run_once()
    assert (outcome.state, outcome.why) == ("polled", "notified")
    [row] = taken_in(notified.engine, request)
    assert row.seen_by == "subscription"
    assert row.service_request == f"ServiceRequest/{request['id']}"
    assert row.state == "triage"  # it waits for a care professional: nobody enrolled yet
    assert waiting_list_enrolments(notified.engine, "pat-26") == 0
    # The wish is answered; nothing else asks for a poll.
    assert notified.wanted_at() is None
    assert [o.state for o in poller.run_once()] == ["idle"]
    # The EHR tells us again (the referral changed): taken in still once.
    notified.answered.clear()
    fhir.update({**fhir.read("ServiceRequest", request["id"]), "priority": "urgent"})
    assert notified.answered.wait(WAIT)
    assert [o.state for o in poller.run_once()] == ["polled"]
    assert len(taken_in(notified.engine, request)) == 1
    assert waiting_list_enrolments(notified.engine, "pat-26") == 0


def test_subscribing_twice_keeps_one_subscription_and_revives_one_in_error(
    sandbox, fhir, subscriptions
):
    practice = f"Organization/practice-{uuid.uuid4()}"  # only this test's referrals
    endpoint = REFERRAL_CHANNEL.endpoint(
        closed_port_url().removesuffix("/fhir"), sandbox.fhir_base
    )
    criteria = subscription_criteria(referral_criteria(practice))

    def subscribe_with(token):
        return subscribe(fhir, endpoint, token, criteria, REFERRAL_REASON)

    first = subscribe_with("token-1")
    subscriptions.append(first.subscription)
    again = subscribe_with("token-1")
    assert (first.action, again.action) == ("created", "unchanged")
    assert again.subscription == first.subscription
    [stored] = fhir.search("Subscription", {"url": endpoint})
    assert stored["channel"] == {
        "type": "rest-hook", "endpoint": endpoint, "header": ["Authorization: Bearer token-1"],
    }  # fmt: skip
    assert "payload" not in stored["channel"] and stored["reason"]
    # Nobody listens at the endpoint: after three attempts the EHR puts it in error.
    refer(fhir, "pat-27", practice=practice)
    deadline = time.monotonic() + WAIT
    while fhir.read("Subscription", stored["id"])["status"] != "error":
        assert time.monotonic() < deadline, "the Subscription never went to error"
        time.sleep(0.1)
    revived = subscribe_with("token-1")
    assert (revived.action, revived.was, revived.status) == ("reactivated", "error", "active")
    assert revived.subscription == first.subscription
    # A new secret (another token): the header is brought up to date, still one.
    renewed = subscribe_with("token-2")
    assert (renewed.action, renewed.status) == ("updated", "active")
    [stored] = fhir.search("Subscription", {"url": endpoint})
    assert stored["channel"]["header"] == ["Authorization: Bearer token-2"]
    assert "error" not in stored


def test_the_subscribe_command_says_what_it_did_and_is_idempotent(
    runner, sandbox, tmp_path, fhir, subscriptions
):
    practice = f"Organization/practice-{uuid.uuid4()}"
    config = worker_config(tmp_path, sandbox, f"sqlite:///{tmp_path / 'cli.db'}",
                           f"practice = {json.dumps(practice)}")  # fmt: skip
    first = runner.invoke(main, ["referrals", "subscribe", "--config", str(config)])
    assert first.exit_code == 0, first.output
    assert "created Subscription/" in first.output
    assert f"ServiceRequest?performer={practice}" in first.output
    endpoint = REFERRAL_CHANNEL.endpoint("http://127.0.0.1:8000", sandbox.fhir_base)
    assert endpoint in first.output
    [stored] = [
        s
        for s in fhir.search("Subscription", {"url": endpoint})
        if s["criteria"] == f"ServiceRequest?performer={practice}"
    ]
    subscriptions.append(f"Subscription/{stored['id']}")
    token = REFERRAL_CHANNEL.token("outbox-tests", sandbox.fhir_base)
    assert stored["channel"]["header"] == [f"Authorization: Bearer {token}"]
    assert token not in first.output
    second = runner.invoke(main, ["referrals", "subscribe", "--config", str(config)])
    assert second.exit_code == 0 and f"unchanged Subscription/{stored['id']}" in second.output
    ours = [
        s
        for s in fhir.search("Subscription", {"url": endpoint})
        if s["criteria"] == f"ServiceRequest?performer={practice}"
    ]
    assert len(ours) == 1


def test_the_subscribe_command_names_what_is_missing(runner, sandbox, tmp_path):
    config = worker_config(tmp_path, sandbox, f"sqlite:///{tmp_path / 'cli.db'}")
    result = runner.invoke(main, ["referrals", "subscribe", "--config", str(config)])
    assert result.exit_code == 1 and "no [[ehr]] with a practice" in result.output


# --- the notification endpoint --------------------------------------------------------


def _authorization(kind, fhir_base):
    return {
        "missing": None,
        "empty": "",
        "no token": "Bearer ",
        "a wrong token": "Bearer not-the-token",
        "another scheme": "Basic " + REFERRAL_CHANNEL.token(SECRET, fhir_base),
        "another secret": "Bearer " + REFERRAL_CHANNEL.token("another-secret", fhir_base),
        "another EHR's": "Bearer "
        + REFERRAL_CHANNEL.token(SECRET, "http://another-ehr.example/fhir"),
    }[kind]


@pytest.mark.parametrize(
    "kind",
    ["missing", "empty", "no token", "a wrong token", "another scheme", "another secret",
     "another EHR's"],
)  # fmt: skip
def test_a_notification_without_its_token_is_refused_and_asks_for_nothing(notified, kind):
    authorization = _authorization(kind, notified.fhir_base)
    headers = {} if authorization is None else {"Authorization": authorization}
    answer = requests.post(notified.endpoint, headers=headers, timeout=10)
    assert answer.status_code == 401
    assert answer.headers["Content-Type"].startswith("application/fhir+json")
    outcome = answer.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "login"
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert notified.wanted_at() is None


def test_a_notification_for_an_unknown_ehr_is_not_found(notified):
    for query in ("?ehr=0123456789abcdef", ""):
        answer = requests.post(
            f"{notified.app_url}/referrals/notify{query}",
            headers={"Authorization": f"Bearer {notified.token}"},
            timeout=10,
        )
        assert answer.status_code == 404
        assert answer.json()["issue"][0]["code"] == "not-found"
    assert notified.wanted_at() is None


@pytest.mark.parametrize(
    "body",
    [b"", b'{"resourceType": "ServiceRequest", "id": "sr-1"}', b"\x00not json at all"],
    ids=["empty", "an id", "garbage"],
)
def test_a_notification_asks_for_a_poll_whatever_its_body(notified, body):
    answer = requests.post(
        notified.endpoint,
        data=body,
        headers={"Authorization": f"Bearer {notified.token}"},
        timeout=10,
    )
    assert answer.status_code == 200
    assert answer.json()["resourceType"] == "OperationOutcome"
    assert notified.wanted_at() is not None
    with Session(notified.engine) as db:
        assert db.scalar(select(func.count()).select_from(ReferralRow)) == 0  # nothing read


# --- the poller ------------------------------------------------------------------------


def test_a_notification_during_a_poll_asks_for_another_poll(notified, fhir, definitions):
    practice = f"Organization/practice-{uuid.uuid4()}"
    first = refer(fhir, "pat-28", practice=practice)
    later = {}

    def notify_during_the_search(response, *args, **kwargs):
        # The EHR takes a new referral and notifies us while our search is on its way back.
        if "ServiceRequest" in response.url and not later:
            later["request"] = refer(fhir, "pat-29", practice=practice)
            answer = requests.post(
                notified.endpoint, headers={"Authorization": f"Bearer {notified.token}"},
                timeout=10,
            )  # fmt: skip
            later["status"] = answer.status_code
        return response

    session = requests.Session()
    session.hooks["response"].append(notify_during_the_search)
    slow = FhirClient(notified.fhir_base, session=session, token_source=fhir.token_source)
    poller = Poller(
        notified.engine,
        lambda _base: slow,
        ReferralFeed(definitions, [(notified.fhir_base, practice)]),
        interval=0,
    )
    wish(notified.engine, notified.fhir_base.rstrip("/"))
    before = notified.wanted_at()
    [outcome] = poller.run_once()
    assert outcome.state == "polled" and later["status"] == 200
    assert outcome.result.new == 1  # the first referral; the search had been answered
    assert len(taken_in(notified.engine, first)) == 1
    assert taken_in(notified.engine, later["request"]) == []
    # The notification that came during the poll is still there, and brings the second.
    after = notified.wanted_at()
    assert after is not None and after != before
    [again] = poller.run_once()
    assert (again.state, again.why) == ("polled", "notified")
    assert len(taken_in(notified.engine, later["request"])) == 1
    assert notified.wanted_at() is None
    assert [o.state for o in poller.run_once()] == ["idle"]


@pytest.mark.parametrize("interval", [300.0, 60.0])
def test_without_notifications_the_poll_runs_when_the_interval_has_passed(
    engine, sandbox, fhir, definitions, interval
):
    practice = f"Organization/practice-{uuid.uuid4()}"
    clock = Clock()
    poller = Poller(
        engine,
        lambda _base: fhir,
        ReferralFeed(definitions, [(sandbox.fhir_base, practice)]),
        interval=interval,
        clock=clock,
    )
    first = refer(fhir, "pat-30", practice=practice)
    [outcome] = poller.run_once()
    assert (outcome.state, outcome.why) == ("polled", "first")
    assert len(taken_in(engine, first)) == 1
    second = refer(fhir, "pat-23", practice=practice)
    clock.advance(interval - 1)
    assert [o.state for o in poller.run_once()] == ["idle"]
    assert taken_in(engine, second) == []
    clock.advance(1)
    [outcome] = poller.run_once()
    assert (outcome.state, outcome.why, outcome.result.new) == ("polled", "interval", 1)
    [row] = taken_in(engine, second)
    assert row.seen_by == "reconciliation"
    assert [o.state for o in poller.run_once()] == ["idle"]


def test_with_the_interval_off_only_a_notification_starts_a_poll(
    engine, sandbox, fhir, definitions
):
    practice = f"Organization/practice-{uuid.uuid4()}"
    clock = Clock()
    poller = Poller(
        engine,
        lambda _base: fhir,
        ReferralFeed(definitions, [(sandbox.fhir_base, practice)]),
        interval=0,
        clock=clock,
    )
    request = refer(fhir, "pat-24", practice=practice)
    clock.advance(86400)
    assert [o.state for o in poller.run_once()] == ["idle"]
    assert taken_in(engine, request) == []
    wish(engine, sandbox.fhir_base.rstrip("/"))
    assert [o.why for o in poller.run_once()] == ["notified"]
    assert len(taken_in(engine, request)) == 1


def test_when_the_ehr_is_down_the_poll_fails_and_the_wish_stays(engine, definitions, caplog):
    down = closed_port_url()
    clock = Clock()
    with FhirClient(down, token="secret-token-never-logged") as client:
        poller = Poller(
            engine,
            lambda _base: client,
            ReferralFeed(definitions, [(down, PRACTICE)]),
            interval=300,
            clock=clock,
            retry_base=5,
            retry_cap=60,
        )
        wished = datetime.now(UTC).replace(microsecond=0)
        wish(engine, down, wished)
        with caplog.at_level(logging.WARNING, logger="fhir_burnout.integration"):
            [outcome] = poller.run_once()
        assert (outcome.state, outcome.error) == ("failed", "FhirConnectionError")
        assert "failed (FhirConnectionError)" in caplog.text
        assert "secret-token" not in caplog.text and "performer" not in caplog.text
        assert wish_of(engine, down) == wished
        with Session(engine) as db:
            row = db.get(PollRow, (down, REFERRALS))
            assert row.succeeded_at is None and row.seen_until is None
        # Tried again after a short wait, not at once; the wait grows while it stays down.
        assert [o.state for o in poller.run_once()] == ["waiting"]
        clock.advance(5)
        assert [o.state for o in poller.run_once()] == ["failed"]
        clock.advance(5)
        assert [o.state for o in poller.run_once()] == ["waiting"]
        clock.advance(5)
        assert [o.state for o in poller.run_once()] == ["failed"]

        # The loop itself carries on: a few rounds in a thread, then a clean stop.
        rounds = threading.Event()
        seen = []

        def ticking():
            seen.append(1)
            if len(seen) >= 5:
                rounds.set()
            clock.advance(60)
            return clock.now

        poller.clock = ticking
        stop = threading.Event()
        runner = threading.Thread(target=poller.run, args=(stop,), kwargs={"idle": 0.01})
        runner.start()
        assert rounds.wait(WAIT)
        stop.set()
        runner.join(timeout=WAIT)
        assert not runner.is_alive()
        assert wish_of(engine, down) == wished


def wish_of(engine, fhir_base):
    with Session(engine) as db:
        value = db.get(PollRow, (fhir_base, REFERRALS)).wanted_at
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value


@pytest.fixture
def postgres_engine():
    with postgres_schema() as url:
        engine = create_db_engine(url)
        upgrade(engine)
        yield engine
        engine.dispose()


def test_two_processes_never_poll_the_same_ehr_at_once_on_postgresql(
    postgres_engine, sandbox, fhir, definitions
):
    practice = f"Organization/practice-{uuid.uuid4()}"
    refer(fhir, "pat-25", practice=practice)
    other = Poller(
        postgres_engine,
        lambda _base: fhir,
        ReferralFeed(definitions, [(sandbox.fhir_base, practice)]),
    )
    meanwhile = []

    def the_other_process_tries(response, *args, **kwargs):
        if "ServiceRequest" in response.url and not meanwhile:
            meanwhile.extend(other.run_once())
        return response

    session = requests.Session()
    session.hooks["response"].append(the_other_process_tries)
    with FhirClient(sandbox.fhir_base, session=session, token_source=fhir.token_source) as slow:
        poller = Poller(
            postgres_engine,
            lambda _base: slow,
            ReferralFeed(definitions, [(sandbox.fhir_base, practice)]),
        )
        [outcome] = poller.run_once()
    assert outcome.state == "polled" and outcome.result.new == 1
    assert [o.state for o in meanwhile] == ["busy"]
    # Once the poll is over, the other may poll (nothing due now: the poll just succeeded).
    assert [o.state for o in other.run_once()] == ["idle"]


# --- fhir-burnout worker runs the poll ----------------------------------------------------


def test_the_worker_command_takes_in_referrals_on_its_own(sandbox, fhir, tmp_path):
    practice = f"Organization/practice-{uuid.uuid4()}"
    database = f"sqlite:///{tmp_path / 'worker.db'}"
    config = worker_config(tmp_path, sandbox, database, f"practice = {json.dumps(practice)}")
    request = refer(fhir, "pat-21", practice=practice)
    command = [str(Path(sys.executable).with_name("fhir-burnout")), "worker", "--config"]
    worker = subprocess.Popen(
        [*command, str(config), "--idle", "0.1"],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    engine = create_db_engine(database)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                rows = taken_in(engine, request)
            except Exception:  # the worker has not made the tables yet
                rows = []
            if rows:
                break
            assert worker.poll() is None, worker.stderr.read() if worker.stderr else ""
            assert time.monotonic() < deadline, "the worker took nothing in"
            time.sleep(0.1)
        assert rows[0].seen_by == "reconciliation"
    finally:
        worker.send_signal(signal.SIGTERM)
        _, errors = worker.communicate(timeout=30)
        engine.dispose()
    assert worker.returncode == 0, errors
    assert "polling the referrals of 1 EHR(s) when notified and every 300 s" in errors


def test_the_poll_interval_is_read_from_the_config(tmp_path):
    base = {"base_url": "http://app", "secret_key": "s", "token_key": "t"}
    assert Settings.from_mapping(base, base_dir=tmp_path, env={}).referral_poll_seconds == 300
    short = {**base, "referral_poll_seconds": 30}
    assert Settings.from_mapping(short, base_dir=tmp_path, env={}).referral_poll_seconds == 30
    for bad in (-1, "often", True):
        with pytest.raises(ValueError, match="referral_poll_seconds"):
            Settings.from_mapping({**base, "referral_poll_seconds": bad}, env={})


def test_the_notify_url_names_the_ehr_stably():
    assert channel_id("http://ehr.example/fhir/") == channel_id("http://ehr.example/fhir")
    assert channel_id("http://ehr.example/fhir") != channel_id("http://other.example/fhir")
    assert REFERRAL_CHANNEL.endpoint("https://app.example/", "http://ehr.example/fhir") == (
        f"https://app.example/referrals/notify?ehr={channel_id('http://ehr.example/fhir')}"
    )
