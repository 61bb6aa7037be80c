"""Embedding in an EHR's iframe (issue 17, point 6): which origins may frame the app, the
cookies a launch inside a cross-site frame needs, and the launch itself in real Chromium."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from fhir_burnout.errors import ContentError
from fhir_burnout.settings import Settings
from fhir_burnout.web import create_app

from .conftest import SAFETY_OWNER, app_settings, configured_ehr, serving, tls_context, with_ehr

EHR_A, EHR_B = "https://ehr-a.example/fhir", "https://ehr-b.example/fhir"


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def framed_by(settings: Settings, *origins: str) -> Settings:
    """``settings`` with each origin allowed to frame the app, for its first EHR."""
    return with_ehr(settings, frame_ancestors=origins)


def by_its_ehr(settings: Settings) -> Settings:
    """``settings`` whose EHR's own pages (its FHIR base's origin) may frame the app."""
    return framed_by(settings, origin_of(settings.ehrs[0].fhir_base))


def config(base_url: str = "https://burnout.example.nl", **ehr: object) -> dict:
    """A parsed config with one EHR; ``ehr`` adds keys to its [[ehr]] block."""
    return {
        "base_url": base_url,
        "secret_key": "s",
        "token_key": "t",
        "safety": {"promise_nl": "binnen een werkdag", "promise_en": "within a working day"},
        "ehr": [
            {"fhir_base": EHR_A, "client_id": "app", "safety_owner": SAFETY_OWNER, **ehr},
        ],
    }


# --- the configuration -------------------------------------------------------------------


def test_frame_ancestors_are_read_per_ehr_as_origins(tmp_path):
    settings = Settings.from_mapping(
        config(frame_ancestors=["https://EHR.example.nl/", "http://127.0.0.1:8080"]),
        base_dir=tmp_path,
        env={},
    )
    assert settings.framing_origins() == ("https://ehr.example.nl", "http://127.0.0.1:8080")
    assert Settings.from_mapping(config(), base_dir=tmp_path, env={}).framing_origins() == ()


@pytest.mark.parametrize(
    "value",
    [
        "https://ehr.example.nl",  # one string, not a list
        ["ehr.example.nl"],  # no scheme
        ["https://ehr.example.nl/fhir"],  # a path: a URL, not an origin
        ["https://ehr.example.nl?x=1"],
        ["https://user@ehr.example.nl"],
        ["https://*.example.nl"],  # no wildcards: the practice names its EHRs
        ["https://ehr.example.nl; script-src *"],  # would write a directive of its own
        ["'self'"],
        ["ftp://ehr.example.nl"],
        ["http://ehr.example.nl"],  # plain http only on this machine (a test EHR)
        ["https://ehr.example.nl:99999"],
        [42],
    ],
)
def test_a_frame_ancestor_that_is_not_an_origin_is_refused_by_name(tmp_path, value):
    with pytest.raises(ContentError, match=r"ehr\[0\]\.frame_ancestors: "):
        Settings.from_mapping(config(frame_ancestors=value), base_dir=tmp_path, env={})


def test_framing_needs_an_https_base_url_except_on_this_machine(tmp_path):
    allowed = config(frame_ancestors=["https://ehr.example.nl"])
    with pytest.raises(ContentError, match=r"frame_ancestors: .*https base_url"):
        Settings.from_mapping(allowed | {"base_url": "http://burnout.example.nl"}, env={})
    for loopback in ("http://127.0.0.1:8000", "http://localhost:8000", "http://[::1]:8000"):
        Settings.from_mapping(allowed | {"base_url": loopback}, base_dir=tmp_path, env={})


# --- the headers and the cookie ----------------------------------------------------------


def two_ehrs(tmp_path: Path, base_url: str, *, framed: bool) -> Settings:
    settings = dataclasses.replace(
        app_settings(EHR_A, tmp_path, base_url=base_url),
        ehrs=(
            configured_ehr(EHR_A, "app", frame_ancestors=("https://a.example",) if framed else ()),
            configured_ehr(
                EHR_B,
                "app",
                frame_ancestors=("https://b.example", "https://a.example") if framed else (),
            ),
        ),
    )
    return settings


def test_every_ehrs_origins_may_frame_the_pages(tmp_path):
    app = create_app(two_ehrs(tmp_path, "https://burnout.example.nl", framed=True))
    answer = app.test_client().get("/hulp", base_url="https://burnout.example.nl")
    policy = answer.headers["Content-Security-Policy"]
    # A page is served before we know which EHR it is for: the union, each origin once.
    assert "frame-ancestors https://a.example https://b.example;" in policy + ";"
    assert "'none'" not in policy.split("frame-ancestors", 1)[1]
    # X-Frame-Options cannot name two origins, and ALLOW-FROM is ignored: it stays out.
    assert "X-Frame-Options" not in answer.headers
    app.extensions["fhir_burnout"]["engine"].dispose()


def test_without_frame_ancestors_no_page_may_be_framed(tmp_path):
    app = create_app(two_ehrs(tmp_path, "https://burnout.example.nl", framed=False))
    answer = app.test_client().get("/hulp", base_url="https://burnout.example.nl")
    assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]
    assert answer.headers["X-Frame-Options"] == "DENY"  # for browsers without CSP level 2
    app.extensions["fhir_burnout"]["engine"].dispose()


def session_cookie(settings: Settings) -> set[str]:
    """The attributes of the session cookie a launch sets, in lower case."""
    app = create_app(settings)
    answer = app.test_client().get("/login", base_url=settings.base_url)
    app.extensions["fhir_burnout"]["engine"].dispose()
    assert answer.status_code == 302, answer.get_data(as_text=True)
    [cookie] = [c for c in answer.headers.getlist("Set-Cookie") if c.startswith("session=")]
    return {part.strip().lower() for part in cookie.split(";")[1:]}


@pytest.mark.parametrize(
    ("base_url", "framed", "expected", "absent"),
    [
        # In a cross-site frame only a SameSite=None cookie comes back; Partitioned (CHIPS)
        # keeps it to this EHR's page, so no other site that frames us shares it.
        ("https://burnout.example.nl", True, {"samesite=none", "secure", "partitioned"}, set()),
        ("https://burnout.example.nl", False, {"samesite=lax", "secure"}, {"partitioned"}),
        ("http://127.0.0.1:8000", True, {"samesite=lax"}, {"secure", "partitioned"}),
    ],
)
def test_the_session_cookie_crosses_sites_only_when_framed_over_https(
    sandbox, tmp_path, base_url, framed, expected, absent
):
    settings = app_settings(sandbox.fhir_base, tmp_path, base_url=base_url)
    attributes = session_cookie(
        framed_by(settings, "https://ehr.example.nl") if framed else settings
    )
    assert expected <= attributes and not absent & attributes, attributes


# --- real Chromium: the EHR's chart page frames the app ----------------------------------


@pytest.fixture(scope="module")
def framed(tmp_path_factory):
    """The app over https at localhost, which the sandbox EHR's chart page may frame: the
    sandbox is at 127.0.0.1, another site, as an EHR's domain is another than the app's."""

    tls = tls_context(tmp_path_factory.mktemp("tls"))
    with serving(tmp_path_factory, "framed", by_its_ehr, tls=tls, hostname="localhost") as running:
        yield running


@pytest.fixture
def chart(browser):
    """A browser tab for the EHR's chart page; it trusts the test's self-signed certificate."""
    context = browser.new_context(locale="nl-NL", ignore_https_errors=True)
    yield context.new_page()
    context.close()


def chart_url(live, patient: str) -> str:
    return f"{live.info.launcher}?app=fhir-burnout&practitioner=prac-1&patient={patient}&frame=1"


def test_a_launch_inside_the_ehrs_cross_site_iframe_reaches_the_home_page(framed, chart):
    assert urlsplit(framed.app_url).hostname != urlsplit(framed.info.launcher).hostname
    chart.goto(chart_url(framed, "pat-02"))
    app = chart.frame_locator("iframe")
    heading = app.get_by_role("heading", level=1)
    expect(heading).to_have_text("Welkom, Mirjam Behandelaar.", timeout=20_000)
    expect(app.locator(".banner")).to_contain_text("Bram van Proefpersoon")
    expect(app.locator(".crisis")).to_have_count(0)  # a care professional's page (issue 21)
    # A form inside the frame posts with its CSRF token (in the session cookie) and works.
    app.get_by_role("button", name="English").click()
    expect(heading).to_have_text("Welcome, Mirjam Behandelaar.", timeout=20_000)


def test_without_frame_ancestors_the_chart_page_shows_no_app(live, chart):
    messages: list[str] = []
    chart.on("console", lambda message: messages.append(message.text))
    chart.goto(chart_url(live, "pat-03"))
    chart.wait_for_load_state("load")
    [frame] = [f for f in chart.frames if f != chart.main_frame]
    assert not frame.url.startswith(live.app_url), frame.url  # Chromium's error page instead
    assert any("frame-ancestors 'none'" in m for m in messages), messages


def test_on_this_machine_over_http_the_chart_page_frames_the_app(tmp_path_factory, chart):
    """The demo's way: the app and the EHR on 127.0.0.1 are one site, so Lax cookies do."""
    with serving(tmp_path_factory, "framed-http", by_its_ehr) as running:
        chart.goto(chart_url(running, "pat-04"))
        heading = chart.frame_locator("iframe").get_by_role("heading", level=1)
        expect(heading).to_have_text("Welkom, Mirjam Behandelaar.", timeout=20_000)
