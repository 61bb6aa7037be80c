"""End to end in a real browser: Debian's Chromium driven by Playwright, against the app
served on a real port and the sandbox EHR that trusts it."""

from __future__ import annotations

import pytest
import requests
from sqlalchemy import text

from .conftest import SCREENSHOTS, home_url


def test_ehr_launch_as_a_practitioner(live, page):
    page.goto(f"{live.info.launcher}?app=fhir-burnout&practitioner=prac-1&patient=pat-02")
    page.wait_for_url(home_url(live.app_url))
    assert page.get_by_role("heading", level=1).inner_text() == "Welkom, Mirjam Behandelaar."
    assert "Cliënt: Bram van Proefpersoon" in page.locator(".banner").inner_text()
    assert "geboren 2-2-1972" in page.locator(".banner").inner_text()
    # The clients' crisis help is not on a care professional's pages (issue 21).
    assert page.locator(".crisis").count() == 0
    # The stylesheets apply under the Content-Security-Policy (files of our own origin).
    border = page.locator(".banner").evaluate("e => getComputedStyle(e).borderLeftColor")
    assert border == "rgb(42, 102, 88)"
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    page.screenshot(path=str(SCREENSHOTS / "first-screen-practitioner.png"), full_page=True)


def test_launch_from_the_launcher_page(live, page):
    page.goto(live.info.launcher)
    page.select_option("select[name=practitioner]", "prac-3")
    page.select_option("select[name=patient]", "pat-04")
    page.get_by_role("button", name="Launch").click()
    page.wait_for_url(home_url(live.app_url))
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
    page.wait_for_url(home_url(live.app_url))
    assert "ingelogd met je eigen gegevens" in page.content()  # a portal launch: the patient


@pytest.mark.parametrize("page", ["en-GB"], indirect=True)
def test_standalone_launch_as_a_patient_in_english(live, page):
    page.goto(f"{live.app_url}/login")
    page.get_by_role("button", name="Lotte Oefenaar").click()
    page.wait_for_url(home_url(live.app_url))
    assert page.get_by_role("heading", level=1).inner_text() == "Welcome, Lotte Oefenaar."
    assert page.locator(".banner").count() == 0
    assert "Call 113" in page.locator(".crisis").inner_text()


def test_refresh_after_expiry_keeps_the_client_signed_in(live, page):
    """A client's session outlives its access token (the app asks offline_access for them:
    docs/launch.md); a care professional opens the app again from the chart instead."""
    page.goto(f"{live.info.launcher}?app=fhir-burnout&patient=pat-08&portal=1")
    page.wait_for_url(home_url(live.app_url))
    name = next(p["name"] for p in live.info.seed["patients"] if p["id"] == "pat-08")
    store = live.app.extensions["fhir_burnout"]["store"]
    with store.engine.begin() as db:
        db.execute(text("update launch_session set expires_at = 0"))
    store.forget_lifetimes()  # as the token's running out would have told it
    page.reload()
    assert page.get_by_role("heading", level=1).inner_text() == f"Welkom, {name}."


def test_an_untrusted_iss_in_the_browser_gets_a_readable_page(live, page):
    page.goto(f"{live.app_url}/launch?iss=https%3A%2F%2Fevil.example.org%2Ffhir&launch=x")
    assert page.url.startswith(live.app_url)
    assert "niet gekoppeld" in page.get_by_role("alert").inner_text()
