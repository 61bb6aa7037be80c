"""The gettext catalogues: every message the code uses is there, in Dutch and English, compiled,
and counts are said with the language's plural (README, "Translating")."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from fhir_burnout.web._i18n import LANGUAGES, TRANSLATIONS, translate, translate_n

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "fhir_burnout"
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def extracted() -> dict[str, bool]:
    """What `pybabel extract -F babel.cfg` finds in the package: msgid -> whether it is plural."""
    with (ROOT / "babel.cfg").open(encoding="utf-8") as config:
        method_map, options_map = parse_mapping_cfg(config)
    found: dict[str, bool] = {}
    # No default keywords, as in the Makefile: only our own functions name a message.
    for _, _, message, _, _ in extract_from_dir(PACKAGE, method_map, options_map, keywords={}):
        key = message[0] if isinstance(message, tuple) else message
        found[key] = found.get(key, False) or isinstance(message, tuple)
    return found


def catalogue(text: str, lang: str) -> Catalog:
    return read_po(io.StringIO(text), locale=lang)


def po_text(lang: str) -> str:
    return (TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po").read_text(encoding="utf-8")


def problems(used: dict[str, bool], catalogues: dict[str, Catalog]) -> list[str]:
    """Everything wrong between the messages the code uses and the catalogues, one per line."""
    said: list[str] = []
    for lang, found in catalogues.items():
        held = {m.id[0] if m.pluralizable else m.id: m for m in found if m.id}
        for key, plural in sorted(used.items()):
            message = held.get(key)
            if message is None:
                said.append(f"{lang}: {key} is used in the code but missing")
                continue
            strings = message.string if message.pluralizable else (message.string,)
            if plural != message.pluralizable:
                said.append(f"{lang}: {key} is {'' if plural else 'not '}a plural in the code")
            if message.fuzzy:
                said.append(f"{lang}: {key} is fuzzy (a guess to check, never shown)")
            if not all(strings) or (plural and len(strings) != found.num_plurals):
                said.append(f"{lang}: {key} has an empty or missing translation")
        said += [f"{lang}: {key} is used nowhere (mark it with N_)" for key in held.keys() - used]
    return said


@pytest.fixture(scope="module")
def used() -> dict[str, bool]:
    return extracted()


def test_every_message_the_code_uses_is_translated_in_dutch_and_english(used):
    assert len(used) > 300  # the extraction really read the package and its templates
    catalogues = {lang: catalogue(po_text(lang), lang) for lang in LANGUAGES}
    assert problems(used, catalogues) == []


@pytest.mark.parametrize(
    ("breaking", "said"),
    [
        (lambda po: po.replace('msgstr "Uitloggen"', 'msgstr ""'), "logout has an empty"),
        (lambda po: po.replace('msgid "logout"', '#, fuzzy\nmsgid "logout"'), "logout is fuzzy"),
        (lambda po: po.replace('msgid "logout"\nmsgstr "Uitloggen"\n', ""), "logout is used in"),
        (lambda po: po + '\nmsgid "gone_key"\nmsgstr "Weg"\n', "gone_key is used nowhere"),
        (lambda po: po.replace('msgstr[1] "Nog {n} minuten."', 'msgstr[1] ""'), "timer_minutes"),
    ],
    ids=["empty", "fuzzy", "missing", "unused", "plural-form-empty"],
)
def test_a_broken_dutch_catalogue_is_refused(used, breaking, said):
    broken = breaking(po_text("nl"))
    assert broken != po_text("nl"), "the breaking edit did not apply"
    assert [p for p in problems(used, {"nl": catalogue(broken, "nl")}) if said in p]


def test_the_template_is_what_extraction_finds(used):
    template = (TRANSLATIONS / "messages.pot").read_text(encoding="utf-8")
    ids = {m.id[0] if m.pluralizable else m.id for m in read_po(io.StringIO(template)) if m.id}
    assert ids == set(used), "run `make translations` to extract messages.pot again"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_compiled_catalogue_is_the_po_file_compiled(lang):
    compiled = io.BytesIO()
    write_mo(compiled, catalogue(po_text(lang), lang))
    kept = TRANSLATIONS / lang / "LC_MESSAGES" / "messages.mo"
    assert kept.read_bytes() == compiled.getvalue(), "run `make translations` to compile it"


def test_both_languages_fill_in_the_same_placeholders():
    def names(lang: str) -> dict[str, set[str]]:
        found = {}
        for m in catalogue(po_text(lang), lang):
            strings = m.string if m.pluralizable else (m.string,)
            found[m.id[0] if m.pluralizable else m.id] = {
                name for text in strings for name in PLACEHOLDER.findall(text)
            }
        return found

    dutch, english = names("nl"), names("en")
    assert [key for key in dutch if dutch[key] != english.get(key)] == []


@pytest.mark.parametrize(
    ("key", "lang", "one", "two"),
    [
        ("timer_minutes", "nl", "Nog 1 minuut.", "Nog 2 minuten."),
        ("timer_minutes", "en", "1 minute left.", "2 minutes left."),
        ("about_minutes", "nl", "Ongeveer 1 minuut.", "Ongeveer 2 minuten."),
        ("about_minutes", "en", "About 1 minute.", "About 2 minutes."),
        ("triage_waited_days", "nl", "wacht 1 dag", "wacht 2 dagen"),
        ("triage_waited_days", "en", "waiting 1 day", "waiting 2 days"),
        ("practice_blocked_item", "nl", "1 wijziging wacht.", "2 wijzigingen wachten."),
        ("practice_blocked_item", "en", "1 change waiting.", "2 changes waiting."),
    ],
)
def test_a_count_is_said_with_the_plural_of_the_language(key, lang, one, two):
    assert (translate_n(key, 1, lang), translate_n(key, 2, lang)) == (one, two)


def test_an_unsupported_language_gets_dutch_and_an_unknown_key_is_an_error():
    assert translate("logout", "de") == "Uitloggen"  # an unsupported language: Dutch
    with pytest.raises(KeyError):
        translate("no_such_message", "en")
