"""The web gate: what every page of the app answers the same way, in one place instead of
in each view (docs/architecture.md, "web").

A launch session that ended (its authorisation refused, or older than ``SESSION_MAX``) and a
form that names another client than its launch's are signals raised anywhere below a view
(``web._launch``); their pages are the handlers here, so a view only says what it does.
A view that answers them otherwise (a draft kept when the session ended) still catches them.
"""

from __future__ import annotations

from flask import Flask

from fhir_burnout.web._launch import SessionExpired, WrongClient
from fhir_burnout.web._render import message_page

__all__ = ["init_app"]


def _session_expired(_exc: SessionExpired) -> tuple[str, int]:
    return message_page("error_expired", 401)


def _wrong_client(_exc: WrongClient) -> tuple[str, int]:
    return message_page("error_wrong_client", 409)


def init_app(app: Flask) -> None:
    """The pages for the web layer's signals on ``app``."""
    app.register_error_handler(SessionExpired, _session_expired)
    app.register_error_handler(WrongClient, _wrong_client)
