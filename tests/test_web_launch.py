"""The launch routes of the web app against the sandbox EHR, on SQLite and PostgreSQL.

Flask's test client is the app's browser; requests plays the browser at the EHR's
authorization server (the sandbox signs users in from the launch context). The browser
end-to-end tests with Chromium come with the rest of this issue.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import re
import signal
import socket
import subprocess
import time
import zlib
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from cryptography.fernet import Fernet
from sqlalchemy import text
from sqlalchemy.orm import Session

from fhir_burnout.cli import main
from fhir_burnout.settings import RateLimits
from fhir_burnout.web import create_app
from fhir_burnout.web._sessions import PENDING_LIFETIME, SESSION_MAX, SessionStore, purge
from fhir_burnout.workflow import change_task, enrol

from .conftest import SAFETY_OWNER_TOML, SAFETY_TOML, app_settings, hidden_fields, path_of
from .launches import ehr_launch_params, launch
from .smart_flow import sign_in_at_ehr


def test_ehr_launch_as_a_practitioner_shows_the_patient_banner_not_the_clients_crisis_help(
    app, sandbox
):
    """The care professional's pages name the client; the crisis help beside a client's
    pages is not for them (issue 21: the practice's own crisis protocol instead, where the
    practice configured one; this app has none)."""
    client = app.test_client()
    finished = launch(client, sandbox, patient="pat-02", practitioner="prac-1")
    assert finished.status_code == 302 and path_of(finished.headers["Location"]) == "/"
    home = client.get("/", headers={"Accept-Language": "nl"})
    page = home.get_data(as_text=True)
    assert home.status_code == 200
    assert "Welkom, Mirjam Behandelaar." in page
    assert "Cliënt: Bram van Proefpersoon" in page
    assert "0800-0113" not in page and 'class="crisis"' not in page
    assert "fb-crisis-protocol" not in page


def test_launch_by_form_post_works_too(app, sandbox):
    client = app.test_client()
    assert launch(client, sandbox, patient="pat-03", method="post").status_code == 302
    assert client.get("/").status_code == 200


def test_standalone_login_as_a_patient_in_english(app, sandbox):
    client = app.test_client()
    started = client.get("/login")
    assert started.status_code == 302
    url = started.headers["Location"] + "&login_hint=Patient/pat-05"
    client.get(sign_in_at_ehr(url))
    page = client.get("/", headers={"Accept-Language": "en-GB,en;q=0.9"}).get_data(as_text=True)
    assert "Welcome, Eva van der Fictief." in page
    assert "signed in with your own details" in page
    assert "Client:" not in page  # no patient banner for the patient themself
    assert "0800-0113" in page


def test_an_untrusted_iss_gets_a_readable_page_and_no_redirect(app):
    client = app.test_client()
    response = client.get(
        "/launch",
        query_string={"iss": "https://evil.example.org/fhir", "launch": "x"},
        headers={"Accept-Language": "nl"},
    )
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert "niet gekoppeld" in response.get_data(as_text=True)


def test_an_ehr_connected_by_koppeltaal_is_not_launched_the_smart_way(sandbox, tmp_path):
    settings = app_settings(sandbox.fhir_base, tmp_path)
    koppeltaal = dataclasses.replace(settings.ehrs[0], mode="koppeltaal")
    app = create_app(dataclasses.replace(settings, ehrs=(koppeltaal,)))
    try:
        response = app.test_client().get(
            "/launch", query_string={"iss": sandbox.fhir_base, "launch": "x"},
            headers={"Accept-Language": "nl"},
        )  # fmt: skip
        assert response.status_code == 400 and "Location" not in response.headers
        assert "niet gekoppeld" in response.get_data(as_text=True)
    finally:
        app.extensions["fhir_burnout"]["engine"].dispose()


def test_a_state_works_once_and_only_in_its_own_browser(app, sandbox):
    client = app.test_client()
    params = ehr_launch_params(sandbox, "pat-04")
    started = client.get("/launch", query_string=params)
    back = sign_in_at_ehr(started.headers["Location"])
    stranger = app.test_client()
    assert stranger.get(back).status_code == 400  # another browser gets nothing
    assert stranger.get("/").status_code == 401
    assert client.get(back).status_code == 302  # the person who started it still can


def test_reused_state_is_refused(app, sandbox):
    client = app.test_client()
    params = ehr_launch_params(sandbox, "pat-06")
    back = sign_in_at_ehr(client.get("/launch", query_string=params).headers["Location"])
    assert client.get(back).status_code == 302
    assert client.get(back).status_code == 400


def session_cookie(client):
    cookie = client.get_cookie("session")
    payload = cookie.value.lstrip(".").split(".")[0]
    data = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    if cookie.value.startswith("."):
        data = zlib.decompress(data)
    return json.loads(data)


def test_tokens_stay_on_the_server_and_are_encrypted_at_rest(app, sandbox):
    client = app.test_client()
    launch(client, sandbox, patient="pat-07")
    home = client.get("/", headers={"Accept-Language": "nl"}).get_data(as_text=True)
    name = re.search(r"<h1[^>]*>Welkom, ([^<.]+)\.</h1>", home)[1]  # read from the EHR, shown
    # Opaque ids only: the browser, its sessions, each launch's handle -> session id; no
    # name or other personal data (the cookie is signed, not encrypted).
    assert set(session_cookie(client)) <= {"browser", "sid", "locale", "launches", "csrf_token"}
    assert name not in json.dumps(session_cookie(client), ensure_ascii=False)
    assert all(len(pair) == 2 for pair in session_cookie(client)["launches"])
    store = app.extensions["fhir_burnout"]["store"]
    row = store.get(session_cookie(client)["sid"])
    token = store.access_token(row)
    assert token.encode() not in row.access_token
    with store.engine.connect() as db:
        raw = db.execute(
            text("select access_token from launch_session where id = :id"), {"id": row.id}
        ).scalar_one()
    assert token.encode() not in bytes(raw)


def expire(app, client, *, refresh_token=None):
    store = app.extensions["fhir_burnout"]["store"]
    sid = session_cookie(client)["sid"]
    with store.engine.begin() as db:
        db.execute(text("update launch_session set expires_at = 0 where id = :id"), {"id": sid})
        if refresh_token is not None:
            db.execute(
                text("update launch_session set refresh_token = :t where id = :id"),
                {"id": sid, "t": refresh_token},
            )
    store.forget_lifetimes()  # as the token's running out would have told it
    return store, sid


def portal_launch(client, sandbox, patient):
    """The client opens the app from the EHR's patient portal (at /launch/patient)."""
    response = requests.get(
        sandbox.launcher, params={"app": "fhir-burnout", "patient": patient, "portal": "1"},
        allow_redirects=False, timeout=30,
    )  # fmt: skip
    location = urlparse(response.headers["Location"])
    assert location.path == "/launch/patient"
    started = client.get(f"{location.path}?{location.query}")
    assert started.status_code == 302
    return client.get(sign_in_at_ehr(started.headers["Location"]))


def test_an_expired_token_is_refreshed_without_the_person_noticing(app, sandbox):
    client = app.test_client()
    portal_launch(client, sandbox, "pat-08")  # a client's launch asks offline_access
    store, sid = expire(app, client)
    before = store.access_token(store.get(sid))
    assert client.get("/").status_code == 200
    assert store.access_token(store.get(sid)) != before


def test_a_token_nearing_its_end_is_renewed_before_a_page_and_a_good_one_costs_no_read(
    app, sandbox
):
    """Before every page the app renews a token about to run out; while this process knows
    the token is good for a while, it does not read the session for that."""
    client = app.test_client()
    portal_launch(client, sandbox, "pat-08")
    store, sid = expire(app, client)
    reads = []
    real_get = store.get
    store.get = lambda *a, **kw: reads.append(a) or real_get(*a, **kw)
    try:
        assert client.get("/progress").status_code == 200  # renewed first
        assert len(reads) >= 1 and store.renewable_at(sid) > time.time() + 60
        reads.clear()
        assert client.get("/progress").status_code == 200
        assert client.get("/programme").status_code == 200
        assert len(reads) == 2  # each page's own, for whose records to show: no second
    finally:
        del store.get


def test_a_session_another_process_ended_ends_on_the_next_page_whatever_this_one_knew(
    app, sandbox
):
    """The web's workers and the sync worker share sessions through the database only: one
    that another process ended (its authorisation refused there) ends here on the next page,
    although this process remembers its token as good for a while."""
    client = app.test_client()
    portal_launch(client, sandbox, "pat-09")
    assert client.get("/progress").status_code == 200
    store = app.extensions["fhir_burnout"]["store"]
    sid = session_cookie(client)["sid"]
    assert store.renewable_at(sid) > time.time() + 60
    other = SessionStore(store.engine, app.extensions["fhir_burnout"]["settings"].token_key)
    other.end_authorisation(sid)
    assert client.get("/progress").status_code == 401
    assert client.get("/").status_code == 401


def test_a_failed_refresh_asks_to_open_the_programme_again(app, sandbox):
    client = app.test_client()
    launch(client, sandbox, patient="pat-09")
    expire(app, client, refresh_token=store_seal(app, "not-a-refresh-token"))
    page = client.get("/", headers={"Accept-Language": "nl"})
    assert page.status_code == 401
    assert "Open het programma opnieuw" in page.get_data(as_text=True)


def store_seal(app, value):
    return app.extensions["fhir_burnout"]["store"]._seal(value)


def test_without_a_session_the_home_page_says_how_to_start(app):
    page = app.test_client().get("/", headers={"Accept-Language": "en"})
    assert page.status_code == 401
    assert "open the programme from your EHR" in page.get_data(as_text=True)


def test_the_app_publishes_its_current_keys(app, runner, tmp_path):
    keys_dir = app.extensions["fhir_burnout"]["settings"].keys_dir
    assert runner.invoke(main, ["keys", "--dir", str(keys_dir), "--alg", "ES384"]).exit_code == 0
    jwks = app.test_client().get("/.well-known/jwks.json").get_json()
    assert [k["alg"] for k in jwks["keys"]] == ["ES384"]
    assert "d" not in jwks["keys"][0]  # public parts only


def test_no_token_reaches_a_log_line(app, sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    client = app.test_client()
    launch(client, sandbox, patient="pat-10")
    client.get("/")
    client.get("/launch", query_string={"iss": "https://evil.example.org/fhir", "launch": "x"})
    store = app.extensions["fhir_burnout"]["store"]
    row = store.get(session_cookie(client)["sid"])
    secrets_ = [store.access_token(row), store.refresh_token(row)]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert not [s for s in secrets_ if s and s in logged]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("workers", [[], ["--workers", "3"]])
def test_serve_always_runs_under_gunicorn(sandbox, tmp_path, root, workers):
    """Never Flask's development server: two workers unless told otherwise."""
    port = free_port()
    config = tmp_path / "fhir-burnout.toml"
    config.write_text(
        f'base_url = "http://127.0.0.1:{port}"\n'
        f'database_url = "sqlite:///{tmp_path / "app.db"}"\n'
        'secret_key = "serve-test"\n'
        f'token_key = "{Fernet.generate_key().decode()}"\n'
        + SAFETY_TOML
        + f'[[ehr]]\nfhir_base = "{sandbox.fhir_base}"\nclient_id = "fhir-burnout"\n'
        + SAFETY_OWNER_TOML
    )
    command = [
        str(root / ".venv/bin/fhir-burnout"),
        "serve",
        "--config",
        str(config),
        "--port",
        str(port),
        *workers,
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        seen = []
        for line in process.stdout:
            seen.append(line)
            if sum("Booting worker" in s for s in seen) == (int(workers[1]) if workers else 2):
                break
        assert process.poll() is None, "".join(seen)
        response = requests.get(
            f"http://127.0.0.1:{port}/login", allow_redirects=False, timeout=30
        )
        assert response.status_code == 302
        assert response.headers["Location"].startswith(f"{sandbox.issuer}/authorize?")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        process.stdout.close()


def test_the_first_page_shows_where_the_client_is_in_the_programme(app, sandbox):
    state = app.extensions["fhir_burnout"]
    with Session(state["engine"]) as db, db.begin():
        enrolment = enrol(
            db, state["definitions"], fhir_base=sandbox.fhir_base, patient="pat-06",
            track="standard", author="Practitioner/prac-1",
        )  # fmt: skip
        first = next(t.key for t in enrolment.tasks if t.action_id == "understanding-burnout")
        change_task(
            db, state["definitions"], first, "completed", actor="client", who="Patient/pat-06"
        )
    client = app.test_client()
    started = client.get("/login")
    client.get(sign_in_at_ehr(started.headers["Location"] + "&login_hint=Patient/pat-06"))
    dutch = client.get("/", headers={"Accept-Language": "nl"}).get_data(as_text=True)
    assert "Je zit nu in Fase 1: Herstel via het lichaam." in dutch
    assert "1 van de 13 modules gedaan." in dutch
    # One next step: the next module, as a link.
    assert re.search(
        r"Nu te doen</h3>\s*<p[^>]*><a [^>]*href=\"/task/[^\"]+\">Signalen van je lichaam</a>",
        dutch,
    )
    assert "Stemming (PHQ-9)" in dutch  # a questionnaire that is ready now
    english = client.get("/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "You are now in Phase 1: Recovery through the body." in english
    assert "0800-0113" in english
    # The whole programme, with what is not open yet, is on "My programme".
    whole = client.get("/programme", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "not open yet" in whole and "0800-0113" in whole
    # Another client with no programme is told how to get one, not shown someone else's.
    other = app.test_client()
    started = other.get("/login")
    other.get(sign_in_at_ehr(started.headers["Location"] + "&login_hint=Patient/pat-07"))
    page = other.get("/", headers={"Accept-Language": "nl"}).get_data(as_text=True)
    assert "nog niet aangemeld" in page and "Signalen van je lichaam" not in page


def test_logout_ends_this_launch_and_its_tokens(app, sandbox):
    """ "Uitloggen" deletes the session and its tokens; the next page is signed out, with
    crisis help. A second launch in the same browser (another tab) stays signed in."""
    client = app.test_client()
    launch(client, sandbox, patient="pat-03")
    first = session_cookie(client)["sid"]
    launch(client, sandbox, patient="pat-04")
    [(_, first_sid), (second_ctx, second_sid)] = session_cookie(client)["launches"]
    assert first_sid == first
    page = client.get("/", headers={"Accept-Language": "nl"}).get_data(as_text=True)
    assert "Uitloggen" in page
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]
    assert client.post(f"/logout?ctx={second_ctx}", data={}).status_code == 400  # no token
    out = client.post(f"/logout?ctx={second_ctx}", data={"csrf_token": token},
                      headers={"Accept-Language": "nl"})  # fmt: skip
    text_ = out.get_data(as_text=True)
    assert out.status_code == 200 and "Je bent uitgelogd" in text_ and "0800-0113" in text_
    store = app.extensions["fhir_burnout"]["store"]
    assert store.get(second_sid) is None and store.get(first_sid) is not None
    assert client.get(f"/?ctx={second_ctx}").status_code == 401  # that launch is gone
    assert client.get("/").status_code == 200  # the other tab's launch carries on
    assert session_cookie(client)["sid"] == first_sid


def test_the_worker_purges_ended_sessions_and_forgotten_pending_launches(app, sandbox):
    """Nothing is kept longer than it can serve: pending launches nobody came back for and
    sessions that can no longer be used go, with their encrypted tokens; live ones stay."""
    engine = app.extensions["fhir_burnout"]["engine"]
    store = app.extensions["fhir_burnout"]["store"]
    live_one, ended = app.test_client(), app.test_client()
    launch(live_one, sandbox, patient="pat-05")
    launch(ended, sandbox, patient="pat-06")
    for _ in range(3):  # started, never finished
        app.test_client().get("/login")
    now = time.time()
    with engine.begin() as connection:  # one session is older than a day of work allows
        connection.execute(
            text("UPDATE launch_session SET created_at = :old WHERE id = :id"),
            {"old": now - SESSION_MAX - 1, "id": session_cookie(ended)["sid"]},
        )
    assert purge(engine, now) == (0, 1)
    assert purge(engine, now + PENDING_LIFETIME + 1)[0] == 3
    assert store.get(session_cookie(live_one)["sid"]) is not None
    assert store.get(session_cookie(ended)["sid"]) is None
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM pending_launch")).scalar() == 0


def test_access_logs_keep_no_callback_or_invitation_codes(live, caplog):
    """The server's own request lines (Werkzeug's, on a real port): the callback's code and
    state and an invitation code are written as [redacted]; the rest of the line stays."""
    caplog.set_level(logging.INFO, logger="werkzeug")
    requests.get(f"{live.app_url}/callback?code=SECRET-CODE-1&state=STATE-2&iss=x", timeout=10)
    requests.get(f"{live.app_url}/invite/ABCD-EFGH", timeout=10)
    lines = [r.getMessage() for r in caplog.records if r.name == "werkzeug"]
    assert any("/callback?code=[redacted]&state=[redacted]&iss=x" in line for line in lines)
    assert any("/invite/[redacted]" in line for line in lines)
    assert not any("SECRET-CODE-1" in line or "STATE-2" in line for line in lines)
    assert not any("ABCD-EFGH" in line for line in lines)


def test_a_refused_refresh_ends_the_session_for_every_page(app, sandbox):
    """The EHR refuses the refresh token (the authorisation was ended there): the client's
    pages that need nothing from the EHR are closed too, and the care professional cannot
    enrol anyone; nothing is enrolled."""
    client = app.test_client()
    launch(client, sandbox, patient="pat-10")
    assert client.get("/progress").status_code == 200
    store, sid = expire(app, client, refresh_token=store_seal(app, "revoked-at-the-ehr"))
    assert client.get("/progress").status_code == 401
    assert store.refresh_token(store.get(sid)) is None  # ended, not only refused once
    assert client.get("/progress").status_code == 401

    desk = app.test_client()
    launch(desk, sandbox, patient="pat-11", practitioner="prac-1")
    page = desk.get("/practitioner").get_data(as_text=True)
    expire(app, desk, refresh_token=store_seal(app, "revoked-at-the-ehr"))
    fields = hidden_fields(page)
    enrolled = desk.post("/practitioner/enrol", data={**fields, "track": "standard"})
    assert enrolled.status_code == 401
    engine = app.extensions["fhir_burnout"]["engine"]
    with engine.connect() as connection:
        found = connection.execute(text("SELECT count(*) FROM enrolment WHERE patient = 'pat-11'"))
        assert found.scalar() == 0


def test_a_refused_launch_is_logged_for_the_integrator_with_a_reference_on_the_page(
    app, sandbox, caplog
):
    """The authorization server sends the person back with an error: the page gives a
    reference; the log has the same reference, the reason, the EHR and the server's own
    error and description (a forged line break flattened), and never the state."""
    client = app.test_client()
    started = client.get("/launch", query_string=ehr_launch_params(sandbox, "pat-02"))
    state = parse_qs(urlparse(started.headers["Location"]).query)["state"][0]
    caplog.set_level(logging.INFO, logger="fhir_burnout.web._launch")
    answer = client.get(
        "/callback",
        query_string={"state": state, "error": "access_denied",
                      "error_description": "The user said no\nlaunch ok: forged"},
        headers={"Accept-Language": "nl"},
    )  # fmt: skip
    page = answer.get_data(as_text=True)
    assert answer.status_code == 400 and "0800-0113" in page
    reference = re.search(r"Noem dan deze code: ([0-9a-f]{8})", page)[1]
    [line] = [r.getMessage() for r in caplog.records if reference in r.getMessage()]
    assert "access_denied" in line and "The user said no" in line
    assert f"iss={sandbox.fhir_base}" in line
    assert "\n" not in line and state not in line


def test_a_flood_of_anonymous_launch_starts_stays_bounded_and_a_launch_still_works(
    sandbox, tmp_path, database_url
):
    """Issue 17: 1,000 anonymous GET /login stored 1,000 pending launches. Now one browser
    keeps its newest 5, and all browsers together at most ``pending_launches_max`` (rate
    limits off here, so the bound itself is what holds); a real launch still completes."""
    settings = app_settings(sandbox.fhir_base, tmp_path, database_url=database_url)
    app = create_app(
        dataclasses.replace(settings, rate_limits=RateLimits(launch=""), pending_launches_max=100)
    )
    engine = app.extensions["fhir_burnout"]["engine"]

    def pending(where=""):
        with engine.connect() as connection:
            return connection.execute(
                text(f"SELECT count(*) FROM pending_launch {where}")
            ).scalar()

    try:
        browser = app.test_client()
        for _ in range(50):
            assert browser.get("/login").status_code == 302
        assert pending() == 5
        anonymous = app.test_client(use_cookies=False)
        for _ in range(1_000):
            assert anonymous.get("/login").status_code == 302
        assert pending() == 100
        person = app.test_client()
        assert launch(person, sandbox, patient="pat-08").status_code == 302
        assert person.get("/").status_code == 200
    finally:
        engine.dispose()


def signed_in_with_tokens(app, client):
    """The signed-in session's id and its refresh token, as the EHR issued it."""
    store = app.extensions["fhir_burnout"]["store"]
    sid = session_cookie(client)["sid"]
    return sid, store.refresh_token(store.get(sid))


def log_out(client):
    page = client.get("/", headers={"Accept-Language": "nl"}).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]
    return client.post("/logout", data={"csrf_token": token}, headers={"Accept-Language": "nl"})


def test_logout_revokes_the_refresh_token_at_the_ehr(app, sandbox):
    """The EHR lists a revocation_endpoint (RFC 7009): after "Uitloggen" the session's
    refresh token no longer buys a token there, not only here."""
    client = app.test_client()
    portal_launch(client, sandbox, patient="pat-09")  # a client's launch asks offline_access
    _, refresh_token = signed_in_with_tokens(app, client)
    assert refresh_token  # the sandbox grants it
    assert log_out(client).status_code == 200
    smart = requests.get(f"{sandbox.fhir_base}/.well-known/smart-configuration", timeout=30)
    assert smart.json()["revocation_endpoint"]
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token,
            "client_id": "fhir-burnout"}  # fmt: skip
    answer = requests.post(smart.json()["token_endpoint"], data=form, timeout=30)
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"


def test_logout_works_when_the_ehr_does_not_answer_its_revocation(app, sandbox, caplog):
    """The EHR's revocation endpoint is down (a closed port): the person is signed out all
    the same, the tokens are gone here, and the log says why by the error's type only."""
    client = app.test_client()
    portal_launch(client, sandbox, patient="pat-12")
    sid, refresh_token = signed_in_with_tokens(app, client)
    discovery_cache = app.extensions["fhir_burnout"]["discovery"]
    config = discovery_cache.get(sandbox.fhir_base)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    gone = dataclasses.replace(
        config, raw={**config.raw, "revocation_endpoint": f"http://127.0.0.1:{port}/revoke"}
    )
    discovery_cache._entries[sandbox.fhir_base] = (time.monotonic() + 3600, gone)
    caplog.set_level(logging.INFO, logger="fhir_burnout.web._launch")
    out = log_out(client)
    assert out.status_code == 200 and "Je bent uitgelogd" in out.get_data(as_text=True)
    assert app.extensions["fhir_burnout"]["store"].get(sid) is None
    [line] = [r.getMessage() for r in caplog.records if "revoke" in r.getMessage()]
    assert "temporarily_unavailable" not in line and refresh_token not in line
    assert "TokenRequestError" in line


def test_a_database_error_is_logged_by_type_and_reference_without_values(app, sandbox, caplog):
    """A page's database call fails (its table is gone): the person reads a page with crisis
    help and a reference; the log has the error's type and the same reference, and neither
    the statement's values (here an invitation code) nor the database's own message."""
    client = app.test_client()
    launch(client, sandbox, patient="pat-13", practitioner=None)
    engine = app.extensions["fhir_burnout"]["engine"]
    with engine.begin() as connection:
        connection.execute(text("ALTER TABLE invitation RENAME TO invitation_gone"))
    caplog.set_level(logging.DEBUG)
    client.get("/invite/QX7K-RT4M")
    answer = client.get("/", headers={"Accept-Language": "nl"})
    page = answer.get_data(as_text=True)
    assert answer.status_code == 500 and "0800-0113" in page
    reference = re.search(r"Noem dan deze code: ([0-9a-f]{8})", page)[1]
    [line] = [r.getMessage() for r in caplog.records if reference in r.getMessage()]
    assert re.match(rf"unhandled (OperationalError|ProgrammingError) \[{reference}\] at /\n", line)
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert "QX7K" not in logged and "invitation_gone" not in logged
    assert "no such table" not in logged and "does not exist" not in logged
