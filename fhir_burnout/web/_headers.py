"""Security headers on every answer, and a size limit on what may be posted.

Content-Security-Policy: only our own origin for everything; the one inline style block
carries a per-response nonce, and there is no inline script at all. Forms and API bodies
larger than ``MAX_BODY`` are refused with 413 before anything is read or stored.
"""

from __future__ import annotations

import secrets

from flask import Flask, g, request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response

from fhir_burnout.web._render import message_page

#: Larger than any questionnaire a person fills in; small enough to refuse abuse cheaply.
MAX_BODY = 512 * 1024


def csp_nonce() -> str:
    """This response's nonce for the inline style block."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return str(g.csp_nonce)


def init_app(app: Flask) -> None:
    """Install the headers and the size limit on ``app``."""
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    app.jinja_env.globals["csp_nonce"] = csp_nonce

    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; "
            f"style-src 'self' 'nonce-{csp_nonce()}'; "
            "script-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'"
            # No form-action: a launch posted from our origin is redirected to the EHR's
            # authorization server, and form-action would block that redirect.
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        if request.path.startswith("/fhir/") or response.mimetype == "text/html":
            response.headers.setdefault("Cache-Control", "no-store")  # health data
        return response

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(error: RequestEntityTooLarge) -> tuple[str, int]:
        return message_page("error_too_large", 413)
