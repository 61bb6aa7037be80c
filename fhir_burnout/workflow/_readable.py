"""A QuestionnaireResponse made readable for the care professional: question/answer pairs in
the Questionnaire's order and texts, the client's own words marked as such, and dates
written the way people write them.

Free of Flask; the care professional's language comes in as ``lang``. The client's own
words are the answers they typed (``valueString``: a text or string item without answer
options), which the care professional's pages quote, never paraphrase. A date or a moment
inside an answer (the tension log's "Wanneer was het?", the energy diary's day) is written
as a date (3-2-2026, 3 February 2026), never as the ISO text the response keeps.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from babel.dates import format_date, format_time

from fhir_burnout.questionnaire import FormItem, FormModel
from fhir_burnout.workflow._tables import ResponseRow

_YES_NO = {"nl": ("ja", "nee"), "en": ("yes", "no")}
#: A day as people write it: 3-2-2026 in Dutch, 3 February 2026 in English.
_DAY = {"nl": "d-M-yyyy", "en": "d MMMM yyyy"}


def questionnaire_id(canonical: str) -> str:
    """``.../Questionnaire/<id>|<version>`` to ``<id>``."""
    return canonical.split("|", 1)[0].rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Answer:
    """One question and the client's answer, as text.

    ``own_words``: the client typed it (quoted on the page); ``entry``: which entry of a
    repeating group it belongs to (1, 2, ...: the tension log's moments; 0 outside one)."""

    question: str
    answer: str
    link_id: str = ""
    own_words: bool = False
    entry: int = 0


@dataclass(frozen=True)
class ResponseOverview:
    """A QuestionnaireResponse made readable: its title and question/answer pairs."""

    key: str
    title: str
    authored: datetime
    answers: tuple[Answer, ...]
    #: Who entered it: the client's own reference, or the care professional who filled it
    #: in with the client (its ``author`` when that is not its ``subject``).
    entered_by: str = ""
    by_client: bool = True
    questionnaire: str = ""  # the Questionnaire's id (``tension-log``)

    @property
    def own_words(self) -> tuple[Answer, ...]:
        """The answers the client typed, in order."""
        return tuple(a for a in self.answers if a.own_words)


def written_day(value: date, lang: str) -> str:
    """A day the way people in ``lang`` write it."""
    return str(format_date(value, _DAY.get(lang, _DAY["nl"]), locale=lang))


def written_moment(value: datetime, lang: str) -> str:
    """A day and a time of day (in the moment's own offset: the client's local time)."""
    return f"{written_day(value.date(), lang)} {format_time(value, 'HH:mm', locale=lang)}"


def readable(
    form: FormModel | None, row: ResponseRow, authored: datetime, lang: str
) -> ResponseOverview:
    """A response as question/answer pairs, in the Questionnaire's order and texts
    (``form``: its Questionnaire loaded in ``lang``; None for one we no longer have)."""
    resource = json.loads(row.resource)
    title = form.title if form else questionnaire_id(str(row.questionnaire))
    index = form.index if form else {}
    answers = tuple(_pairs(resource.get("item", []) or [], index, lang, 0))
    author = str((resource.get("author") or {}).get("reference", ""))
    subject = str((resource.get("subject") or {}).get("reference", ""))
    by_client = not author or author == subject or author.startswith("Patient/")
    return ResponseOverview(
        row.key, title, authored, answers, entered_by=author, by_client=by_client,
        questionnaire=questionnaire_id(str(row.questionnaire)),
    )  # fmt: skip


def _pairs(
    items: list[Mapping[str, Any]], index: Mapping[str, FormItem], lang: str, entry: int
) -> Iterator[Answer]:
    counts: dict[str, int] = {}
    for item in items:
        link_id = str(item.get("linkId"))
        form_item = index.get(link_id)
        if form_item is not None and form_item.hidden:
            continue
        # A repeating group at the top: each of its entries is numbered (1, 2, ...).
        if (
            entry == 0
            and form_item is not None
            and form_item.type == "group"
            and form_item.repeats
        ):
            counts[link_id] = counts.get(link_id, 0) + 1
            here = counts[link_id]
        else:
            here = entry
        given = item.get("answer", []) or []
        texts = [t for a in given if (t := _answer_text(form_item, a, lang))]
        if texts:
            question = form_item.text if form_item and form_item.text else item.get("text")
            typed = any(_typed(form_item, a) for a in given)
            yield Answer(str(question or link_id), ", ".join(texts), link_id, typed, here)
        for answer in given:
            yield from _pairs(answer.get("item", []) or [], index, lang, here)
        yield from _pairs(item.get("item", []) or [], index, lang, here)


def _typed(item: FormItem | None, answer: Mapping[str, Any]) -> bool:
    """Whether an answer is the client's own typed words (not a choice, number or date)."""
    if "valueString" not in answer:
        return False
    return item is None or (not item.options and item.type in ("string", "text"))


def _answer_text(item: FormItem | None, answer: Mapping[str, Any], lang: str) -> str:
    key: str
    value: Any
    key, value = next(((k, v) for k, v in answer.items() if k.startswith("value")), ("", ""))
    if not key:
        return ""
    label = _option_label(item, key, value)
    if label is not None:
        return label
    if key == "valueCoding":
        text = str(value.get("display") or value.get("code") or "")
    elif key == "valueBoolean":
        yes, no = _YES_NO.get(lang, _YES_NO["nl"])
        text = yes if value else no
    elif key == "valueQuantity":
        text = f"{_number(value.get('value'))} {value.get('unit', '')}".strip()
    elif key in ("valueDate", "valueDateTime"):
        text = _when(str(value), lang)
    else:
        text = _number(value)
    return text


def _when(value: str, lang: str) -> str:
    """A FHIR date or dateTime as people write it; a partial date (2026-02) stays."""
    try:
        if "T" in value:
            return written_moment(datetime.fromisoformat(value.replace("Z", "+00:00")), lang)
        return written_day(date.fromisoformat(value), lang)
    except ValueError:
        return value


def _option_label(item: FormItem | None, key: str, value: Any) -> str | None:
    """The label the client saw for a chosen option, if the answer is one."""
    for option in item.options if item else ():
        # AnswerOption.value_type names the type ("coding"), the answer its element.
        if option.value_type.lower() != key.removeprefix("value").lower():
            continue
        if key == "valueCoding":
            wanted = (value.get("system"), value.get("code"))
            if (option.value.get("system"), option.value.get("code")) == wanted:
                return option.label
        elif option.value == value:
            return option.label
    return None


def _number(value: Any) -> str:
    if isinstance(value, float | int | Decimal) and not isinstance(value, bool):
        return f"{value:g}" if isinstance(value, float) else str(value)
    return str(value)
