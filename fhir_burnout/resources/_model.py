"""The content model: the programme, its phases, modules and tracks, as frozen values."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: The kinds of section a module may contain, in the order a module usually has them.
KINDS = ("psycho-education", "exercise", "story", "homework")

#: When a track offers a measure (questionnaire).
MOMENTS = ("start", "weekly", "phase-end", "end")

#: How a phase after the first opens.
UNLOCK_RULES = ("practitioner", "automatic")

#: What a client may start alone, in a Koppeltaal portal (IG 0.16.3 KT2_ActivityDefinition
#: ``topic``, "used to indicate that the activity is intended or suitable for initialization
#: by patients"): a module's or track's ``self-start``. Absent: only a care professional
#: assigns it.
SELF_START = ("self-treatment", "self-assessment")
#: The code system of :data:`SELF_START` (KoppeltaalDefinitionTopic), with its displays.
SELF_START_SYSTEM = "http://vzvz.nl/fhir/CodeSystem/koppeltaal-definition-topic"
SELF_START_DISPLAY = {"self-treatment": "Zelfhulp", "self-assessment": "Zelfstarten"}


@dataclass(frozen=True)
class Text:
    """A text in the primary language with its translations, keyed by language code."""

    values: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, mapping: dict[str, str]) -> Text:
        """Build from a ``{lang: text}`` mapping, keeping its order."""
        return cls(tuple(mapping.items()))

    def get(self, lang: str) -> str | None:
        """The text in ``lang``, or None."""
        return dict(self.values).get(lang)

    def langs(self) -> tuple[str, ...]:
        """The languages this text exists in."""
        return tuple(lang for lang, _ in self.values)


#: Recorded guidance an exercise may carry (``content/audio/<file>``): suffix to media type.
AUDIO_TYPES = {".mp3": "audio/mpeg", ".m4a": "audio/mp4", ".ogg": "audio/ogg", ".wav": "audio/wav"}


@dataclass(frozen=True)
class Step:
    """One instruction of a guided exercise: how long it lasts and what it says, per language.

    ``pace``: during this step the breathing pacer runs (the exercise's ``breathe`` rhythm).
    """

    seconds: int
    text: Text
    pace: bool = False


@dataclass(frozen=True)
class Exercise:
    """An exercise section of a module (front matter entry plus its heading per language)."""

    id: str
    minutes: int
    timed: bool
    title: Text
    #: the guided mode's instructions, one at a time (front matter ``steps``)
    steps: tuple[Step, ...] = ()
    #: seconds in and out for the breathing pacer (front matter ``breathe: {in:, out:}``)
    breathe: tuple[int, int] | None = None
    #: recorded guidance per language: (language, file name in content/audio/)
    audio: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Section:
    """A level-2 section of a module file."""

    kind: str
    heading: str
    line: int


@dataclass(frozen=True)
class ModuleFile:
    """One module in one language: the parsed Markdown file."""

    path: str
    lang: str
    front: dict[str, Any]
    body: str
    body_line: int
    sections: tuple[Section, ...]

    @property
    def title(self) -> str:
        """The module's title in this language."""
        return str(self.front.get("title", ""))


@dataclass(frozen=True)
class Module:
    """A module: one unit of the programme, with its text in each language."""

    code: str
    phase: str
    title: Text
    minutes: int
    kinds: tuple[str, ...]
    homework: tuple[str, ...]
    exercises: tuple[Exercise, ...]
    files: tuple[ModuleFile, ...]
    #: homework offered again each day, with how many days in all (a diary): (id, days)
    homework_daily: tuple[tuple[str, int], ...] = ()
    #: one of :data:`SELF_START` when a client may start the module alone; None: not
    self_start: str | None = None

    def file(self, lang: str) -> ModuleFile | None:
        """The module's file in ``lang``, or None."""
        return next((f for f in self.files if f.lang == lang), None)


@dataclass(frozen=True)
class Phase:
    """A phase of the programme: a titled, ordered group of modules."""

    code: str
    title: Text
    description: Text
    modules: tuple[str, ...]


@dataclass(frozen=True)
class Measure:
    """A questionnaire a track offers at given moments."""

    questionnaire: str
    at: tuple[str, ...]


@dataclass(frozen=True)
class Track:
    """A way into the programme (standard, waiting list, after-care): one PlanDefinition."""

    code: str
    title: Text
    description: Text
    unlock: str
    phases: tuple[tuple[str, tuple[str, ...]], ...]  # (phase code, module codes)
    measures: tuple[Measure, ...]
    #: how many weeks the track's repeating measures run (None: until the programme ends)
    weeks: int | None = None
    #: one of :data:`SELF_START` when a client may start the track alone; None: not
    self_start: str | None = None


@dataclass(frozen=True)
class Programme:
    """The whole programme as loaded from ``content/`` and ``questionnaires/``."""

    root: str
    name: str
    canonical: str
    version: str
    date: str
    publisher: str
    contact: str
    jurisdiction: str
    language: str
    languages: tuple[str, ...]
    licence_id: str
    licence_text: str
    title: Text
    description: Text
    phases: tuple[Phase, ...]
    modules: tuple[Module, ...]
    tracks: tuple[Track, ...]
    questionnaires: tuple[tuple[str, str], ...] = field(default=())  # (id, source path)
    #: Why a referral may be declined (content/triage.yaml): (code, display), published as
    #: a CodeSystem, since the referrer's EHR receives the codes.
    decline_reasons: tuple[tuple[str, Text], ...] = field(default=())

    def module(self, code: str) -> Module | None:
        """The module with ``code``, or None."""
        return next((m for m in self.modules if m.code == code), None)

    def phase_of(self, code: str) -> Phase | None:
        """The phase with ``code``, or None."""
        return next((p for p in self.phases if p.code == code), None)

    def url(self, resource_type: str, resource_id: str) -> str:
        """The canonical URL of one of our artifacts."""
        return f"{self.canonical}/{resource_type}/{resource_id}"
