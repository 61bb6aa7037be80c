"""Logging in one place (fhir_burnout/_logging.py), and no secret or health datum in any
log line at DEBUG (issue 18, point 5)."""

from __future__ import annotations

import json
import logging
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from cryptography.fernet import Fernet
from sqlalchemy.orm import Session

from fhir_burnout._logging import JsonLines, configure_logging
from fhir_burnout.web import create_app
from fhir_burnout.workflow import enrol

from .conftest import SAFETY_OWNER_TOML, SAFETY_TOML, app_settings, hidden_fields, with_ehr
from .smart_flow import APP, discovery, sign_in_at_ehr

ANSWER = "Wandeling met Kees-Xq7Zt langs de Vecht"  # recognisable: found nowhere else
BSN = "999911120"  # the example letter's test BSN (passes the 11-test)
INVITATION = "ABCD-EFGH-JKLM"
NL = {"Accept-Language": "nl"}


@pytest.fixture
def debug_lines(caplog):
    """Every record the configured logging writes at DEBUG (the CLI's configuration, not
    pytest's), formatted as JSON lines would be; the configuration is undone afterwards."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging("debug", json_lines=True)
    root.addHandler(caplog.handler)
    yield lambda: [JsonLines().format(r) for r in caplog.records]
    root.handlers[:], _ = saved[0], root.setLevel(saved[1])
    for name in ("fhir_burnout", "gunicorn.error", "werkzeug", "gunicorn.access"):
        logging.getLogger(name).setLevel(logging.NOTSET)


def _observed(http: requests.Session) -> list[str]:
    """The tokens the app receives from the EHR's token endpoint, as they arrive (a hook on
    the app's own HTTP session: the one place they pass in the clear)."""
    seen: list[str] = []

    def hook(response: requests.Response, *args: object, **kwargs: object) -> None:
        if "json" in response.headers.get("Content-Type", ""):
            body = response.json() if response.content.startswith(b"{") else {}
            seen.extend(str(body[k]) for k in ("access_token", "refresh_token") if k in body)

    http.hooks["response"].append(hook)
    return seen


def test_no_token_code_secret_answer_or_bsn_reaches_a_log_line(sandbox, tmp_path, debug_lines):
    worker = sandbox.client("fhir-burnout-worker")
    settings = with_ehr(
        app_settings(sandbox.fhir_base, tmp_path),
        worker_client_id="fhir-burnout-worker", worker_private_jwk=worker["private_keys"][0],
        practice="Organization/practice-1", api_clients=("referral-system",),
    )  # fmt: skip
    app = create_app(settings)
    tokens = _observed(app.extensions["fhir_burnout"]["http"])
    client = app.test_client()

    # A real launch (standalone, as the client): its authorization code, and the tokens.
    started = client.get("/login")
    callback = sign_in_at_ehr(started.headers["Location"] + "&login_hint=Patient/pat-16")
    code = parse_qs(urlparse(callback).query)["code"][0]
    assert client.get(callback).status_code == 302 and tokens

    # A questionnaire answer with a recognisable text, by that client.
    state = app.extensions["fhir_burnout"]
    with Session(state["engine"]) as db, db.begin():
        enrolment = enrol(
            db, state["definitions"], fhir_base=settings.ehrs[0].fhir_base, patient="pat-16",
            track="waiting-list", author="Practitioner/prac-1",
        )  # fmt: skip
        task = next(t.key for t in enrolment.tasks if t.action_id == "weekly-checkin.weekly")
    form = client.get(f"/task/{task}/form", headers=NL).get_data(as_text=True)
    sleep = re.search(r'name="a\.checkin-sleep" value="(\d+)"[^>]*> <span>Redelijk', form)[1]
    answered = client.post(f"/task/{task}/form", headers=NL, data={
        **hidden_fields(form), "a.checkin-energy": "6", "a.checkin-sleep": sleep,
        "a.checkin-tension": "3", "a.checkin-safety": "0",
        "a.checkin-went-well": ANSWER, "action": "submit",
    })  # fmt: skip
    assert answered.status_code in (200, 302, 303), re.sub(
        r"<[^>]+>", "", answered.get_data(as_text=True)
    )[-1500:]

    # A referral pushed by the referral system: its token (client secret) and a BSN.
    referral = sandbox.client("referral-system")
    machine = requests.post(
        discovery(sandbox)["token_endpoint"],
        data={"grant_type": "client_credentials", "resource": APP,
              "scope": "system/ServiceRequest.cruds system/Patient.cruds"},
        auth=(referral["client_id"], referral["client_secret"]), timeout=30,
    ).json()["access_token"]  # fmt: skip
    patient = {"resourceType": "Patient", "identifier": [
        {"system": "http://fhir.nl/fhir/NamingSystem/bsn", "value": BSN}],
        "name": [{"family": "Proefpersoon"}], "birthDate": "1980-05-17"}  # fmt: skip
    pushed = client.post("/referrals", headers={
        "Authorization": f"Bearer {machine}", "Content-Type": "application/fhir+json",
    }, data=json.dumps({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:1", "resource": patient,
         "request": {"method": "POST", "url": "Patient"}},
        {"fullUrl": "urn:uuid:2", "request": {"method": "POST", "url": "ServiceRequest"},
         "resource": {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
                      "identifier": [{"system": "https://verwijs.example/r", "value": "R-1"}],
                      "subject": {"reference": "urn:uuid:1"}}},
    ]}))  # fmt: skip
    assert pushed.status_code in (200, 201), pushed.get_data(as_text=True)

    # A refused launch, and a typed invitation code that does not exist.
    assert client.get("/launch", query_string={"iss": "https://evil.example/fhir",
                                               "launch": "x"}).status_code == 400  # fmt: skip
    client.get(f"/invite/{INVITATION}")

    lines = debug_lines()
    assert any("launch refused: untrusted iss" in line for line in lines)  # info is written
    secrets = {
        "authorization code": code, "client secret": referral["client_secret"],
        "secret_key": settings.secret_key, "token_key": settings.token_key,
        "answer text": ANSWER, "BSN": BSN, "invitation code": INVITATION,
        "referral token": machine,
        **{f"token {i}": token for i, token in enumerate(tokens)},
    }  # fmt: skip
    leaks = [(what, line) for line in lines for what, s in secrets.items() if s in line]
    assert leaks == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_writes_the_apps_lines_as_json_through_gunicorn(sandbox, tmp_path):
    """``fhir-burnout --log-json serve``: the app's info lines reach gunicorn's log, with
    the request lines redacted."""
    config = tmp_path / "fhir-burnout.toml"
    config.write_text(
        f'base_url = "http://127.0.0.1:8000"\ndatabase_url = "sqlite:///{tmp_path / "a.db"}"\n'
        f'secret_key = "s"\ntoken_key = "{Fernet.generate_key().decode()}"\n'
        f'keys_dir = "keys"\n{SAFETY_TOML}[[ehr]]\nfhir_base = "{sandbox.fhir_base}"\n'
        f'client_id = "fhir-burnout"\n{SAFETY_OWNER_TOML}',
        encoding="utf-8",
    )
    port = _free_port()
    command = [str(Path(sys.executable).with_name("fhir-burnout")), "--log-json", "serve",
               "--config", str(config), "--port", str(port), "--workers", "1"]  # fmt: skip
    server = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):  # gunicorn and the app start in a second or two
            try:
                requests.get(f"{url}/.well-known/jwks.json", timeout=30)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        refused = requests.get(f"{url}/launch", params={"iss": "https://evil.example/fhir",
                                                         "launch": "x"}, timeout=10)  # fmt: skip
        assert refused.status_code == 400
        requests.get(f"{url}/invite/{INVITATION}", timeout=10)
    finally:
        server.terminate()
        _, errors = server.communicate(timeout=30)
    lines = [json.loads(line) for line in errors.decode().splitlines() if line.startswith("{")]
    assert {"time", "level", "logger", "message"} <= set(lines[0])
    said = {(line["logger"], line["level"], line["message"]) for line in lines}
    assert ("fhir_burnout.web._launch", "info", "launch refused: untrusted iss") in said
    assert any(logger == "gunicorn.error" for logger, _, _ in said)  # gunicorn's own lines
    assert INVITATION not in errors.decode()
