"""Security headers on every answer, and a size limit on what may be posted.

Content-Security-Policy: only our own origin for everything; the one inline style block
carries a per-response nonce, there is no inline script at all, and only the EHR pages the
practice configured (``frame_ancestors`` per [[ehr]]) may frame a page; none by default,
with ``X-Frame-Options: DENY`` too. HSTS when the app is served over https. Forms and API bodies
larger than ``MAX_BODY`` are refused with 413 before anything is read or stored (the page
or OperationOutcome that says so is ``_crisis_pages``').
"""

from __future__ import annotations

import secrets

from flask import Flask, g, request
from werkzeug.wrappers import Response

from fhir_burnout.web._context import app_context

#: Larger than any questionnaire a person fills in; small enough to refuse abuse cheaply.
MAX_BODY = 512 * 1024


def csp_nonce() -> str:
    """This response's nonce for the inline style block."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return str(g.csp_nonce)


def _style_hashes() -> str:
    """The hashes of style blocks a stored page carries (it cannot carry this response's
    nonce: the stored Koppeltaal results document, ``_koppeltaal_results``)."""
    return "".join(f" {h}" for h in g.get("csp_style_hashes", ()))


def init_app(app: Flask) -> None:
    """Install the headers and the size limit on ``app``."""
    if app.config.get("MAX_CONTENT_LENGTH") is None:  # a deployment may have set its own
        app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    app.jinja_env.globals["csp_nonce"] = csp_nonce
    secure = bool(app.config.get("SESSION_COOKIE_SECURE"))  # set when base_url is https
    framers = app_context(app).settings.framing_origins()
    # Every configured EHR's origins, not only the launch's EHR's: a page (the launch itself,
    # an error) is often served before we know which EHR it is for, and the partitioned
    # cookie already keeps one EHR's framed session from another's (docs/embedding.md).
    ancestors = " ".join(framers) or "'none'"

    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; "
            f"style-src 'self' 'nonce-{csp_nonce()}'{_style_hashes()}; "
            "script-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
            # No page of ours is framed by a site the practice did not name (clickjacking a
            # decision button). CSP Level 2, 7.7.
            f"frame-ancestors {ancestors}"
            # No form-action: a launch posted from our origin is redirected to the EHR's
            # authorization server, and form-action would block that redirect.
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        if not framers:  # X-Frame-Options cannot name several origins: only when none may
            response.headers["X-Frame-Options"] = "DENY"
        if secure:  # behind TLS: browsers never try plain HTTP again for a year
            response.headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
        response.headers["Referrer-Policy"] = "no-referrer"
        if request.path.startswith("/fhir/") or response.mimetype == "text/html":
            response.headers.setdefault("Cache-Control", "no-store")  # health data
        return response
