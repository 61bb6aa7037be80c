"""The pages' stylesheets, scripts and the practice's theme, as cacheable files.

Every page links its CSS and scripts through :func:`asset` (``{{ asset('app.css') }}`` in a
template): the URL carries a hash of the file (``/static/app.css?v=3f2a...``), so a browser
keeps it for a year (``Cache-Control: immutable``) and asks again only when the file changed
and with it its URL. Nothing is inlined: a page stays small and the strict
Content-Security-Policy needs no nonce for styles (``_headers``).

The practice's theme (``settings.theme``, ``fhir_burnout._theme``) is served the same way:
``/theme.css`` sets its two colour tokens over static/app.css's defaults, ``/theme/logo`` is
its logo file, both read once when the app starts: a page reads no file and no database
row for its look.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from flask import Blueprint, Flask, Response, abort, current_app, request, url_for

from fhir_burnout._theme import Theme

__all__ = ["STATIC", "asset", "init_app"]

STATIC = Path(__file__).resolve().parent / "static"
#: A year: the URL changes with the file, so a kept copy is never stale.
FOREVER = "public, max-age=31536000, immutable"

#: Where an app keeps its files' versions (by file name under static/, and the theme's).
VERSIONS = "fhir_burnout.assets"


def _version(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()[:12]


def _versions() -> dict[str, str]:
    found: dict[str, str] = current_app.extensions[VERSIONS]
    return found


def asset(filename: str) -> str:
    """The versioned URL of a file under static/ (or of the theme: ``theme.css``,
    ``theme/logo``); built once, as every URL a page builds (``web/_urls.App``)."""
    version = _versions().get(filename, "")
    if filename == "theme.css":
        return url_for("assets.theme_css", v=version)
    if filename == "theme/logo":
        return url_for("assets.theme_logo", v=version)
    return url_for("static", filename=filename, v=version or None)


def _cached(response: Response, filename: str) -> Response:
    """Kept for a year when the request names the file's current version."""
    if request.args.get("v") == _versions().get(filename):
        response.headers["Cache-Control"] = FOREVER
    else:  # an old or missing version: the browser asks again each time
        response.headers["Cache-Control"] = "no-cache"
    return response


def init_app(app: Flask, theme: Theme) -> None:
    """The ``asset()`` template function, the theme's routes and the files' cache headers."""
    versions = {
        path.relative_to(STATIC).as_posix(): _version(path.read_bytes())
        for path in STATIC.rglob("*")
        if path.is_file()
    }
    css = theme.css().encode()
    logo = theme.logo.read_bytes() if theme.logo else b""
    versions |= {"theme.css": _version(css), "theme/logo": _version(logo)}
    app.extensions[VERSIONS] = versions
    bp = Blueprint("assets", __name__)
    app.jinja_env.globals["asset"] = asset
    app.jinja_env.globals["theme"] = theme

    @bp.get("/theme.css")
    def theme_css() -> Response:
        """The practice's colour tokens (``[theme]``)."""
        return _cached(Response(css, mimetype="text/css"), "theme.css")

    @bp.get("/theme/logo")
    def theme_logo() -> Response:
        """The practice's logo file (``[theme] logo``)."""
        if not logo:
            abort(404)
        return _cached(Response(logo, mimetype=theme.logo_type), "theme/logo")

    app.register_blueprint(bp)

    @app.after_request
    def _static_cache(response: Response) -> Response:
        if request.endpoint == "static" and response.status_code == 200:
            filename = (request.view_args or {}).get("filename", "")
            return _cached(response, str(filename))
        return response
