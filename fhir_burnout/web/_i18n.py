"""Messages in Dutch (default) and English, and choosing the person's language.

The texts live in gettext catalogues, ``web/translations/{nl,en}/LC_MESSAGES/messages.po``
(compiled to ``.mo``), made and checked with Babel: README, "Translating". A message id is a
stable key (``"invite_title"``), not the Dutch text: keys are picked at run time
(``t("phase_" + status)``), safety rules name them, and one Dutch sentence may need two
English ones. Counts go through ``ngettext`` with each language's plural rule.
"""

from __future__ import annotations

import functools
import gettext
from collections.abc import Iterable
from pathlib import Path

LANGUAGES = ("nl", "en")

#: The compiled catalogues, one folder per language (Flask-Babel's layout).
TRANSLATIONS = Path(__file__).resolve().parent / "translations"


def N_(key: str) -> str:  # noqa: N802 - gettext's name for "mark for extraction only"
    """A message key picked at run time, marked so that ``pybabel extract`` finds it."""
    return key


#: Keys the code builds or picks at run time (``t("phase_" + status)``, a view's table of
#: errors): listed here so that extraction, and so the translators and the catalogue test,
#: see them. Grouped by where they are picked.
RUN_TIME_KEYS = (
    # templates: home.html, practitioner.html, koppeltaal_results.html, practitioner_end.html
    N_("welcome_patient"), N_("welcome_practitioner"),
    N_("you_are_patient"), N_("you_are_practitioner"),
    N_("phase_open"), N_("phase_locked"), N_("phase_done"),
    N_("enrolment_active"), N_("enrolment_completed"), N_("enrolment_revoked"),
    N_("measure_start"), N_("measure_weekly"), N_("measure_phase-end"), N_("measure_end"),
    N_("rci_improved"), N_("rci_no-change"), N_("rci_worse"),
    N_("end_finish_title"), N_("end_stop_title"),
    N_("end_happens_ehr_finish"), N_("end_happens_ehr_stop"),
    N_("end_confirm_finish"), N_("end_confirm_stop"),
    N_("triage_priority_routine"), N_("triage_priority_urgent"),
    N_("triage_priority_asap"), N_("triage_priority_stat"),
    N_("practice_blocked_worker-refused"), N_("practice_blocked_no-worker"),
    N_("practice_blocked_no-user"), N_("practice_blocked_user-ended"),
    # programme.html, module.html, _programme_pages: a module's state, why a thing is due
    N_("module_state_todo"), N_("module_state_busy"), N_("module_state_done"),
    N_("module_state_locked"), N_("module_state_unfinished"), N_("module_state_closed"),
    N_("why_phase-start"), N_("why_phase-end"), N_("read_only_paused"), N_("read_only_ended"),
    N_("client_nav_home"), N_("client_nav_progress"),
    # _client_pages: the guided timer's texts
    N_("timer_pause"), N_("timer_resume"), N_("timer_again"),
    N_("timer_paused"), N_("timer_started"), N_("timer_done"),
    N_("guide_breathe_in"), N_("guide_breathe_out"), N_("guide_stopped"),
    # _crisis_pages: the error page by status
    N_("error_page_not_found"), N_("error_page_method"), N_("error_too_large"),
    N_("error_slow_down"), N_("error_page_broken"), N_("error_page_other"),
    # _invite_pages
    N_("invite_code_missing"), N_("invite_not_yours"), N_("invite_accepted"),
    # _koppeltaal_pages: a refused Koppeltaal launch or task
    N_("kt_error_untrusted"), N_("kt_error_launch"), N_("kt_error_unavailable"),
    N_("kt_error_start_again"), N_("kt_error_link"), N_("kt_error_not_yours"),
    N_("kt_error_foreign"), N_("kt_error_task_closed"), N_("kt_error_not_found"),
    N_("kt_error_related_person"),
    # _practitioner_pages: what an action did, or why it could not
    N_("notice_unlock"), N_("notice_pause"), N_("notice_resume"), N_("notice_switch"),
    N_("notice_note"), N_("notice_finish"), N_("notice_stop"), N_("error_action_changed"),
    # _questionnaire_pages: after a safety signal, and an ended session
    N_("safety_not_sent_outage"), N_("safety_not_sent_invalid"), N_("safety_not_sent_saved"),
    N_("safety_practitioner"), N_("safety_promise_routine"), N_("error_expired_saved"),
    # _triage_pages: a decision, or why it was refused
    N_("triage_notice_accept"), N_("triage_notice_decline"),
    N_("triage_note_long"), N_("triage_note_needed"), N_("triage_reason_needed"),
)  # fmt: skip


class _Missing(gettext.NullTranslations):
    """The end of the fallback chain: an unknown key is a bug, as it was with the old dict."""

    def gettext(self, message: str) -> str:
        raise KeyError(message)

    def ngettext(self, msgid1: str, msgid2: str, n: int) -> str:
        raise KeyError(msgid1)


@functools.cache
def _catalogue(lang: str) -> gettext.NullTranslations:
    """The compiled catalogue of ``lang``, read once per process; Dutch behind any other."""
    path = TRANSLATIONS / lang / "LC_MESSAGES" / "messages.mo"
    try:
        with path.open("rb") as compiled:
            found = gettext.GNUTranslations(compiled)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} is missing: run `make translations`") from None
    found.add_fallback(_catalogue(LANGUAGES[0]) if lang != LANGUAGES[0] else _Missing())
    return found


def _supported(lang: str) -> str:
    return lang if lang in LANGUAGES else LANGUAGES[0]


def choose_language(explicit: str | None, accept: Iterable[str]) -> str:
    """The EHR's locale when given, else the browser's first supported language, else Dutch."""
    for candidate in ([explicit] if explicit else []) + list(accept):
        short = (candidate or "").split("-")[0].split("_")[0].lower()
        if short in LANGUAGES:
            return short
    return LANGUAGES[0]


def format_date(value: str | None, lang: str) -> str:
    """A FHIR date the way people write it: 2-2-1972 in Dutch, 2 February 1972 in English."""
    if not value:
        return ""
    parts = value.split("-")
    if len(parts) != 3:
        return value  # a partial date (year or year-month) stays as it is
    year, month, day = (int(p) for p in parts)
    if lang == "en":
        months = ("January", "February", "March", "April", "May", "June", "July", "August",
                  "September", "October", "November", "December")  # fmt: skip
        return f"{day} {months[month - 1]} {year}"
    return f"{day}-{month}-{year}"


def translate(key: str, lang: str, **values: str) -> str:
    """A message in ``lang`` (Dutch when missing), with ``{placeholders}`` filled in."""
    return _catalogue(_supported(lang)).gettext(key).format(**values)


def translate_n(key: str, n: int, lang: str, **values: str) -> str:
    """A message about ``n`` things in ``lang``, in the plural form the language uses for
    ``n`` (gettext ``ngettext``), with ``{n}`` and the other placeholders filled in."""
    return _catalogue(_supported(lang)).ngettext(key, key, n).format(n=str(n), **values)
