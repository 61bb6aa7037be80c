"""A short confirmation after what the client did (a save, a send, "klaar"), on the next page.

Silence after an action hurts someone tired (docs/architecture.md, "web"): the view that
redirects flashes a catalogue key, and base.html says it, in the language of the page that
shows it, as a polite status message (``role=status``), never an alarm.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, flash, get_flashed_messages

from fhir_burnout.web._i18n import translate
from fhir_burnout.web._render import language

#: The flash category of a confirmation (a key); the care professional's notices are texts
#: in Flask's default category (web/_practitioner_pages.py).
CONFIRMATION = "confirmation"


def confirm(key: str) -> None:
    """Say ``key`` (a catalogue key, marked with ``N_``) on the next page."""
    flash(key, CONFIRMATION)


def _confirmations() -> dict[str, Any]:
    def confirmations() -> list[str]:
        """This request's confirmations, in the page's language."""
        lang = language()
        found = get_flashed_messages(category_filter=[CONFIRMATION])
        return [translate(str(key), lang) for key in found]

    return {"confirmations": confirmations}


def init_app(app: Flask) -> None:
    """``confirmations()`` for the templates of ``app``."""
    app.context_processor(_confirmations)
