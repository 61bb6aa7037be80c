"""The HTI launch against a domain whose authorization service behaves as the Koppeltaal
reference (issue 19, point 1; Koppeltaal-2.0-Authentication-Service, AUTH).

The sandbox's Koppeltaal auth service signs id_tokens as AUTH does: a fresh ``nonce`` of its
own (ours is never echoed) and its URL root, with a trailing slash, as ``iss``. The client's
and the care professional's launches completing against it are in test_koppeltaal_launch.py;
here: what the module does instead of the nonce (one launch per HTI ``jti``, also after the
auth service forgot the ``jti``: AUTH keeps them in process memory), what ``id_token_nonce =
"echo"`` does on such a domain, and a RelatedPerson's launch, refused readably.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fhir_burnout.koppeltaal import (
    HtiToken,
    KoppeltaalTaskRow,
    LaunchContextError,
    ReplayedLaunchError,
    UsedLaunchToken,
    take_launch_token,
)
from fhir_burnout.sandbox import SandboxProcess
from fhir_burnout.settings import Settings
from fhir_burnout.web import create_app
from fhir_burnout.workflow import EnrolmentRow

from .conftest import home_url
from .koppeltaal_launches import (
    AD_BASE,
    LiveApp,
    assign,
    audits,
    claims_of,
    engine_of,
    extension,
    kt_settings,
    launch,
    launch_form,
    publish,
    text_of,
)

DOMAIN = "https://kt.example/fhir"

# --- the id_token's nonce: configured per domain ---------------------------------------------


def test_a_domain_configured_to_echo_our_nonce_refuses_the_references_id_token(
    kt_sandbox, published, tmp_path, database_url
):
    """``id_token_nonce = "echo"`` demands our nonce back, which the reference never gives:
    the launch is refused (unexpected: outcome 8), readably. The default lets it through
    (test_koppeltaal_launch.py)."""
    settings = kt_settings(kt_sandbox, tmp_path, database_url=database_url)
    echo = dataclasses.replace(settings.ehrs[0], id_token_nonce="echo")
    app = create_app(Settings(**{**settings.__dict__, "ehrs": (echo,)}))
    try:
        task = assign(kt_sandbox, published[AD_BASE + "module-body-signals"], "pat-18")
        client = app.test_client()
        answer = launch(client, launch_form(kt_sandbox, task["id"]))
        assert answer.status_code == 401
        assert "Het openen van het programma is niet gelukt" in text_of(answer)
        (event,) = audits(app)
        assert event["outcome"] == "8" and "IdTokenError" in event["outcomeDesc"]
        assert client.get("/").status_code == 401
    finally:
        engine_of(app).dispose()


# --- a RelatedPerson's launch: refused readably ----------------------------------------------


def portal_launch_token(info, **claims):
    """An HTI 2.0 token signed with the portal's key, as the reference portal builds one."""
    key = info.client("portal")["private_keys"][0]
    now = int(time.time())
    body = {
        "iss": "portal", "aud": "Device/fhir-burnout", "jti": str(uuid.uuid4()),
        "iat": now, "exp": now + 300, **claims,
    }  # fmt: skip
    header = {"alg": key["alg"], "kid": key["kid"], "typ": "JWT"}
    return jwt.encode(header, body, RSAKey.import_key(key), algorithms=[key["alg"]])


@pytest.mark.parametrize(
    ("language", "says"),
    [
        ("nl", "niet door een naaste"),
        ("en", "not by a relative or carer"),
    ],
)
def test_a_related_persons_launch_is_refused_readably_and_audited(
    kt_app, kt_sandbox, published, language, says
):
    task = assign(kt_sandbox, published[AD_BASE + "module-values-needs"], "pat-16")
    token = portal_launch_token(
        kt_sandbox,
        sub=f"RelatedPerson/naaste-{uuid.uuid4()}",
        resource=f"Task/{task['id']}",
        definition=task["extension"][0]["valueReference"]["reference"],
        patient="Patient/pat-16",
    )
    client = kt_app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = language  # the browser's language
    answer = launch(client, {"launch": token, "iss": kt_sandbox.fhir_base})
    page = text_of(answer)
    assert answer.status_code == 403 and says in page, page
    reference = answer.headers["X-Request-Id"]
    assert reference in page
    assert "0800-0113" in answer.get_data(as_text=True)  # crisis help, as on every error page
    # TOP-KT-012c: a launch that fails for the user is an AuditEvent (expected: outcome 4)
    # naming the Task, so the portal learns of it.
    (event,) = audits(kt_app)
    assert event["outcome"] == "4" and extension(event, "request-id") == reference
    assert event["entity"][0]["what"]["reference"].startswith(f"Task/{task['id']}")
    assert extension(event, "trace-id") == claims_of(token)["jti"]
    assert client.get("/").status_code == 401  # nobody signed in
    with Session(engine_of(kt_app)) as db:
        assert db.scalars(select(EnrolmentRow).where(EnrolmentRow.patient == "pat-16")).all() == []


# --- one launch per HTI token ----------------------------------------------------------------


def _token(jti="jti-1", exp=None, iss="portal"):
    return HtiToken(jti=jti, exp=exp if exp is not None else time.time() + 300, iss=iss)


def take(engine, *tokens, now=None, fhir_base=DOMAIN):
    """Take ``tokens`` in one transaction, as launches on ``fhir_base`` at ``now``."""
    with Session(engine) as session, session.begin():
        for token in tokens:
            take_launch_token(session, fhir_base, token, now=now)
        return session.scalars(select(func.count()).select_from(UsedLaunchToken)).one()


def test_a_launch_token_is_taken_once_while_it_could_be_valid(engine):
    now = datetime.now(UTC)
    token = _token(exp=now.timestamp() + 300)
    take(engine, token, now=now)
    with pytest.raises(ReplayedLaunchError):
        take(engine, token, now=now + timedelta(seconds=300))
    # The same jti from another launcher, or on another domain, is another token.
    take(engine, dataclasses.replace(token, iss="other"), now=now)
    take(engine, token, now=now, fhir_base="https://other.example/fhir")


def test_a_used_jti_is_forgotten_once_its_token_expired(engine):
    now = datetime.now(UTC)
    token = _token(exp=now.timestamp() + 300)
    take(engine, token, _token("jti-2", now.timestamp() + 30), now=now)
    later = now + timedelta(seconds=300 + 61)  # past exp and the clock leeway
    assert take(engine, _token("jti-3", later.timestamp() + 300), now=later) == 1  # purged
    take(engine, token, now=later)  # no longer refused here: the auth service refuses exp


@pytest.mark.parametrize("token", [_token(jti=None), HtiToken("jti-4", None, "portal")])
def test_a_launch_token_without_jti_or_exp_is_refused(engine, token):
    with pytest.raises(LaunchContextError):
        take(engine, token)


@pytest.fixture(scope="module")
def kt_restartable(tmp_path_factory, resources):
    """The app on a real port, and a Koppeltaal sandbox whose store and keys live in a data
    directory, so it can restart as a domain's auth service does: forgetting the jti's it
    saw (AUTH ``verifiers.py`` keeps ``consumed_jti_tokens`` in process memory)."""
    folder = tmp_path_factory.mktemp("kt-restart")
    with (
        LiveApp() as live,
        SandboxProcess(koppeltaal=True, app_url=live.url, data_dir=folder / "data") as sandbox,
    ):
        app = live.serve(create_app(kt_settings(sandbox.info, folder, base_url=live.url)))
        yield sandbox, live.url, publish(sandbox.info, resources, live.url), app


def test_in_a_browser_a_launch_token_used_again_after_the_domain_forgot_it_is_refused(
    kt_restartable, page
):
    sandbox, app_url, definitions, app = kt_restartable
    info = sandbox.info
    task = assign(info, definitions[AD_BASE + "module-rhythm-self-care"], "pat-21")
    jti = str(uuid.uuid4())
    launch_page = f"{info.portal}/launch?task={task['id']}&as=patient&jti={jti}"
    page.goto(launch_page)
    page.wait_for_url(home_url(app_url), timeout=30_000)  # the first time it works
    page.context.clear_cookies()
    sandbox.stop()
    sandbox.start()  # same URLs, store and keys; the jti's it saw are gone
    before = len(audits(app))
    page.goto(launch_page)  # the portal signs a new token with the same jti: a replay
    page.wait_for_url(f"{app_url}/koppeltaal/callback*", timeout=30_000)
    assert "verlopen of al gebruikt" in page.get_by_role("alert").inner_text()
    assert page.get_by_text("Referentie voor de helpdesk:").is_visible()
    assert "0800-0113" in page.content()
    [event] = audits(app)[before:]
    assert event["outcome"] == "4" and extension(event, "trace-id") == jti
    assert page.goto(f"{app_url}/").status == 401  # nobody was signed in
    with Session(engine_of(app)) as db:  # one enrolment, from the first launch
        assert len(db.scalars(select(KoppeltaalTaskRow)).all()) == 1
