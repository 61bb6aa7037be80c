"""One id per request, on every log line written while it is handled (JSON lines carry it
as ``request_id``, ``fhir_burnout._logging``) and on the pages that quote a reference (the
Koppeltaal error page and its ``X-Request-Id``), so a helpdesk finds the lines of a page.
"""

from __future__ import annotations

import uuid
from contextvars import Token

from flask import Flask, g

from fhir_burnout._logging import request_id

__all__ = ["current_request_id", "init_app"]


def current_request_id() -> str:
    """This request's id (made here when a hook ran before ours, e.g. in a test context)."""
    if "request_id" not in g:
        g.request_id = str(uuid.uuid4())  # a UUID: Koppeltaal's X-Request-Id is one
    return str(g.request_id)


def init_app(app: Flask) -> None:
    """Set the id first thing in every request and clear it at its end: a worker thread
    serves other people's requests next. Installed before every other hook (the rate
    limiter's 429 lines carry it too)."""

    @app.before_request
    def _set_request_id() -> None:
        g.request_id_token = request_id.set(current_request_id())

    @app.teardown_request
    def _clear_request_id(_exc: BaseException | None) -> None:
        token: Token[str | None] | None = g.pop("request_id_token", None)
        if token is not None:
            request_id.reset(token)
