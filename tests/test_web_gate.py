"""The web gate (issue 18, point 3): CSRF on every state-changing route by default, the
typed application context, and a request id on every log line of a request.

None of these needs the EHR: the app trusts an address nobody answers at, and each test
only reaches the gate, never the EHR.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
from flask import Flask

from fhir_burnout._logging import JsonLines, request_id
from fhir_burnout.web import create_app
from fhir_burnout.web._context import AppContext, app_context
from fhir_burnout.web._csrf import UNSAFE_METHODS, is_exempt
from fhir_burnout.web._gate import GATE
from fhir_burnout.web._i18n import translate

from .conftest import app_settings

#: Nothing listens here: a test that reached the EHR would fail loudly.
NOWHERE = "http://127.0.0.1:9/fhir"

#: The only doors a browser form of ours never posts to: bearer-token APIs, notification
#: hooks, and the launches an EHR (or a Koppeltaal portal) posts. Adding one here is a
#: security decision: say why in web/_csrf.py.
EXEMPT = {
    "fhir_api.apply",  # bearer token (SMART Backend Services)
    "referral_api.push",  # bearer token
    "referral_notify.notify",  # EHR notification hook
    "koppeltaal_notify.notify",  # Koppeltaal notification hook
    "launch.ehr_launch",  # the EHR posts iss + launch; the launch's state binds it
    "launch.portal_launch",  # likewise, from a patient portal
    "koppeltaal.hti_launch",  # the portal posts a signed HTI token
}


@pytest.fixture
def gate_app(tmp_path: Path) -> Flask:
    """An app on SQLite that trusts an EHR nobody answers for."""
    app = create_app(app_settings(NOWHERE, tmp_path))
    yield app
    app_context(app).engine.dispose()


def _unsafe_routes(app: Flask) -> list[tuple[str, str, str]]:
    """(endpoint, a URL for it, method) for every route that changes something."""
    found = []
    for rule in app.url_map.iter_rules():
        # Any value fits a path variable: the gate answers before the view reads it.
        url = re.sub(r"<(?:int:)?([a-z_]+)>", lambda m: "1" if "int:" in m[0] else "x", rule.rule)
        found += [(rule.endpoint, url, m) for m in sorted(rule.methods & UNSAFE_METHODS)]
    return found


def test_only_the_machine_endpoints_and_ehr_launches_take_posts_without_the_token(gate_app):
    with gate_app.test_request_context():
        exempt = {e for e, _, _ in _unsafe_routes(gate_app) if is_exempt(e)}
    assert exempt == EXEMPT


def test_every_other_state_changing_route_refuses_a_post_without_the_token(gate_app):
    """A route added without the check, or a view that acts before it, fails here: a
    signed-out browser's post without the token reads "form expired", not "signed out"."""
    routes = [(e, u, m) for e, u, m in _unsafe_routes(gate_app) if e not in EXEMPT]
    assert len(routes) >= 10  # the walk found the app's forms
    client = gate_app.test_client()
    with client.session_transaction() as session:
        session["csrf_token"] = "the-right-one"
    for endpoint, url, method in routes:
        for form in ({}, {"csrf_token": "a-forged-one"}):
            answer = client.open(url, method=method, data=form)
            assert answer.status_code == 400, (endpoint, form, answer.status_code)
            page = answer.get_data(as_text=True)
            assert translate("error_form_expired", "nl") in page, endpoint
            assert "113" in page, endpoint  # crisis help on the refusal too


def test_a_post_with_the_token_passes_the_gate(gate_app):
    client = gate_app.test_client()
    with client.session_transaction() as session:
        session["csrf_token"] = "the-right-one"
    answer = client.post("/language", data={"csrf_token": "the-right-one", "language": "en"})
    assert answer.status_code == 303


def test_the_context_is_typed_and_frozen_and_still_reads_like_the_old_dict(gate_app):
    context = gate_app.extensions["fhir_burnout"]
    assert isinstance(context, AppContext)
    assert context["engine"] is context.engine and context["settings"].base_url
    with pytest.raises(KeyError):
        context["no-such-part"]
    with pytest.raises(AttributeError):
        context.engine = None  # type: ignore[misc]
    # Made once per app, on first use, and the same for every request after.
    assert context.ehr_clients is context["ehr_clients"]


def test_every_log_line_of_a_request_carries_its_id_and_none_after(gate_app, caplog):
    """The id a page quotes (Koppeltaal's error page and X-Request-Id) is the id on the
    request's log lines; each request has its own, and it is gone once the request ends."""
    caplog.handler.setFormatter(JsonLines())  # formatted as written, inside the request
    client = gate_app.test_client()
    with caplog.at_level(logging.INFO, logger="fhir_burnout"):
        for _ in range(2):
            answer = client.post(
                "/koppeltaal/launch", data={"iss": "https://elsewhere.example/fhir", "launch": "x"}
            )
            assert answer.status_code == 400
    lines = [json.loads(line) for line in caplog.text.splitlines()]
    refused = [line for line in lines if "untrusted iss" in line["message"]]
    assert len(refused) == 2
    first, second = (line.get("request_id") for line in refused)
    assert first and second and first != second
    assert answer.headers["X-Request-Id"] == second and second in answer.get_data(as_text=True)
    assert request_id.get() is None  # cleared: the thread's next work is not this request's


#: The endpoints a machine calls with a bearer token (SMART Backend Services), and the
#: scope each needs: every one is behind ``@backend_caller`` (web/_gate.py).
BACKEND_CALLERS = {
    "fhir_api.apply": ("CarePlan", "c"),
    "referral_api.push": ("ServiceRequest", "c"),
}


def test_every_care_professional_page_is_behind_the_gate(gate_app):
    """A /practitioner or /practice view added without ``@care_professional`` fails here;
    the practice's pages need the practice's check too (``of_practice=True``)."""
    pages = [r for r in gate_app.url_map.iter_rules() if r.rule.startswith("/practi")]
    assert len(pages) >= 8  # the walk found the care professional's pages
    for rule in pages:
        gate = getattr(gate_app.view_functions[rule.endpoint], GATE, None)
        expected = ("care_professional", rule.rule.startswith("/practice"))
        assert gate == expected, (rule.rule, gate)


def test_every_page_of_a_client_s_records_is_behind_the_gate(gate_app):
    """A /task/.. or /progress view added without ``@client_of_launch`` fails here: that
    decorator hands the view the one way to a Task of the launch's client."""
    pages = [
        r
        for r in gate_app.url_map.iter_rules()
        if r.rule.startswith("/task/") or r.rule == "/progress"
    ]
    assert len(pages) >= 6  # the walk found the client's pages
    for rule in pages:
        gate = getattr(gate_app.view_functions[rule.endpoint], GATE, None)
        assert gate == ("client_of_launch",), (rule.rule, gate)


def test_every_machine_endpoint_is_behind_the_gate(gate_app):
    """Every bearer-token endpoint is ``@backend_caller`` with its scope, and only those."""
    behind = {}
    for endpoint, view in gate_app.view_functions.items():
        gate = getattr(view, GATE, None)
        if gate is not None and gate[0] == "backend_caller":
            behind[endpoint] = gate[1:]
    assert behind == BACKEND_CALLERS
    assert set(BACKEND_CALLERS) <= EXEMPT  # no cookie, so no CSRF token either
