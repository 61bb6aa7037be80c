"""CSRF protection for the app's forms: a secret per browser session, in every form.

The token lives in the signed session cookie (SameSite=Lax; in an EHR's iframe over https
SameSite=None but Partitioned, so only the framing EHR's site carries it) and in a hidden
field; a POST whose field does not match is refused before anything changes, with a page
that says to try again. Compared in constant time.

The check is the app's, not each view's: a ``before_request`` hook refuses every POST, PUT,
PATCH and DELETE without the token, so a new form cannot forget it. Only the doors a browser
form of ours never posts to are :func:`csrf_exempt`: the machine endpoints (a bearer token
or a notification, no cookie) and the launches an EHR posts (their ``state``/HTI token is
what binds them, SMART App Launch 2.2 §"EHR launch", Koppeltaal HTI 2.0).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, current_app, request, session
from werkzeug.wrappers import Response

FIELD = "csrf_token"
#: The methods that change something (RFC 9110 §9.2.1: the others are safe).
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

View = TypeVar("View", bound=Callable[..., Any])
_EXEMPT: set[Callable[..., Any]] = set()


def csrf_token() -> str:
    """This session's token, made on first use (templates put it in every form)."""
    token = session.get(FIELD)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session[FIELD] = token
    return token


def csrf_ok() -> bool:
    """Whether the posted form carries this session's token."""
    expected = session.get(FIELD)
    given = request.form.get(FIELD, "")
    return isinstance(expected, str) and hmac.compare_digest(expected, given)


def csrf_exempt(view: View) -> View:
    """Mark a view no browser form of ours posts to (see the module's docstring)."""
    _EXEMPT.add(view)
    return view


def is_exempt(endpoint: str | None) -> bool:
    """Whether the view at ``endpoint`` of the current app takes posts without the token."""
    return current_app.view_functions.get(endpoint or "") in _EXEMPT


def init_app(app: Flask) -> None:
    """Refuse a state-changing request without this session's token before its view runs
    (after the launch handle is known, so the page keeps the tab's launch)."""
    from fhir_burnout.web._render import message_page  # noqa: PLC0415 - _render uses us

    @app.before_request
    def _check_csrf() -> tuple[str, int] | Response | None:
        if request.method not in UNSAFE_METHODS or request.endpoint is None:
            return None  # safe, or no route (404/405 answer for themselves)
        if is_exempt(request.endpoint) or csrf_ok():
            return None
        return message_page("error_form_expired", 400)
