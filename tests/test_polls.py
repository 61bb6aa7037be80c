"""The integration skeleton's polls without an EHR that answers: which feeds each configured
EHR has, and the notification channels' ids and tokens, which EHRs hold in their
Subscriptions and so must never change."""

from __future__ import annotations

import socket

import pytest
from cryptography.fernet import Fernet

from fhir_burnout.db import create_db_engine, upgrade
from fhir_burnout.fhir import FhirClient
from fhir_burnout.integration import (
    KOPPELTAAL_TASKS,
    REFERRALS,
    Poller,
    Watched,
    channel_id,
    watched,
)
from fhir_burnout.koppeltaal import KOPPELTAAL_CHANNEL, KoppeltaalFeed
from fhir_burnout.referral import REFERRAL_CHANNEL, ReferralFeed
from fhir_burnout.settings import Settings
from fhir_burnout.web import create_app
from fhir_burnout.workflow import Definitions

from .conftest import PROMISE, configured_ehr

PRACTICE = "Organization/practice-1"


def _nowhere() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}/fhir"


@pytest.fixture
def three_ehrs(tmp_path):
    """A SMART EHR with a practice, one without, and a Koppeltaal domain with a practice
    (none of them answers)."""
    smart, bare, domain = _nowhere(), _nowhere() + "/bare", _nowhere() + "/kt"
    settings = Settings(
        base_url="http://app.example",
        database_url=f"sqlite:///{tmp_path / 'app.db'}",
        secret_key="polls-secret",
        token_key=Fernet.generate_key().decode(),
        ehrs=(configured_ehr(smart, worker_client_id="worker", practice=PRACTICE, triage=False),
              configured_ehr(bare, worker_client_id="worker"),
              configured_ehr(domain, "kt-app", practice=PRACTICE, mode="koppeltaal")),
        keys_dir=tmp_path / "keys",
        safety_promise=PROMISE,
    )  # fmt: skip
    return settings, smart, domain


def test_a_koppeltaal_domain_gets_no_referral_poll(three_ehrs, resources, tmp_path, caplog):
    """A KT2 server holds no ServiceRequests: polling it for referrals could only fail and
    retry for ever. Its Tasks are its one feed; a SMART EHR without a practice has none."""
    settings, smart, domain = three_ehrs
    assert watched(settings) == [
        Watched(smart, REFERRALS, PRACTICE, "worker", triage=False),
        Watched(domain, KOPPELTAAL_TASKS, PRACTICE, "kt-app"),
    ]
    definitions = Definitions.from_resources(resources)
    referrals = ReferralFeed.from_settings(definitions, settings)
    tasks = KoppeltaalFeed.from_settings(definitions, settings)
    assert (referrals.ehrs, referrals.auto_enrol, tasks.ehrs) == ((smart,), {smart}, (domain,))
    engine = create_db_engine(settings.database_url)
    upgrade(engine)
    clients: dict[str, FhirClient] = {}
    poller = Poller(engine, lambda base: clients.setdefault(base, FhirClient(base)),
                    referrals, tasks)  # fmt: skip
    outcomes = poller.run_once()
    assert [(o.feed, o.fhir_base, o.state) for o in outcomes] == [
        (REFERRALS, smart, "failed"), (KOPPELTAAL_TASKS, domain, "failed"),
    ]  # fmt: skip
    for client in clients.values():
        client.close()
    engine.dispose()
    # Nor does its referral notification ask for anything: no feed of it has that id.
    app = create_app(settings)
    token = REFERRAL_CHANNEL.token(settings.secret_key, domain)
    answer = app.test_client().post(
        f"/referrals/notify?ehr={channel_id(domain)}", headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 404
    app.extensions["fhir_burnout"]["engine"].dispose()


def test_channel_ids_and_tokens_stay_what_existing_subscriptions_hold():
    """The values before the channel helper was shared (issue 18): an EHR that holds a
    Subscription with these keeps notifying us."""
    base = "http://ehr.example/fhir/"
    assert channel_id(base) == channel_id(base.rstrip("/")) == "9eaa33014ace4cc6"
    assert REFERRAL_CHANNEL.token("s3cret", base) == "TFAe40YDRYicp0R-7ZJNmXzFjrwTjo5bE6ma-eszwmg"
    assert KOPPELTAAL_CHANNEL.token("s3cret", base) == (
        "zD2g5fC1e5oEGyilepHM_lNzqlaAOMpGFtg_ppp-k4c"
    )
    assert REFERRAL_CHANNEL.endpoint("https://app.example/", base) == (
        "https://app.example/referrals/notify?ehr=9eaa33014ace4cc6"
    )
    assert KOPPELTAAL_CHANNEL.endpoint("https://app.example", base) == (
        "https://app.example/koppeltaal/notify?ehr=9eaa33014ace4cc6"
    )


@pytest.mark.parametrize(
    ("channel", "header", "ok"),
    [
        (REFERRAL_CHANNEL, "Bearer {referral}", True),
        (REFERRAL_CHANNEL, "bearer  {referral} ", True),
        (REFERRAL_CHANNEL, "Bearer {koppeltaal}", False),  # the other feed's token
        (KOPPELTAAL_CHANNEL, "Bearer {referral}", False),
        (KOPPELTAAL_CHANNEL, "Bearer {koppeltaal}", True),
        (KOPPELTAAL_CHANNEL, "Basic {koppeltaal}", False),
        (KOPPELTAAL_CHANNEL, "Bearer ", False),
    ],
)
def test_a_token_opens_only_its_own_feed(channel, header, ok):
    base = "http://ehr.example/fhir"
    tokens = {
        "referral": REFERRAL_CHANNEL.token("s3cret", base),
        "koppeltaal": KOPPELTAAL_CHANNEL.token("s3cret", base),
    }
    assert channel.token_ok("s3cret", base, header.format(**tokens)) is ok
