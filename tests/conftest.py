"""Shared fixtures: the project root, the real programme, a build of it, a CLI runner."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import ipaddress
import json
import re
import shutil
import ssl
import threading
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from cryptography import x509
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from playwright.sync_api import Browser, sync_playwright
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

from fhir_burnout.db import create_db_engine, upgrade
from fhir_burnout.fhir import FhirClient
from fhir_burnout.resources import (
    Programme,
    WrittenPackage,
    build_resources,
    load_programme,
    write_package,
)
from fhir_burnout.sandbox import start_sandbox
from fhir_burnout.settings import Ehr, SafetyPromise, Settings
from fhir_burnout.smart_launch import BackendTokenSource, backend_token
from fhir_burnout.web import create_app
from fhir_burnout.workflow import ResponseRow, TaskRow

from .outbox_load import (
    drop_migrated_schemas,
    migrated_postgres_schema,
    postgres_schema,
    worker_token_source,
)
from .smart_flow import APP, discovery

#: Helper modules with hooks (markers: what a test needs) or with fixtures several test
#: modules use (test modules never import each other, nor fixtures: test_suite_layout.py).
#: They import this conftest, so they are plugins, loaded once it is complete.
pytest_plugins = ["tests.markers", "tests.koppeltaal_launches", "tests.koppeltaal_domain"]

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def programme() -> Programme:
    loaded, problems = load_programme(ROOT)
    assert problems == []
    return loaded


@pytest.fixture(scope="session")
def resources(programme: Programme) -> list[dict]:
    return build_resources(programme)


@pytest.fixture(scope="session")
def built(programme: Programme, resources: list[dict], tmp_path_factory) -> WrittenPackage:
    return write_package(programme, resources, tmp_path_factory.mktemp("dist"))


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def minimal(tmp_path: Path) -> Path:
    """A copy of the smallest valid programme, to break in one place."""
    target = tmp_path / "programme"
    shutil.copytree(FIXTURES / "minimal", target)
    return target


def by_id(resources: list[dict], resource_type: str, resource_id: str) -> dict:
    return next(
        r for r in resources if r["resourceType"] == resource_type and r["id"] == resource_id
    )


@pytest.fixture(scope="session")
def sandbox():
    """One sandbox EHR for the whole run (a real FHIR and SMART authorization server)."""
    with start_sandbox() as info:
        yield info


def tls_context(folder: Path) -> ssl.SSLContext:
    """A server context with a self-signed certificate for localhost and 127.0.0.1."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    hosts = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName(hosts), critical=False)
        .sign(key, hashes.SHA256())
    )
    (folder / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return context


@dataclasses.dataclass(frozen=True)
class LoopbackTls:
    """The app over https on 127.0.0.1: a server context, and its self-signed certificate."""

    context: ssl.SSLContext
    cert: Path


@pytest.fixture(scope="session")
def loopback_tls(tmp_path_factory) -> LoopbackTls:
    """One self-signed certificate for the run, which the KT sandbox's Node trusts."""
    folder = tmp_path_factory.mktemp("loopback-tls")
    return LoopbackTls(tls_context(folder), folder / "cert.pem")


@pytest.fixture(scope="session")
def kt_sandbox(loopback_tls):
    """One sandbox in its Koppeltaal profile for the whole run (--koppeltaal): a KT2 domain
    with the module (Device/fhir-burnout) and the portal (Device/portal) as clients. As the
    reference domain it notifies https endpoints only, so its Node trusts the session's
    loopback certificate (NODE_EXTRA_CA_CERTS): the app is served with it (``domain``)."""
    trust = [("NODE_EXTRA_CA_CERTS", str(loopback_tls.cert))]
    with start_sandbox(koppeltaal=True, extra_env=trust) as info:
        yield info


def kt_token_source(info, client_id: str = "fhir-burnout") -> BackendTokenSource:
    """Backend-services tokens (RS512 private_key_jwt) for a Koppeltaal app of ``info``; the
    scope asked is the app's role, which the domain grants whatever is asked."""
    smart = requests.get(f"{info.fhir_base}/.well-known/smart-configuration", timeout=30)
    client = info.client(client_id)
    return BackendTokenSource(
        smart.json()["token_endpoint"], client_id, client["private_keys"][0],
        " ".join(s for s in client["scope"].split() if s.startswith("system/")), alg="RS512",
    )  # fmt: skip


@pytest.fixture
def kt_fhir(kt_sandbox):
    """The project's FHIR client on the Koppeltaal sandbox, as the module (Device/fhir-burnout)
    with its backend-services token."""
    with FhirClient(kt_sandbox.fhir_base, token_source=kt_token_source(kt_sandbox)) as client:
        yield client


@pytest.fixture(scope="session")
def worker_token(sandbox) -> str:
    """A backend-services token for the sync worker (system/*.cruds)."""
    worker = sandbox.client("fhir-burnout-worker")
    token = backend_token(
        discovery(sandbox)["token_endpoint"],
        "fhir-burnout-worker",
        worker["private_keys"][0],
        "system/*.cruds",
    )
    return token.access_token


@pytest.fixture
def fhir(sandbox):
    """The project's FHIR client on the sandbox, with backend-services tokens (renewed when
    one expires: a long test outlives the 5 minutes a token lasts)."""
    with FhirClient(sandbox.fhir_base, token_source=worker_token_source(sandbox)) as client:
        yield client


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """A fresh, empty database: an SQLite file, or a schema of its own in PostgreSQL. For a
    test that also takes ``engine`` (a migrated database) the PostgreSQL schema comes
    migrated, emptied after an earlier test: migrating one costs more than the test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'app.db'}"
        return
    if "engine" in request.fixturenames:
        with migrated_postgres_schema() as url:
            yield url
        return
    with postgres_schema() as url:
        yield url


def pytest_sessionfinish(session, exitstatus):
    """The migrated schemas kept for reuse are dropped when the tests end (after the last
    test, so no test is blamed for the connection: tests/markers.py)."""
    drop_migrated_schemas()


@pytest.fixture
def engine(database_url):
    """An engine on a migrated fresh database."""
    engine = create_db_engine(database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def client_of(client) -> str:
    """The client a signed-in test browser's forms act on: what the pages' hidden
    ``patient`` field says (the server checks it against the launch)."""
    with client.session_transaction() as kept:
        sid = kept.get("sid")
    row = client.application.extensions["fhir_burnout"]["store"].get(sid) if sid else None
    return row.patient if row is not None and row.patient else ""


def home_url(app_url: str, path: str = "/") -> re.Pattern[str]:
    """A page of the app as a launched browser has it: ``path`` (default the first page
    after a launch), with its query (the launch's own context handle, say)."""
    return re.compile(re.escape(app_url + path) + r"(\?[^#]*)?$")


def path_of(location: str) -> str:
    """A redirect's path, without the launch context handle it carries."""
    return location.split("?ctx=", 1)[0]


def hidden_fields(page: str) -> dict[str, str]:
    """The hidden fields a page's form posts along: the CSRF token and the client it acts
    on, as a browser would send them."""
    found = dict(
        re.findall(r'<input type="hidden" name="(csrf_token|patient)" value="([^"]*)"', page)
    )
    return found


#: What the tests' practice promises and who owns the signals of clients without their own
#: care professional (the sandbox's POH-GGZ, Fatma Praktijkhulp).
PROMISE = SafetyPromise(
    nl="op werkdagen binnen één werkdag", en="within one working day, on working days"
)
SAFETY_OWNER = "PractitionerRole/role-prac-3"
#: The same for a TOML config: the [safety] table, and a line for each [[ehr]].
SAFETY_TOML = f'[safety]\npromise_nl = "{PROMISE.nl}"\npromise_en = "{PROMISE.en}"\n'
SAFETY_OWNER_TOML = f'safety_owner = "{SAFETY_OWNER}"\n'


def configured_ehr(fhir_base, client_id="fhir-burnout", **values):
    """An [[ehr]] as the tests configure one: the app's client ``client_id``, the tests'
    safety owner, and ``values`` (the other ``Ehr`` fields)."""
    return Ehr(fhir_base, client_id, **{"safety_owner": SAFETY_OWNER, **values})


def with_ehr(settings, **values):
    """``settings`` with its first [[ehr]] changed: ``values`` as ``dataclasses.replace``
    takes them (e.g. the worker's client and the practice it writes for)."""
    first, *rest = settings.ehrs
    return dataclasses.replace(settings, ehrs=(dataclasses.replace(first, **values), *rest))


def app_settings(fhir_base, folder, *, database_url=None, base_url=APP):
    """Settings for an app that trusts the EHR at ``fhir_base``; its files in ``folder``."""
    return Settings(
        base_url=base_url,
        database_url=database_url or f"sqlite:///{folder / 'app.db'}",
        secret_key="test-secret-" + (database_url or "sqlite").split(":")[0],
        token_key=Fernet.generate_key().decode(),
        ehrs=(configured_ehr(fhir_base),),
        keys_dir=folder / "keys",
        safety_promise=PROMISE,
    )


@pytest.fixture
def app(sandbox, tmp_path, database_url):
    """The app, trusting the sandbox EHR, on a fresh database."""
    app = create_app(app_settings(sandbox.fhir_base, tmp_path, database_url=database_url))
    yield app
    app.extensions["fhir_burnout"]["engine"].dispose()


# --- a real browser against the app on a real port -------------------------------------

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parent.parent / "dist" / "screenshots"
SCREENSHOTS.mkdir(parents=True, exist_ok=True)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class Live:
    def __init__(self, app_url, info, app):
        self.app_url, self.info, self.app = app_url, info, app


@contextlib.contextmanager
def serving(
    tmp_path_factory,
    name="live",
    configure=lambda settings: settings,
    *,
    tls=None,
    hostname="127.0.0.1",
):
    """The app on a real port and a sandbox whose fhir-burnout client redirects to it;
    ``configure`` may change the app's settings (a practice to write for, say). With ``tls``
    (an ``ssl.SSLContext``) it is served over https; ``hostname`` names the loopback address
    in its URL (``localhost`` is another site than the sandbox's 127.0.0.1)."""
    holder = {}

    def wsgi(environ, start_response):
        return holder["app"](environ, start_response)

    server = make_server("127.0.0.1", 0, wsgi, threaded=True, ssl_context=tls)
    app_url = f"{'https' if tls else 'http'}://{hostname}:{server.server_port}"
    folder = tmp_path_factory.mktemp(name)
    with start_sandbox(app_url=app_url) as info:
        settings = configure(app_settings(info.fhir_base, folder, base_url=app_url))
        holder["app"] = create_app(settings)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield Live(app_url, info, holder["app"])
        finally:
            server.shutdown()
            thread.join(timeout=10)


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """The app on a real port, and a sandbox whose fhir-burnout client redirects to it."""
    with serving(tmp_path_factory) as running:
        yield running


@pytest.fixture(scope="module")
def browser():
    assert CHROMIUM.exists(), "make test installs Debian's chromium for these tests"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser, request):
    locale = getattr(request, "param", "nl-NL")
    context = browser.new_context(locale=locale)
    page = context.new_page()
    yield page
    context.close()


AXE = ROOT / "sandbox" / "node_modules" / "axe-core" / "axe.min.js"
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def phone(browser):
    # bypass_csp only lets the test inject axe-core; the app's own policy stays in force.
    context = browser.new_context(locale="nl-NL", viewport=PHONE, bypass_csp=True)
    page = context.new_page()
    yield page
    context.close()


#: A care professional's screen (issue 21: their pages are checked at a desktop's width).
DESK = {"width": 1280, "height": 800}


@pytest.fixture
def desk(browser):
    """The care professional's browser at a desktop's size (a test file that checks their
    pages on a phone defines its own ``desk``)."""
    context = browser.new_context(locale="nl-NL", viewport=DESK, bypass_csp=True)
    yield context.new_page()
    context.close()


#: axe-core's rule tags for WCAG 2.1 A/AA, and with 2.2 AA (target size, issue 20) added.
WCAG21 = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")
WCAG22 = (*WCAG21, "wcag22aa")


def accessible(
    page, name: str, tags: tuple[str, ...] = WCAG21, *, screenshot: str | None = None
) -> None:
    """axe-core finds no violation of the rules tagged ``tags`` (WCAG 2.1 A/AA unless told);
    a full-page screenshot is kept as ``screenshot`` (default ``journey-<name>.png``)."""
    assert AXE.exists(), "make test installs axe-core with npm ci in sandbox/"
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "async tags => await axe.run(document, {runOnly: {type: 'tag', values: tags}})",
        list(tags),
    )
    problems = [
        {"id": v["id"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"]][:3]}
        for v in result["violations"]
    ]
    assert problems == [], f"{name}: {json.dumps(problems, indent=1)}"
    page.screenshot(path=str(SCREENSHOTS / (screenshot or f"journey-{name}.png")), full_page=True)


def responses_and_alerts(app, task):
    """(responses to ``task``, safety Tasks for the care professional about its client)."""
    with Session(app.extensions["fhir_burnout"]["engine"]) as db:
        enrolment = db.get(TaskRow, task).enrolment_key
        responses = db.scalar(
            select(func.count()).select_from(ResponseRow).where(ResponseRow.task_key == task)
        )
        alerts = db.scalar(
            select(func.count())
            .select_from(TaskRow)
            .where(TaskRow.enrolment_key == enrolment, TaskRow.action_id.startswith("safety:"))
        )
        return responses, alerts
