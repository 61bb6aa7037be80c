"""End to end in a real browser: Debian's Chromium driven by Playwright, against the app
served on a real port and the sandbox EHR that trusts it."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet
from playwright.sync_api import Browser, sync_playwright
from sqlalchemy import text
from werkzeug.serving import make_server

from fhir_burnout.sandbox import start_sandbox
from fhir_burnout.settings import Settings
from fhir_burnout.smart_launch import TrustedEhr
from fhir_burnout.web import create_app

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


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """The app on a real port, and a sandbox whose fhir-burnout client redirects to it."""
    holder = {}

    def wsgi(environ, start_response):
        return holder["app"](environ, start_response)

    server = make_server("127.0.0.1", 0, wsgi, threaded=True)
    app_url = f"http://127.0.0.1:{server.server_port}"
    folder = tmp_path_factory.mktemp("live")
    with start_sandbox(app_url=app_url) as info:
        settings = Settings(
            base_url=app_url,
            database_url=f"sqlite:///{folder / 'app.db'}",
            secret_key="browser-tests",
            token_key=Fernet.generate_key().decode(),
            ehrs=(TrustedEhr(fhir_base=info.fhir_base, client_id="fhir-burnout"),),
            keys_dir=folder / "keys",
        )
        holder["app"] = create_app(settings)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield Live(app_url, info, holder["app"])
        finally:
            server.shutdown()
            thread.join(timeout=10)


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


def test_ehr_launch_as_a_practitioner(live, page):
    page.goto(f"{live.info.launcher}?app=fhir-burnout&practitioner=prac-1&patient=pat-02")
    page.wait_for_url(f"{live.app_url}/")
    assert page.get_by_role("heading", level=1).inner_text() == "Welkom, Mirjam Behandelaar."
    assert "Cliënt: Bram van Proefpersoon" in page.locator(".banner").inner_text()
    assert "geboren 2-2-1972" in page.locator(".banner").inner_text()
    assert "0800-0113" in page.locator(".crisis").inner_text()
    # The page's own style applies under the Content-Security-Policy (nonce on the block).
    border = page.locator(".crisis").evaluate("e => getComputedStyle(e).borderTopColor")
    assert border == "rgb(192, 70, 47)"
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    page.screenshot(path=str(SCREENSHOTS / "first-screen-practitioner.png"), full_page=True)


def test_launch_from_the_launcher_page(live, page):
    page.goto(live.info.launcher)
    page.select_option("select[name=practitioner]", "prac-3")
    page.select_option("select[name=patient]", "pat-04")
    page.get_by_role("button", name="Launch").click()
    page.wait_for_url(f"{live.app_url}/")
    assert "Fatma Praktijkhulp" in page.get_by_role("heading", level=1).inner_text()


def test_launch_via_form_post(live, page):
    response = requests.get(
        live.info.launcher,
        params={"app": "fhir-burnout", "patient": "pat-06"},
        allow_redirects=False,
        timeout=30,
    )
    query = requests.utils.urlparse(response.headers["Location"]).query
    fields = dict(pair.split("=", 1) for pair in query.split("&"))
    iss, launch = requests.utils.unquote(fields["iss"]), requests.utils.unquote(fields["launch"])
    page.goto(f"{live.app_url}/.well-known/jwks.json")  # any page of the app's origin
    page.set_content(
        f'<form method="post" action="{live.app_url}/launch">'
        f'<input type="hidden" name="iss" value="{iss}">'
        f'<input type="hidden" name="launch" value="{launch}">'
        "<button>Open</button></form>"
    )
    page.get_by_role("button", name="Open").click()
    page.wait_for_url(f"{live.app_url}/")
    assert "ingelogd met je eigen gegevens" in page.content()  # a portal launch: the patient


@pytest.mark.parametrize("page", ["en-GB"], indirect=True)
def test_standalone_launch_as_a_patient_in_english(live, page):
    page.goto(f"{live.app_url}/login")
    page.get_by_role("button", name="Lotte Oefenaar").click()
    page.wait_for_url(f"{live.app_url}/")
    assert page.get_by_role("heading", level=1).inner_text() == "Welcome, Lotte Oefenaar."
    assert page.locator(".banner").count() == 0
    assert "Call 113" in page.locator(".crisis").inner_text()


def test_refresh_after_expiry_keeps_the_person_signed_in(live, page):
    page.goto(f"{live.info.launcher}?app=fhir-burnout&practitioner=prac-2&patient=pat-08")
    page.wait_for_url(f"{live.app_url}/")
    store = live.app.extensions["fhir_burnout"]["store"]
    with store.engine.begin() as db:
        db.execute(text("update launch_session set expires_at = 0"))
    page.reload()
    assert page.get_by_role("heading", level=1).inner_text() == "Welkom, Joost Gespreksveld."


def test_an_untrusted_iss_in_the_browser_gets_a_readable_page(live, page):
    page.goto(f"{live.app_url}/launch?iss=https%3A%2F%2Fevil.example.org%2Ffhir&launch=x")
    assert page.url.startswith(live.app_url)
    assert "niet gekoppeld" in page.get_by_role("alert").inner_text()
