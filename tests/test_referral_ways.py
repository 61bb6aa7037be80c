"""One referral, seen all three ways: a Subscription notification, the reconciliation
poll, and a referral system's push. Against the sandbox EHR, with the app on a real port
the sandbox notifies, on both databases: the patient is enrolled once, the referral is
recorded once, and the EHR does not get the referral a second time from us."""

from __future__ import annotations

import threading
import uuid

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

from fhir_burnout.integration import Poller
from fhir_burnout.referral import (
    TRIAGE,
    WAITING_LIST,
    ReferralFeed,
    ReferralRow,
    reconcile,
    referral_criteria,
    status_key,
    subscribe_referrals,
)
from fhir_burnout.sync import KEY_SYSTEM, Worker, queue_status
from fhir_burnout.web import create_app
from fhir_burnout.workflow import Definitions, EnrolmentRow

from .referrals import push, settings_for, token

PRACTICE = "Organization/practice-1"
PATIENT = "pat-23"


@pytest.fixture(scope="module")
def definitions(resources):
    return Definitions.from_resources(resources)


@pytest.fixture
def served(sandbox, tmp_path, database_url):
    """The app with the sandbox's practice, served on a real port the sandbox can notify;
    an Event set by each notification it answers."""
    holder: dict = {"notified": threading.Event()}

    def wsgi(environ, start_response):
        body = holder["app"](environ, start_response)
        if environ["PATH_INFO"] == "/referrals/notify":
            holder["notified"].set()
        return body

    server = make_server("127.0.0.1", 0, wsgi, threaded=True)
    app_url = f"http://127.0.0.1:{server.server_port}"
    # The app's base_url stays the one the sandbox issues API tokens for (its --app-url):
    # the pushes below carry a token meant for it; the notifications come to app_url.
    settings = settings_for(sandbox, tmp_path, database_url, triage=True)
    holder["app"] = create_app(settings)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield holder["app"], app_url, holder["notified"]
    finally:
        server.shutdown()
        thread.join(timeout=10)
        holder["app"].extensions["fhir_burnout"]["engine"].dispose()


def test_one_referral_seen_three_ways_waits_for_triage_once_and_reaches_the_ehr_once(
    served, sandbox, fhir, definitions
):
    app, app_url, notified = served
    state = app.extensions["fhir_burnout"]
    engine, secret = state["engine"], state["settings"].secret_key
    done = subscribe_referrals(fhir, base_url=app_url, secret_key=secret, practice=PRACTICE)
    try:
        number = f"WAYS-{uuid.uuid4().hex[:12]}"
        referral = {
            "resourceType": "ServiceRequest",
            "identifier": [{"system": "https://verwijs.example/referral", "value": number}],
            "status": "active",
            "intent": "order",
            "subject": {"reference": f"Patient/{PATIENT}"},
            "performer": [{"reference": PRACTICE}],
        }
        on_ehr = fhir.create(referral)  # the referrer writes it to the EHR ...
        assert notified.wait(15), "the sandbox sent no notification"
        # ... and pushes the same referral to us as well, before any poll has run.
        pushed = push(app.test_client(), token(sandbox), referral)
        assert pushed.status_code == 201, pushed.get_data(as_text=True)
        assert pushed.get_json()["subject"] == {"reference": f"Patient/{PATIENT}"}
        # The notification's poll, then the scheduled one, see it again.
        poller = Poller(
            engine,
            lambda _base: fhir,
            ReferralFeed(definitions, [(sandbox.fhir_base, PRACTICE)]),
            interval=0,
        )
        [outcome] = poller.run_once()
        assert outcome.state == "polled"
        again = reconcile(engine, fhir, definitions, criteria=referral_criteria(PRACTICE),
                          practice=PRACTICE)  # fmt: skip
        assert again.new == 0
        assert push(app.test_client(), token(sandbox), referral).status_code == 200
        with Session(engine) as db:
            [row] = db.scalars(
                select(ReferralRow).where(ReferralRow.identifier_value == number)
            ).all()
            assert row.seen_by == "post"
            assert row.service_request == f"ServiceRequest/{on_ehr['id']}"
            enrolled = db.scalar(
                select(func.count())
                .select_from(EnrolmentRow)
                .where(EnrolmentRow.patient == PATIENT, EnrolmentRow.track == WAITING_LIST)
            )
            assert (row.state, enrolled) == (TRIAGE, 0)  # nobody enrolled before triage
            key = row.key
        worker = Worker(engine, lambda _base: fhir, owner="ways")
        while worker.run_once():
            pass
        assert queue_status(engine).dead == 0
        copies = list(
            fhir.search(
                "ServiceRequest", {"identifier": f"https://verwijs.example/referral|{number}"}
            )
        )
        assert [c["id"] for c in copies] == [on_ehr["id"]]  # not written again by us
        [told] = fhir.search("Task", {"identifier": f"{KEY_SYSTEM}|{status_key(key)}"})
        assert told["focus"] == {"reference": f"ServiceRequest/{on_ehr['id']}"}
        assert (told["status"], told["businessStatus"]["text"]) == (
            "received", "Aangemeld, nog niet beoordeeld",
        )  # fmt: skip
    finally:
        current = fhir.read("Subscription", done.subscription.split("/")[1])
        fhir.update({**current, "status": "off"})
