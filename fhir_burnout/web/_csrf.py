"""CSRF protection for the app's forms: a secret per browser session, in every form.

The token lives in the signed session cookie (SameSite=Lax; in an EHR's iframe over https
SameSite=None but Partitioned, so only the framing EHR's site carries it) and in a hidden
field; a POST whose field does not match is refused before anything changes, with a page
that says to try again. Compared in constant time.
"""

from __future__ import annotations

import hmac
import secrets

from flask import request, session

FIELD = "csrf_token"


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
