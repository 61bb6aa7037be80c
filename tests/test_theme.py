"""A practice's theme in the settings file (``[theme]``): its name, logo and colours are
checked when the settings are read, so a page that is hard to read never reaches a client;
the stylesheet and logo are served as cacheable files, with no inline style."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fhir_burnout._theme import (
    DEFAULT_BACKGROUND,
    DEFAULT_PRIMARY,
    ON_PRIMARY,
    TEXT,
    Theme,
    contrast,
)
from fhir_burnout.errors import ContentError
from fhir_burnout.settings import Settings
from fhir_burnout.web import create_app

from .conftest import app_settings

APP_CSS = Path(__file__).resolve().parent.parent / "fhir_burnout" / "web" / "static" / "app.css"
LOGO = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><circle r="5"/></svg>'


def settings_with(theme: dict, folder: Path) -> Settings:
    data = {"base_url": "http://127.0.0.1:1", "secret_key": "s", "token_key": "t"}
    return Settings.from_mapping({**data, "theme": theme}, base_dir=folder, env={})


@pytest.mark.parametrize(
    ("theme", "key", "says"),
    [
        ({"primary": "teal"}, "theme.primary", 'as "#rrggbb"'),
        ({"background": "#fff"}, "theme.background", 'as "#rrggbb"'),
        ({"primary": "#88ccee"}, "theme.primary", "on the background #faf6f0: contrast 1.6:1"),
        ({"primary": "#ffd500"}, "theme.primary", "choose a darker colour"),
        ({"background": "#6b7572"}, "theme.background", "choose a lighter colour"),
        ({"background": "#1f2d2b", "primary": "#ffffff"}, "theme.background", "4.5:1"),
        ({"logo": "missing.svg"}, "theme.logo", "is not a file"),
        ({"logo": "https://cdn.example/logo.svg"}, "theme.logo", "is not a file"),
        ({"logo": "logo.gif"}, "theme.logo", "a web address is not taken"),
        ({"logo": "big.png"}, "theme.logo", "larger than 256 kB"),
        ({"colour": "#2a6658"}, "theme.colour", "is not a setting here"),
        ({"primary": 7}, "theme.primary", 'must be a string: a colour as "#rrggbb"'),
    ],
)
def test_a_theme_that_cannot_be_used_or_read_stops_the_app_naming_its_key(
    tmp_path, theme, key, says
):
    (tmp_path / "big.png").write_bytes(b"\x89PNG" + bytes(300 * 1024))
    with pytest.raises(ContentError) as refused:
        settings_with(theme, tmp_path)
    assert f": {key}: " in str(refused.value) and says in str(refused.value)


def test_a_readable_theme_is_taken_with_its_logo_and_the_practice_name_by_default(tmp_path):
    (tmp_path / "linde.svg").write_text(LOGO)
    theme = {"logo": "linde.svg", "primary": "#7A3B69", "background": "#f3f7fb"}
    data = {"practice_name": "Praktijk De Linde"}
    settings = Settings.from_mapping(
        {"base_url": "http://x", "secret_key": "s", "token_key": "t", "theme": theme, **data},
        base_dir=tmp_path,
        env={},
    )
    assert settings.theme == Theme(
        name="Praktijk De Linde",
        logo=tmp_path / "linde.svg",
        primary="#7a3b69",
        background="#f3f7fb",
    )
    assert settings.theme.logo_type == "image/svg+xml"
    assert "--fb-color-primary: #7a3b69;" in settings.theme.css()


def test_without_a_theme_the_default_is_calm_warm_and_readable(tmp_path):
    theme = settings_with({}, tmp_path).theme
    assert theme == Theme() and theme.name is None and theme.logo is None
    assert contrast(TEXT, DEFAULT_BACKGROUND) >= 7  # AAA for body text
    assert contrast(DEFAULT_PRIMARY, DEFAULT_BACKGROUND) >= 4.5
    assert contrast(ON_PRIMARY, DEFAULT_PRIMARY) >= 4.5


def test_app_css_has_the_colours_the_theme_is_checked_against():
    css = APP_CSS.read_text(encoding="utf-8")
    tokens = dict(re.findall(r"(--fb-color-[a-z-]+):\s*(#[0-9a-f]{6});", css))
    assert tokens["--fb-color-text"] == TEXT
    assert tokens["--fb-color-on-primary"] == ON_PRIMARY
    assert tokens["--fb-color-primary"] == DEFAULT_PRIMARY
    assert tokens["--fb-color-background"] == DEFAULT_BACKGROUND


@pytest.mark.parametrize(
    ("a", "b", "ratio"), [("#ffffff", "#000000", 21.0), ("#777777", "#ffffff", 4.48)]
)
def test_contrast_is_the_wcag_ratio(a, b, ratio):
    assert contrast(a, b) == pytest.approx(ratio, abs=0.01)
    assert contrast(b, a) == contrast(a, b)


def test_the_look_is_served_as_versioned_files_kept_for_a_year(tmp_path):
    (tmp_path / "linde.svg").write_text(LOGO)
    settings = app_settings("http://127.0.0.1:9/fhir", tmp_path)
    themed = Theme(name="Praktijk De Linde", logo=tmp_path / "linde.svg", primary="#7a3b69")
    app = create_app(Settings(**{**settings.__dict__, "theme": themed}))
    client = app.test_client()
    page = client.get("/hulp").get_data(as_text=True)
    assert "<style" not in page and "Praktijk De Linde" in page
    links = re.findall(r'(?:href|src)="(/(?:static|theme)[^"]+)"', page)
    assert {link.split("?")[0] for link in links} >= {
        "/static/vendor/utrecht.css", "/static/app.css", "/theme.css", "/theme/logo",
        "/static/unsent.js",
    }  # fmt: skip
    for link in links:
        assert re.search(r"\?v=[0-9a-f]{12}$", link.replace("&amp;", "&")), link
        with client.get(link.replace("&amp;", "&")) as answer:  # a file: closed after
            assert answer.status_code == 200, link
            assert answer.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert client.get("/theme/logo?v=old").headers["Cache-Control"] == "no-cache"
    assert client.get("/theme/logo").mimetype == "image/svg+xml"
    assert b"--fb-color-primary: #7a3b69" in client.get("/theme.css").data
    app.extensions["fhir_burnout"]["engine"].dispose()


def test_without_a_logo_there_is_none_to_fetch(tmp_path):
    app = create_app(app_settings("http://127.0.0.1:9/fhir", tmp_path))
    client = app.test_client()
    assert "/theme/logo" not in client.get("/hulp").get_data(as_text=True)
    assert client.get("/theme/logo").status_code == 404
    app.extensions["fhir_burnout"]["engine"].dispose()
