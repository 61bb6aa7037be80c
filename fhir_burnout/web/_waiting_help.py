"""Whom a waiting-list client calls while they wait: they have no care professional of
their own yet, so the texts name the practice (``practice_name`` and ``practice_phone`` in
the ``[[ehr]]`` block), and always the crisis lines first (113, 112), then the GP and the
out-of-hours GP service (huisartsenpost)."""

from __future__ import annotations

from fhir_burnout.errors import ContentError
from fhir_burnout.web._context import app_context
from fhir_burnout.web._i18n import translate


def waiting_help(fhir_base: str, lang: str) -> dict[str, str]:
    """The practice's name and phone for the waiting-list texts, in ``lang``."""
    settings = app_context().settings
    try:
        ehr = settings.ehr(fhir_base)
        name, phone = ehr.practice_name, ehr.practice_phone
    except ContentError:  # no [[ehr]] block for it: the texts still say whom to call
        name, phone = None, None
    name = name or settings.practice_name  # the top-level default for every EHR
    return {
        "practice": name or translate("waiting_help_your_practice", lang),
        "phone": f" ({phone})" if phone else "",
    }
