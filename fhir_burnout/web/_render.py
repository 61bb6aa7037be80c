"""Rendering pages in the person's language."""

from __future__ import annotations

from typing import Any

from flask import Flask, g, render_template, request, session
from flask_babel import Babel

from fhir_burnout.web._csrf import csrf_token
from fhir_burnout.web._i18n import TRANSLATIONS, choose_language, translate, translate_n


def language() -> str:
    """The person's own choice, else the EHR's locale for this session, else the browser's
    preference, else Dutch."""
    accept = [lang for lang, _ in request.accept_languages] if request else []
    return choose_language(session.get("chosen_language") or session.get("locale"), accept)


def init_app(app: Flask) -> None:
    """Flask-Babel with our language choice as its locale selector, so ``get_locale()`` and
    Babel's formatting agree with the pages. Templates keep ``t()``/``tn()`` (below) and do
    not get Jinja's ``_()``: one way to name a message, with ``{placeholders}``."""
    Babel(
        app,
        locale_selector=language,
        default_translation_directories=str(TRANSLATIONS),
        configure_jinja=False,
    )


def render(template: str, *, status: int = 200, **context: Any) -> tuple[str, int]:
    """A template with ``t()`` and ``tn()`` (a count, in its plural) bound to the person's
    language."""
    lang = language()

    def t(key: str, **values: str) -> str:
        return translate(key, lang, **values)

    def tn(key: str, n: int, **values: str) -> str:
        return translate_n(key, n, lang, **values)

    context.setdefault("csrf_token", csrf_token())
    row = g.get("launch_session")
    # The client every form on the page acts on: the server checks it against the launch.
    context.setdefault("acting_for", row.patient if row is not None else None)
    context.setdefault("signed_in_role", row.role if row is not None else None)
    context.setdefault("launch_ctx", g.get("ctx"))  # for GET forms: their query is the form
    if "banner" not in context:
        from fhir_burnout.web._launch import patient_banner  # noqa: PLC0415 - _launch renders

        try:
            context["banner"] = patient_banner()
        except Exception:  # a page (an error page, say) never fails on the banner
            context["banner"] = None
    return render_template(template, lang=lang, t=t, tn=tn, **context), status


def message_page(message_key: str, status: int) -> tuple[str, int]:
    """A readable page with one message (errors, 'please open again')."""
    return render("message.html", status=status, message=translate(message_key, language()))
