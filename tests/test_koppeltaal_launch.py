"""The Koppeltaal launch in the web app, against the Koppeltaal sandbox, on SQLite and PostgreSQL.

The sandbox's portal assigns a module (a KT2_Task made as Device/portal) and hands out the
launch form (an HTI 2.0 token signed with the portal's key, and ``iss``); Flask's test client
is the browser that posts it to us; requests plays the browser at the domain's authorization
service, which checks the token and signs the person in without a login page. One test runs
the whole path in Chromium: portal → launch → the client's home.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from playwright.sync_api import expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from fhir_burnout.fhir import FhirClient
from fhir_burnout.koppeltaal import KoppeltaalTaskRow, deliver_for
from fhir_burnout.koppeltaal._launch import (
    ForeignTaskError,
    LaunchContextError,
    hti_trace_id,
    relative_reference,
)
from fhir_burnout.koppeltaal._launch import _context as launch_context
from fhir_burnout.settings import Settings
from fhir_burnout.sync import OutboxEntry, Worker
from fhir_burnout.web import create_app
from fhir_burnout.workflow import EnrolmentRow

from .conftest import accessible, configured_ehr, home_url, kt_token_source, path_of
from .koppeltaal_domain import kt_clients
from .koppeltaal_launches import (
    AD_BASE,
    KT,
    WAITING_LIST,
    assign,
    audits,
    claims_of,
    engine_of,
    extension,
    kt_settings,
    launch,
    launch_form,
    text_of,
)
from .smart_flow import APP, follow_to_redirect_uri

STANDARD = "Herstellen van burn-out: Tijdens de behandeling"
PORTAL_TASK = "http://fhir-burnout.example/portal-task"
TASK_CODE = "http://vzvz.nl/fhir/CodeSystem/koppeltaal-task-code"


def queued(app, kind):
    """The operations of the outbox entries of ``kind``."""
    with Session(engine_of(app)) as db:
        entries = db.scalars(select(OutboxEntry).where(OutboxEntry.kind == kind)).all()
    return [op for e in entries for op in json.loads(e.payload)["operations"]]


# --- a launch that goes through --------------------------------------------------------------


def test_a_client_launch_lands_on_their_home_with_the_programme(kt_app, kt_sandbox, published):
    task = assign(kt_sandbox, published[AD_BASE + "module-body-signals"], "pat-03")
    fields = launch_form(kt_sandbox, task["id"])
    client = kt_app.test_client()

    started = client.post("/koppeltaal/launch", data=fields)
    authorize = parse_qs(urlsplit(started.headers["Location"]).query)
    assert authorize["scope"] == ["launch openid fhirUser"]
    assert authorize["aud"] == [kt_sandbox.fhir_base]
    assert authorize["launch"] == [fields["launch"]]
    assert authorize["code_challenge_method"] == ["S256"]
    back = urlsplit(follow_to_redirect_uri(requests.Session(), started.headers["Location"],
                                           f"{APP}/koppeltaal/callback"))  # fmt: skip
    finished = client.get(f"{back.path}?{back.query}")

    assert finished.status_code == 303 and path_of(finished.headers["Location"]) == "/"
    home = client.get("/", headers={"Accept-Language": "nl"})
    page = text_of(home)
    assert home.status_code == 200
    assert "Welkom, Cato de Testgeval." in page
    assert STANDARD in page  # a module assigned on its own: the standard track
    assert "Je zit nu in Fase 1: Herstel via het lichaam." in page
    with Session(engine_of(kt_app)) as db:
        row = db.get(KoppeltaalTaskRow, (kt_sandbox.fhir_base, task["id"]))
        assert row is not None and row.patient == "Patient/pat-03"
        enrolment = db.get(EnrolmentRow, row.enrolment_key)
        assert (enrolment.patient, enrolment.track) == ("pat-03", "standard")
    # The client started: the portal's Task goes in progress (through the outbox).
    assert [(op["task_id"], op["status"]) for op in queued(kt_app, "koppeltaal-task")] == [
        (task["id"], "in-progress")
    ]
    (event,) = audits(kt_app)
    assert event["outcome"] == "0"
    assert event["entity"][0]["what"]["reference"] == (
        f"Task/{task['id']}/_history/{task['meta']['versionId']}"
    )
    assert extension(event, "trace-id") == claims_of(fields["launch"])["jti"]
    # The domain's NOOP token is kept nowhere: the session holds no access token at all.
    store = kt_app.extensions["fhir_burnout"]["store"]
    with client.session_transaction() as cookie:
        sid = cookie["sid"]
    assert store.access_token(store.get(sid)) == ""


def test_a_track_assigned_in_the_portal_enrols_the_client_in_that_track(
    kt_app, kt_sandbox, published
):
    task = assign(kt_sandbox, published[AD_BASE + "track-waiting-list"], "pat-05")
    client = kt_app.test_client()
    assert path_of(launch(client, launch_form(kt_sandbox, task["id"])).headers["Location"]) == "/"
    page = text_of(client.get("/", headers={"Accept-Language": "nl"}))
    assert WAITING_LIST in page and STANDARD not in page


def test_launching_the_same_task_again_enrols_once(kt_app, kt_sandbox, published):
    task = assign(kt_sandbox, published[AD_BASE + "module-perfectionism"], "pat-06")
    for _ in range(2):
        client = kt_app.test_client()
        assert launch(client, launch_form(kt_sandbox, task["id"])).status_code == 303
    with Session(engine_of(kt_app)) as db:
        enrolments = db.scalars(select(EnrolmentRow).where(EnrolmentRow.patient == "pat-06"))
        assert len(enrolments.all()) == 1
        assert len(db.scalars(select(KoppeltaalTaskRow)).all()) == 1
    assert [e["outcome"] for e in audits(kt_app)] == ["0", "0"]


def test_a_practitioner_launch_lands_on_the_practitioner_view(kt_app, kt_sandbox, published):
    task = assign(kt_sandbox, published[AD_BASE + "module-boundaries"], "pat-08", "prac-2")
    client = kt_app.test_client()
    finished = launch(client, launch_form(kt_sandbox, task["id"], "practitioner"))
    assert finished.status_code == 303 and path_of(finished.headers["Location"]) == "/practitioner"
    view = client.get("/practitioner", headers={"Accept-Language": "nl"})
    assert view.status_code == 200
    assert STANDARD in text_of(view)
    home = client.get("/", headers={"Accept-Language": "nl"})
    assert "Welkom, Joost Gespreksveld." in text_of(home)
    assert queued(kt_app, "koppeltaal-task") == []  # a care professional opening it starts nothing
    assert [e["outcome"] for e in audits(kt_app)] == ["0"]
    # The domain is the practice: its care professionals see its list. Names come with the
    # module's backend token (Koppeltaal gives no user-level access: the token is NOOP).
    practice = client.get("/practice", headers={"Accept-Language": "nl"})
    assert practice.status_code == 200
    assert "(pat-08)" in text_of(practice) and "Cliënt pat-08" not in text_of(practice)


def test_a_practitioner_opens_a_view_subtask_of_the_clients_task(kt_app, kt_sandbox, published):
    main = assign(kt_sandbox, published[AD_BASE + "module-values-needs"], "pat-09")
    view = view_subtask(kt_sandbox, main, "pat-09")
    client = kt_app.test_client()
    finished = launch(client, launch_form(kt_sandbox, view["id"], "practitioner"))
    assert path_of(finished.headers["Location"]) == "/practitioner"
    with Session(engine_of(kt_app)) as db:  # the main Task is the assignment, not the view
        (row,) = db.scalars(select(KoppeltaalTaskRow)).all()
    assert row.task_id == main["id"]
    (event,) = audits(kt_app)
    assert event["entity"][0]["what"]["reference"].startswith(f"Task/{view['id']}/_history/")


def view_subtask(info, main, patient):
    """A ``view`` subtask of ``main`` (made as the portal, straight on the FHIR server)."""
    task = {
        "resourceType": "Task",
        "meta": {"profile": [KT + "KT2Task"]},
        "extension": [e for e in main["extension"] if e["url"].endswith("/instantiates")],
        "identifier": [{"system": PORTAL_TASK, "value": str(uuid.uuid4())}],
        "status": "ready",
        "intent": "order",
        "priority": "routine",
        "code": {"coding": [{"system": TASK_CODE, "code": "view"}]},
        "partOf": [{"reference": f"Task/{main['id']}"}],
        "for": {"reference": f"Patient/{patient}"},
        "owner": {"reference": f"Patient/{patient}"},
        "requester": {"reference": "Practitioner/prac-1"},
    }
    with FhirClient(info.fhir_base, token_source=kt_token_source(info, "portal")) as portal:
        return portal.create(task)


# --- refused launches: a readable page with a reference, and an AuditEvent -------------------


def assert_refused(app, response, *, status, says, outcome="4"):
    """A readable Dutch page with the request id as reference; the same id in the queued
    AuditEvent; nobody signed in."""
    page = text_of(response)
    assert response.status_code == status
    assert "Location" not in response.headers
    assert says in page
    reference = response.headers["X-Request-Id"]
    assert f"Referentie voor de helpdesk: {reference}" in page
    assert "Traceback" not in page and "error" not in page.lower()
    event = audits(app)[-1]
    assert event["outcome"] == outcome and event["outcomeDesc"]
    assert extension(event, "request-id") == reference
    return event


# The domain's auth service refuses a bad launch token itself: as the reference does (AUTH
# e6383ae ``oauth_server/views.py``), with a plain 400 at /authorize; the person stays there
# and we never hear of it, so there is nothing for us to show or audit.
REFERENCE_REFUSAL = "Bad Request, invalid launch token"


def refused_at_the_domain(client, fields):
    """Post the launch form to us, then follow our redirect to the domain's /authorize: the
    domain's answer (not followed further)."""
    started = client.post("/koppeltaal/launch", data=fields)
    assert started.status_code == 303, started.get_data(as_text=True)
    return requests.get(started.headers["Location"], allow_redirects=False, timeout=30)


def test_an_expired_launch_token_is_refused_by_the_domain(kt_app, kt_sandbox, published):
    task = assign(kt_sandbox, published[AD_BASE + "module-body-signals"], "pat-10")
    client = kt_app.test_client()
    answer = refused_at_the_domain(client, launch_form(kt_sandbox, task["id"], expired="1"))
    assert answer.status_code == 400 and "Location" not in answer.headers
    assert answer.text == REFERENCE_REFUSAL
    assert audits(kt_app) == []
    assert client.get("/").status_code == 401
    with Session(engine_of(kt_app)) as db:
        assert db.scalars(select(KoppeltaalTaskRow)).all() == []


def test_a_replayed_launch_token_is_refused_by_the_domain(kt_app, kt_sandbox, published):
    task = assign(kt_sandbox, published[AD_BASE + "module-body-signals"], "pat-11")
    jti = str(uuid.uuid4())
    assert (
        launch(kt_app.test_client(), launch_form(kt_sandbox, task["id"], jti=jti)).status_code
        == 303
    )
    client = kt_app.test_client()
    answer = refused_at_the_domain(client, launch_form(kt_sandbox, task["id"], jti=jti))
    assert answer.status_code == 400 and answer.text == REFERENCE_REFUSAL
    assert [e["outcome"] for e in audits(kt_app)] == ["0"]  # the first launch only
    assert client.get("/").status_code == 401


def test_a_refusal_sent_back_to_our_callback_is_readable_and_audited(
    kt_app, kt_sandbox, published
):
    """A domain whose auth service does send its refusal back (RFC 6749 §4.1.2.1; the reference
    does not, nor does the sandbox any more): the callback gets ``error`` with the launch's own
    ``state``, as such a domain would send it. The person gets our readable page, and the
    launch its AuditEvent with the HTI jti as trace id."""
    task = assign(kt_sandbox, published[AD_BASE + "module-body-signals"], "pat-10")
    fields = launch_form(kt_sandbox, task["id"])
    client = kt_app.test_client()
    started = client.post("/koppeltaal/launch", data=fields)
    (state,) = parse_qs(urlsplit(started.headers["Location"]).query)["state"]
    answer = client.get(
        "/koppeltaal/callback",
        query_string={
            "error": "access_denied",
            "error_description": "launch token expired",
            "state": state,
        },
    )
    event = assert_refused(kt_app, answer, status=403, says="verlopen of al gebruikt")
    assert extension(event, "trace-id") == claims_of(fields["launch"])["jti"]
    assert client.get("/").status_code == 401
    with Session(engine_of(kt_app)) as db:
        assert db.scalars(select(KoppeltaalTaskRow)).all() == []


@pytest.mark.parametrize("as_", ["patient", "practitioner"])
def test_a_task_for_another_patient_is_refused(kt_app, kt_sandbox, published, as_):
    task = assign(kt_sandbox, published[AD_BASE + "module-effort-recovery"], "pat-12")
    client = kt_app.test_client()
    answer = launch(client, launch_form(kt_sandbox, task["id"], as_, patient="pat-13"))
    assert_refused(kt_app, answer, status=403, says="hoort bij iemand anders")
    assert client.get("/").status_code == 401
    with Session(engine_of(kt_app)) as db:
        assert db.scalars(select(EnrolmentRow)).all() == []


def test_a_view_subtask_of_another_patients_task_is_refused(kt_app, kt_sandbox, published):
    main = assign(kt_sandbox, published[AD_BASE + "module-values-needs"], "pat-14")
    view = view_subtask(kt_sandbox, main, "pat-15")  # for pat-15, part of pat-14's Task
    answer = launch(kt_app.test_client(), launch_form(kt_sandbox, view["id"], "practitioner"))
    assert_refused(kt_app, answer, status=403, says="hoort bij iemand anders")


@pytest.fixture(scope="module")
def foreign_definition(kt_sandbox, published):
    """An ActivityDefinition of another vendor (KT2PublisherId) on the domain."""
    with FhirClient(kt_sandbox.fhir_base, token_source=kt_token_source(kt_sandbox)) as client:
        ours = client.read("ActivityDefinition", published[AD_BASE + "module-body-signals"])
        theirs = {k: v for k, v in ours.items() if k not in ("id", "meta", "text")}
        theirs["meta"] = {"profile": ours["meta"]["profile"]}
        theirs["url"] = f"https://andere-leverancier.example/ActivityDefinition/{uuid.uuid4()}"
        theirs["extension"] = [
            {**e, "valueId": "andere-leverancier"} if e["url"] == KT + "KT2PublisherId" else e
            for e in ours["extension"]
            if e["url"] != KT + "resource-origin"
        ]
        return client.create(theirs)


def test_a_foreign_definition_is_refused(kt_app, kt_sandbox, foreign_definition):
    task = assign(kt_sandbox, foreign_definition["id"], "pat-16")
    client = kt_app.test_client()
    answer = launch(client, launch_form(kt_sandbox, task["id"]))
    assert_refused(kt_app, answer, status=403, says="niet voor dit programma bedoeld")
    assert client.get("/").status_code == 401


def test_a_launch_token_naming_a_foreign_definition_is_refused(
    kt_app, kt_sandbox, published, foreign_definition
):
    task = assign(kt_sandbox, published[AD_BASE + "module-body-signals"], "pat-17")
    fields = launch_form(kt_sandbox, task["id"], definition=foreign_definition["id"])
    answer = launch(kt_app.test_client(), fields)
    assert_refused(kt_app, answer, status=403, says="niet voor dit programma bedoeld")


# --- what the launch routes refuse before the domain is asked --------------------------------


def test_a_launch_by_get_is_refused_with_405(kt_app, kt_sandbox):
    answer = kt_app.test_client().get(
        "/koppeltaal/launch", query_string={"launch": "x", "iss": kt_sandbox.fhir_base}
    )
    assert answer.status_code == 405 and answer.headers["Allow"] == "POST"
    assert "Open de taak opnieuw" in text_of(answer)
    assert audits(kt_app) == []


@pytest.mark.parametrize("iss", ["https://evil.example.org/fhir", ""])
def test_an_unknown_domain_gets_a_readable_page_and_no_redirect(kt_app, iss):
    answer = kt_app.test_client().post("/koppeltaal/launch", data={"launch": "x.y.z", "iss": iss})
    assert answer.status_code == 400 and "Location" not in answer.headers
    assert "niet via Koppeltaal" in text_of(answer)
    assert audits(kt_app) == []  # there is no domain to tell


def test_a_smart_ehr_cannot_be_launched_the_koppeltaal_way(kt_sandbox, tmp_path):
    settings = kt_settings(kt_sandbox, tmp_path)
    smart = configured_ehr(kt_sandbox.fhir_base)  # mode smart
    app = create_app(Settings(**{**settings.__dict__, "ehrs": (smart,)}))
    answer = app.test_client().post(
        "/koppeltaal/launch", data={"launch": "x.y.z", "iss": kt_sandbox.fhir_base}
    )
    assert answer.status_code == 400 and "niet via Koppeltaal" in text_of(answer)
    app.extensions["fhir_burnout"]["engine"].dispose()


def test_a_launch_without_a_token_is_refused_and_audited(kt_app, kt_sandbox):
    answer = kt_app.test_client().post("/koppeltaal/launch", data={"iss": kt_sandbox.fhir_base})
    assert_refused(kt_app, answer, status=400, says="Open de taak opnieuw")


def test_a_callback_without_its_launch_is_refused(kt_app):
    answer = kt_app.test_client().get("/koppeltaal/callback?code=abc&state=unknown")
    assert answer.status_code == 400
    assert "Open de taak opnieuw" in text_of(answer)
    assert "Referentie voor de helpdesk" in text_of(answer)


# --- the protocol pieces on their own --------------------------------------------------------


def test_the_trace_id_is_the_launch_tokens_jti_when_it_is_a_fhir_id():
    def token(claims):
        body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        return f"eyJhbGciOiJSUzUxMiJ9.{body}.sig"

    assert hti_trace_id(token({"jti": "5e0c-11.ab"})) == "5e0c-11.ab"
    assert hti_trace_id(token({"jti": "not a <fhir> id"})) is None
    assert hti_trace_id(token({})) is None
    assert hti_trace_id("garbage") is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Task/abc", "Task/abc"),
        ("http://x.example/fhir/Task/abc/_history/3", "Task/abc"),
        ("Patient/abc", None),
        ("Task/", None),
        (None, None),
    ],
)
def test_references_are_read_relative_and_of_the_expected_type(value, expected):
    assert relative_reference(value, "Task") == expected


def test_a_client_launching_for_someone_else_is_refused_from_the_context_alone():
    with pytest.raises(ForeignTaskError):
        launch_context(
            {"resource": "Task/t", "definition": "ActivityDefinition/a", "patient": "Patient/p",
             "sub": "Patient/q"},
            {},
        )  # fmt: skip
    with pytest.raises(LaunchContextError):
        launch_context({"definition": "ActivityDefinition/a", "sub": "Patient/p"}, {})


# --- the whole path in a browser -------------------------------------------------------------


def test_in_a_browser_the_portal_launch_lands_the_client_on_their_home(kt_live, page):
    app_url, info, definitions, _ = kt_live
    task = assign(info, definitions[AD_BASE + "module-tension-relaxation"], "pat-04")
    page.goto(f"{info.portal}/launch?task={task['id']}&as=patient")
    page.wait_for_url(home_url(app_url), timeout=30_000)
    assert page.get_by_role("heading", level=1).inner_text() == "Welkom, Daan Oefenaar."
    assert page.get_by_role("heading", name=STANDARD).is_visible()
    assert page.get_by_text("Je zit nu in Fase 1").is_visible()


def test_in_a_browser_a_refused_launch_shows_a_readable_accessible_page(kt_live, phone):
    app_url, info, definitions, _ = kt_live
    task = assign(info, definitions[AD_BASE + "module-effort-recovery"], "pat-07")
    phone.goto(f"{info.portal}/launch?task={task['id']}&as=patient&patient=pat-08")
    phone.wait_for_url(f"{app_url}/koppeltaal/callback*", timeout=30_000)
    assert "hoort bij iemand anders" in phone.get_by_role("alert").inner_text()
    assert phone.get_by_text("Referentie voor de helpdesk:").is_visible()
    accessible(phone, "koppeltaal-refused")


@pytest.mark.parametrize("case", ["expired", "replayed"])
def test_in_a_browser_a_broken_launch_ends_at_the_domains_refusal(kt_live, page, case):
    """The domain refuses an expired or replayed launch token at /authorize, as the reference
    does: the person sees its plain 400 there, never a failure of ours."""
    app_url, info, definitions, app = kt_live
    task = assign(info, definitions[AD_BASE + "module-effort-recovery"], "pat-22")
    knobs = "&expired=1" if case == "expired" else f"&jti={uuid.uuid4()}"
    launch_page = f"{info.portal}/launch?task={task['id']}&as=patient{knobs}"
    if case == "replayed":
        page.goto(launch_page)
        page.wait_for_url(home_url(app_url), timeout=30_000)  # the first time it works
        page.context.clear_cookies()
    before = len(audits(app))
    statuses = {}
    page.on("response", lambda r: statuses.setdefault(urlsplit(r.url).path, r.status))
    page.goto(launch_page)
    page.wait_for_url(f"{info.issuer}/authorize*", timeout=30_000)
    page.wait_for_load_state()
    assert page.locator("body").inner_text().strip() == REFERENCE_REFUSAL
    assert statuses["/koppeltaal/launch"] == 303  # ours: on to the domain, no error
    assert statuses[urlsplit(info.issuer).path + "/authorize"] == 400
    assert audits(app)[before:] == []  # we never heard of it
    assert page.goto(f"{app_url}/").status == 401  # nobody was signed in


def test_in_a_browser_a_module_assigned_in_the_portal_is_done_and_completed_on_the_server(
    kt_live, page
):
    """The issue's whole path: a care professional assigns a module in the portal, the client
    launches it by HTI, finishes it, and the portal's Task is completed on the server, with
    the launch and the status changes in the audit trail."""
    app_url, info, definitions, app = kt_live
    module = definitions[AD_BASE + "module-understanding-burnout"]
    page.goto(info.portal)
    page.get_by_label("Behandelaar / Practitioner").select_option("prac-2")
    page.get_by_label("Cliënt / Client").select_option("pat-11")
    page.get_by_label("Module").select_option(module)
    page.get_by_role("button", name="Toewijzen / Assign").click()
    with FhirClient(info.fhir_base, token_source=kt_token_source(info)) as domain:
        [task] = [
            t for t in domain.search("Task", {"patient": "Patient/pat-11"})
            if t["status"] == "ready"
        ]  # fmt: skip
        row = page.locator("tr", has_text=f"Task/{task['id']}")
        row.get_by_role("button", name="Start als cliënt / Start as client").click()
        page.wait_for_url(home_url(app_url), timeout=30_000)
        page.get_by_role("link", name="Wat is burn-out?").click()
        while page.get_by_role("link", name="Verder", exact=True).count():  # its last screen
            page.get_by_role("link", name="Verder", exact=True).click()
        page.get_by_role("button", name="Klaar met deze module").click()
        page.wait_for_url(home_url(app_url), timeout=30_000)
        expect(page.get_by_text(re.compile(r"^1 van de \d+ modules gedaan"))).to_be_visible()
        # The worker delivers what Koppeltaal allows: the Task's status, and AuditEvents.
        settings = app.extensions["fhir_burnout"]["settings"]
        engine = app.extensions["fhir_burnout"]["engine"]
        clients = kt_clients(settings)
        try:
            delivery = deliver_for(settings, engine, clients.get)
            worker = Worker(engine, clients.get, deliver_for=delivery)
            while worker.run_once():
                pass
        finally:
            clients.close()
        done = domain.read("Task", task["id"])
        assert done["status"] == "completed"
        assert "input" not in done and "output" not in done
        trail = [
            e for e in domain.search("AuditEvent", {"_count": "200"})
            if any(str(x.get("what", {}).get("reference", "")).startswith(f"Task/{task['id']}")
                   for x in e.get("entity", []))
        ]  # fmt: skip
    kinds = [(e["type"].get("code"), e.get("outcome")) for e in trail]
    assert ("110100", "0") in kinds  # the launch, with success
    assert sum(code == "rest" for code, _ in kinds) >= 2  # in-progress, then completed
    assert all(e["agent"][0]["who"]["reference"] == "Device/fhir-burnout" for e in trail)


def _foreign_copy(info, definition_id):
    """Another vendor's ActivityDefinition on the domain ``info`` (a copy of one of ours
    under another KT2PublisherId and url)."""
    with FhirClient(info.fhir_base, token_source=kt_token_source(info)) as client:
        ours = client.read("ActivityDefinition", definition_id)
        theirs = {k: v for k, v in ours.items() if k not in ("id", "meta", "text")}
        theirs["meta"] = {"profile": ours["meta"]["profile"]}
        theirs["url"] = f"https://andere-leverancier.example/ActivityDefinition/{uuid.uuid4()}"
        theirs["extension"] = [
            {**e, "valueId": "andere-leverancier"} if e["url"] == KT + "KT2PublisherId" else e
            for e in ours["extension"]
            if e["url"] != KT + "resource-origin"
        ]
        return client.create(theirs)


@pytest.mark.parametrize("case", ["another-patient", "foreign-definition"])
def test_in_a_browser_each_refused_launch_shows_a_readable_page_and_is_audited(
    kt_live, page, case
):
    app_url, info, definitions, app = kt_live
    module = definitions[AD_BASE + "module-rhythm-self-care"]
    knobs = ""
    if case == "foreign-definition":
        module = _foreign_copy(info, module)["id"]
    task = assign(info, module, "pat-19")
    if case == "another-patient":
        knobs = "&patient=pat-20"
    before = len(audits(app))
    page.goto(f"{info.portal}/launch?task={task['id']}&as=patient{knobs}")
    page.wait_for_url(f"{app_url}/koppeltaal/callback*", timeout=30_000)
    says = {
        "another-patient": "hoort bij iemand anders",
        "foreign-definition": "niet voor dit programma bedoeld",
    }[case]
    assert says in page.get_by_role("alert").inner_text()
    assert page.get_by_text("Referentie voor de helpdesk:").is_visible()
    assert "0800-0113" in page.content()  # crisis help, as on every page a client sees
    [event] = audits(app)[before:]
    assert event["outcome"] == "4" and event["outcomeDesc"]
    assert page.goto(f"{app_url}/").status == 401  # nobody was signed in
