"""Rate limits on the app's doors (issue 17): launches, callbacks, invitation codes and the
machine endpoints, per client address and per account, against the real sandbox EHR.

Each test sets small limits, so nothing here waits for a window to pass.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from fhir_burnout.errors import ContentError
from fhir_burnout.settings import RateLimits, Settings
from fhir_burnout.web import create_app

from .conftest import SAFETY_OWNER_TOML, SAFETY_TOML, app_settings, with_ehr
from .referrals import token
from .smart_flow import APP

FHIR_JSON = "application/fhir+json"


@pytest.fixture
def make_app(sandbox, tmp_path):
    """An app trusting the sandbox, with the given rate limits (and other settings)."""
    made = []

    def build(**limits):
        proxies = limits.pop("trusted_proxies", 0)
        settings = app_settings(sandbox.fhir_base, tmp_path / str(len(made)))
        (tmp_path / str(len(made))).mkdir()
        # The referral system may call this app's APIs, with tokens for its base URL.
        settings = with_ehr(settings, api_clients=("referral-system",))
        app = create_app(
            replace(settings, rate_limits=RateLimits(**limits), trusted_proxies=proxies,
                    base_url=APP)
        )  # fmt: skip
        made.append(app)
        return app

    yield build
    for app in made:
        app.extensions["fhir_burnout"]["engine"].dispose()


def at(address):
    return {"REMOTE_ADDR": address}


@pytest.mark.parametrize(("lang", "said"), [("nl", "Even rustig aan"), ("en", "Just a moment")])
def test_too_many_launch_starts_get_a_kind_page_with_crisis_help(make_app, lang, said):
    """Three starts a minute from one address: the fourth gets 429 with Retry-After and a
    page in the person's language that blames nobody and keeps 113, 112 and the GP in
    view; another address starts as usual."""
    app = make_app(launch="3/minute")
    client = app.test_client()
    for _ in range(3):
        assert client.get("/login", environ_base=at("192.0.2.1")).status_code == 302
    refused = client.get("/login", environ_base=at("192.0.2.1"),
                         headers={"Accept-Language": lang})  # fmt: skip
    page = refused.get_data(as_text=True)
    assert refused.status_code == 429 and refused.mimetype == "text/html"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert said in page and "0800-0113" in page and "tel:112" in page
    assert ("huisarts" if lang == "nl" else "GP") in page
    # /launch shares the limit: both start a launch
    assert client.get("/launch", environ_base=at("192.0.2.1")).status_code == 429
    assert client.get("/login", environ_base=at("192.0.2.2")).status_code == 302


def test_the_callback_is_limited_per_address(make_app):
    app = make_app(callback="2/minute")
    client = app.test_client()
    for _ in range(2):  # unknown states: refused, and counted
        assert (
            client.get("/callback?state=x&code=y", environ_base=at("192.0.2.3")).status_code == 400
        )
    assert client.get("/callback?state=x&code=y", environ_base=at("192.0.2.3")).status_code == 429
    assert client.get("/callback?state=x&code=y", environ_base=at("192.0.2.4")).status_code == 400


def test_invitation_codes_are_limited_per_address_per_browser_and_per_code(make_app):
    """Guessing codes: one address may try few a minute, one browser too (whatever address
    it comes from), and one code only so often a day, from anywhere."""
    app = make_app(invitation="3/minute", invitation_code="4/day")
    browser = app.test_client()
    for n in range(3):
        assert (
            browser.get(f"/invite/AAAA-BBB{n}", environ_base=at("198.51.100.1")).status_code == 303
        )
    assert browser.get("/invite/AAAA-BBB9", environ_base=at("198.51.100.1")).status_code == 429
    # the same browser from another address: still this browser's limit
    assert browser.get("/invite/AAAA-BBB8", environ_base=at("198.51.100.2")).status_code == 429
    # one code, from fresh browsers at fresh addresses: 4 a day, typed or followed
    for n in range(3):
        fresh = app.test_client()
        assert fresh.get("/invite/CCCC-DDDD", environ_base=at(f"203.0.113.{n}")).status_code == 303
    typed = app.test_client()
    form = typed.get("/invite").get_data(as_text=True)
    token = form.split('name="csrf_token" value="')[1].split('"')[0]
    posted = typed.post("/invite", data={"csrf_token": token, "code": "cccc dddd"},
                        environ_base=at("203.0.113.50"))  # fmt: skip
    assert posted.status_code == 303
    again = app.test_client().get("/invite/CCCC-DDDD", environ_base=at("203.0.113.60"))
    assert again.status_code == 429 and "0800-0113" in again.get_data(as_text=True)


def test_machine_endpoints_count_per_client_id_and_answer_throttled(make_app, sandbox):
    """An API client over its limit gets 429, Retry-After and an OperationOutcome with code
    throttled, from any address; a caller whose token does not verify is counted by its
    address only, so nobody can use up another client's allowance."""
    app = make_app(machine="2/minute", machine_address="4/minute")
    client = app.test_client()
    caller = token(sandbox, "system/ServiceRequest.cruds system/Patient.cruds system/CarePlan.c")
    bearer = {"Authorization": f"Bearer {caller}", "Content-Type": FHIR_JSON}
    for n in range(2):
        answer = client.post(
            "/referrals", data="{}", headers=bearer, environ_base=at(f"10.0.0.{n}")
        )
        assert answer.status_code != 429
    refused = client.post("/referrals", data="{}", headers=bearer, environ_base=at("10.0.0.9"))
    assert refused.status_code == 429 and refused.mimetype == FHIR_JSON
    assert json.loads(refused.data)["issue"][0]["code"] == "throttled"
    assert int(refused.headers["Retry-After"]) >= 1
    applied = client.post("/fhir/PlanDefinition/standard/$apply", data="{}", headers=bearer,
                          environ_base=at("10.0.0.10"))  # fmt: skip
    assert applied.status_code == 429  # one allowance for all of the client's calls
    forged = {"Authorization": "Bearer not-a-token", "Content-Type": FHIR_JSON}
    for _ in range(4):
        assert client.post("/referrals", data="{}", headers=forged,
                           environ_base=at("10.0.1.1")).status_code == 401  # fmt: skip
    assert client.post("/referrals", data="{}", headers=forged,
                       environ_base=at("10.0.1.1")).status_code == 429  # fmt: skip
    notified = client.post("/referrals/notify?ehr=nope", environ_base=at("10.0.2.1"))
    assert notified.status_code == 404  # the notification endpoints count too, per address


def test_forwarded_for_counts_only_behind_trusted_proxies(make_app):
    """Without trusted proxies a client cannot pick its own address with X-Forwarded-For;
    behind one, each client the proxy names is counted apart."""
    direct = make_app(launch="1/minute").test_client()
    assert direct.get("/login", headers={"X-Forwarded-For": "192.0.2.10"}).status_code == 302
    assert direct.get("/login", headers={"X-Forwarded-For": "192.0.2.11"}).status_code == 429
    proxied = make_app(launch="1/minute", trusted_proxies=1).test_client()
    assert proxied.get("/login", headers={"X-Forwarded-For": "192.0.2.10"}).status_code == 302
    assert proxied.get("/login", headers={"X-Forwarded-For": "192.0.2.11"}).status_code == 302
    assert proxied.get("/login", headers={"X-Forwarded-For": "192.0.2.11"}).status_code == 429


def test_a_limit_switched_off_never_refuses(make_app):
    client = make_app(launch="").test_client()
    assert all(client.get("/login").status_code == 302 for _ in range(40))


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ('[rate_limits]\nlaunch = "lots"\n', "rate_limits.launch"),
        ('[rate_limits]\nlogin = "5/minute"\n', "rate_limits.login"),
        ('rate_limit_storage = "nowhere"\n', "rate_limit_storage"),
        ("trusted_proxies = -1\n", "trusted_proxies"),
    ],
)
def test_an_unreadable_rate_limit_setting_names_its_key(tmp_path, config, key):
    path = tmp_path / "app.toml"
    path.write_text(
        'base_url = "https://burnout.example"\nsecret_key = "s"\ntoken_key = "t"\n'
        + config.split("[rate_limits]")[0]
        + SAFETY_TOML
        + '[[ehr]]\nfhir_base = "https://ehr.example/fhir"\nclient_id = "c"\n'
        + SAFETY_OWNER_TOML
        + (
            "[rate_limits]" + config.split("[rate_limits]")[1] if "[rate_limits]" in config else ""
        ),
        encoding="utf-8",
    )
    with pytest.raises(ContentError, match=key.replace(".", r"\.")):
        Settings.from_file(path)


def test_the_defaults_are_the_documented_ones(tmp_path):
    path = tmp_path / "app.toml"
    path.write_text(
        'base_url = "https://burnout.example"\nsecret_key = "s"\ntoken_key = "t"\n'
        + SAFETY_TOML
        + '[[ehr]]\nfhir_base = "https://ehr.example/fhir"\nclient_id = "c"\n'
        + SAFETY_OWNER_TOML
        + '[rate_limits]\ninvitation_code = "20/day"\n',
        encoding="utf-8",
    )
    settings = Settings.from_file(path)
    assert settings.rate_limits == RateLimits(invitation_code="20/day")
    assert (
        settings.rate_limits.storage == "memory://" and settings.rate_limits.launch == "30/minute"
    )
    assert settings.trusted_proxies == 0
