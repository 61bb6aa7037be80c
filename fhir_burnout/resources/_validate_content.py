"""Checks on the programme's sources: programme.yaml and the module Markdown files."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fhir_burnout.resources._content import PROGRAMME_FILE
from fhir_burnout.resources._guides import check_guides, language_neutral
from fhir_burnout.resources._markdown import FICTION_MARKERS, HEADINGS, MarkdownFacts, inspect
from fhir_burnout.resources._model import (
    KINDS,
    MOMENTS,
    SELF_START,
    UNLOCK_RULES,
    ModuleFile,
    Programme,
    Track,
)
from fhir_burnout.resources._problems import Problem

_SAME_IN_EVERY_LANGUAGE = (
    "code", "phase", "minutes", "kinds", "homework", "homework-daily", "exercises",
    "self-start",
)  # fmt: skip
_REQUIRED_KINDS = ("psycho-education", "exercise", "story")


@dataclass
class _Findings:
    """The problems found in one file, in the order they were found."""

    path: str
    problems: list[Problem] = field(default_factory=list)

    def bad(self, location: str, message: str, fix: str = "") -> None:
        """Note a problem at ``location`` with how to fix it."""
        self.problems.append(Problem(self.path, location, message, fix))

    def need_all(self, langs: tuple[str, ...], text_langs: tuple[str, ...], where: str) -> None:
        """Note each of the programme's languages that a text at ``where`` lacks."""
        for lang in langs:
            if lang not in text_langs:
                self.bad(where, f"no {lang} text", f"add '{lang}: ...' under {where}")


def check_programme(programme: Programme) -> list[Problem]:
    """Problems in programme.yaml: phases, modules, tracks, measures, translations."""
    out = _Findings(PROGRAMME_FILE)
    out.need_all(programme.languages, programme.title.langs(), "title")
    out.need_all(programme.languages, programme.description.langs(), "description")
    owner = _check_phases(out, programme)
    seen_track: set[str] = set()
    for track in programme.tracks:
        where = f"tracks.{track.code}"
        if track.code in seen_track:
            out.bad(where, "track code used twice", "give it a unique code")
        seen_track.add(track.code)
        _check_track(out, programme, track, owner)
    return out.problems


def _check_phases(out: _Findings, programme: Programme) -> dict[str, str]:
    """Check each phase; returns which phase each module belongs to (its first)."""
    seen_phase: set[str] = set()
    owner: dict[str, str] = {}
    for phase in programme.phases:
        where = f"phases.{phase.code}"
        if phase.code in seen_phase:
            out.bad(where, "phase code used twice", "give it a unique code")
        seen_phase.add(phase.code)
        out.need_all(programme.languages, phase.title.langs(), f"{where}.title")
        out.need_all(programme.languages, phase.description.langs(), f"{where}.description")
        if not phase.modules:
            out.bad(where, "phase has no modules", "list its modules")
        for code in phase.modules:
            if code in owner:
                out.bad(
                    f"{where}.modules",
                    f"module '{code}' is also in phase '{owner[code]}'",
                    "a module belongs to one phase",
                )
            owner[code] = phase.code
    return owner


def _check_track(
    out: _Findings, programme: Programme, track: Track, owner: dict[str, str]
) -> None:
    """Check one track: its texts, unlock rule, the modules it takes and its measures."""
    where = f"tracks.{track.code}"
    out.need_all(programme.languages, track.title.langs(), f"{where}.title")
    out.need_all(programme.languages, track.description.langs(), f"{where}.description")
    if track.unlock not in UNLOCK_RULES:
        out.bad(
            f"{where}.unlock",
            f"unknown unlock rule '{track.unlock}'",
            f"use one of: {', '.join(UNLOCK_RULES)}",
        )
    _check_self_start(out, f"{where}.self-start", track.self_start)
    if not track.phases:
        out.bad(where, "track has no phases", "list its phases")
    phase_codes = {p.code for p in programme.phases}
    for phase_code, modules in track.phases:
        if phase_code not in phase_codes:
            out.bad(
                f"{where}.phases.{phase_code}",
                f"unknown phase '{phase_code}'",
                f"use one of: {', '.join(p.code for p in programme.phases)}",
            )
            continue
        for code in modules:
            if owner.get(code) != phase_code:
                out.bad(
                    f"{where}.phases.{phase_code}",
                    f"module '{code}' is not a module of phase '{phase_code}'",
                    "list only modules of that phase (see phases:)",
                )
    questionnaires = {qid for qid, _ in programme.questionnaires}
    for measure in track.measures:
        mwhere = f"{where}.measures.{measure.questionnaire}"
        if measure.questionnaire not in questionnaires:
            out.bad(
                mwhere,
                f"questionnaire '{measure.questionnaire}' does not exist",
                "use the id of a file in questionnaires/",
            )
        for moment in measure.at:
            if moment not in MOMENTS:
                out.bad(
                    f"{mwhere}.at",
                    f"unknown moment '{moment}'",
                    f"use one of: {', '.join(MOMENTS)}",
                )


def check_modules(programme: Programme) -> list[Problem]:
    """Problems in the module files: front matter, sections, links, stories, exercises."""
    problems: list[Problem] = []
    root = Path(programme.root)
    known = {m.code for m in programme.modules} | {c for p in programme.phases for c in p.modules}
    questionnaires = {qid for qid, _ in programme.questionnaires}
    for lang in programme.languages:
        for path in sorted((root / "content" / lang).glob("*.md")):
            if path.stem not in known:
                rel = str(path.relative_to(root))
                problems.append(
                    Problem(
                        rel,
                        "",
                        f"'{path.stem}' is not a module of programme.yaml",
                        "add it to a phase in content/programme.yaml, or remove the file",
                    )
                )
    for module in programme.modules:
        primary = module.files[0]
        for f in module.files:
            problems += _check_file(programme, f, module.phase, questionnaires, known)
            if f is primary:
                continue
            for key in _SAME_IN_EVERY_LANGUAGE:
                if _neutral(key, f.front) != _neutral(key, primary.front):
                    problems.append(
                        Problem(
                            f.path,
                            f"front matter '{key}'",
                            f"differs from {primary.path} "
                            f"({f.front.get(key)!r} vs {primary.front.get(key)!r})",
                            "only the title may differ between languages",
                        )
                    )
    return problems


def _neutral(key: str, front: dict[str, Any]) -> Any:
    """What of front matter ``key`` must be the same in every language (a guided step's
    text is in the file's own language)."""
    value = front.get(key)
    return language_neutral(value) if key == "exercises" else value


def _check_file(
    programme: Programme, f: ModuleFile, phase: str, questionnaires: set[str], modules: set[str]
) -> list[Problem]:
    """Problems in one module file: its front matter, then its sections and links."""
    out = _Findings(f.path)
    front: dict[str, Any] = f.front
    _check_front_matter(out, f, phase, questionnaires)
    facts = inspect(f.body, f.lang, f.body_line)
    _check_sections(out, f, facts)
    _check_exercises(out, front, facts)
    check_guides(front, Path(programme.root), programme.languages, out.bad)
    _check_stories(out, f, facts)
    for line in facts.html_lines:
        out.bad(f"line {line}", "raw HTML is not rendered", "use Markdown instead")
    for line in facts.images:
        out.bad(f"line {line}", "images are not supported in modules", "describe it in words")
    for href, line in facts.links:
        out.problems += _check_link(f, href, line, modules)
    return out.problems


def _check_front_matter(
    out: _Findings, f: ModuleFile, phase: str, questionnaires: set[str]
) -> None:
    """The front matter's code, phase, title, minutes, kinds and homework."""
    front: dict[str, Any] = f.front
    stem = Path(f.path).stem
    if front.get("code") != stem:
        out.bad(
            "front matter 'code'",
            f"is {front.get('code')!r}, not '{stem}'",
            "make code equal the file name",
        )
    if front.get("phase") != phase:
        out.bad(
            "front matter 'phase'",
            f"is {front.get('phase')!r} but programme.yaml puts the module in '{phase}'",
            f"set phase: {phase}",
        )
    if not str(front.get("title") or "").strip():
        out.bad("front matter 'title'", "is missing", "give the module a title")
    minutes = front.get("minutes")
    if not isinstance(minutes, int) or isinstance(minutes, bool) or minutes <= 0:
        out.bad(
            "front matter 'minutes'",
            f"is {minutes!r}",
            "give the estimated minutes as a whole number",
        )
    for kind in front.get("kinds") or []:
        if kind not in KINDS:
            out.bad("front matter 'kinds'", f"unknown kind '{kind}'", f"use: {', '.join(KINDS)}")
    for qid in front.get("homework") or []:
        if qid not in questionnaires:
            out.bad(
                "front matter 'homework'",
                f"questionnaire '{qid}' does not exist",
                "use the id of a file in questionnaires/",
            )
    _check_homework_daily(out, front)
    value = front.get("self-start")
    _check_self_start(out, "front matter 'self-start'", None if value is None else str(value))


def _check_self_start(out: _Findings, where: str, value: str | None) -> None:
    """``self-start``: absent (only a care professional assigns it) or a KT definition topic."""
    if value is not None and value not in SELF_START:
        out.bad(
            where,
            f"unknown value '{value}'",
            f"use one of: {', '.join(SELF_START)}, or leave it out (a care professional"
            " assigns it)",
        )


def _check_homework_daily(out: _Findings, front: dict[str, Any]) -> None:
    """``homework-daily``: days per questionnaire, each one of the module's homework."""
    daily = front.get("homework-daily") or {}
    if not isinstance(daily, dict):
        daily = {}
        out.bad(
            "front matter 'homework-daily'", "is not a mapping", "write {questionnaire-id: days}"
        )
    for qid, days in daily.items():
        if qid not in (front.get("homework") or []):
            out.bad(
                "front matter 'homework-daily'",
                f"'{qid}' is not homework of this module",
                "list it under 'homework' too, or remove it here",
            )
        if not isinstance(days, int) or isinstance(days, bool) or not 2 <= days <= 31:
            out.bad(
                "front matter 'homework-daily'",
                f"{qid}: {days!r} days",
                "give the number of days as a whole number from 2 to 31",
            )


def _check_sections(out: _Findings, f: ModuleFile, facts: MarkdownFacts) -> None:
    """Every heading a known section; the sections those the front matter lists."""
    front: dict[str, Any] = f.front
    kinds = front.get("kinds") or []
    prefixes = ", ".join(f"'## {p}'" for p in HEADINGS.get(f.lang, {}))
    present = []
    for s in facts.sections:
        if s.kind is None:
            out.bad(
                f"line {s.line}",
                f"heading '## {s.heading}' is not a known section",
                f"start it with one of {prefixes}",
            )
            continue
        present.append(s.kind)
    if sorted(set(present)) != sorted(set(kinds)):
        out.bad(
            "front matter 'kinds'",
            f"says {sorted(set(kinds))} but the sections are {sorted(set(present))}",
            "list exactly the kinds of the sections present",
        )
    for kind in _REQUIRED_KINDS:
        if kind not in present:
            out.bad(
                "sections",
                f"no {kind} section",
                f"every module needs psycho-education, an exercise and a story ({prefixes})",
            )
    if ("homework" in present) != bool(front.get("homework")):
        out.bad(
            "front matter 'homework'",
            "a homework section needs a homework questionnaire and the other way round",
            "add 'homework: [id]' or remove the homework section",
        )


def _check_exercises(out: _Findings, front: dict[str, Any], facts: MarkdownFacts) -> None:
    """One front-matter entry with a unique id per exercise section; each named, in steps."""
    exercises = [s for s in facts.sections if s.kind == "exercise"]
    declared = front.get("exercises") or []
    if len(declared) != len(exercises):
        out.bad(
            "front matter 'exercises'",
            f"lists {len(declared)} exercises but the file has {len(exercises)} exercise sections",
            "add one entry (id, minutes, timed) per exercise section, in order",
        )
    ids = [d.get("id") for d in declared if isinstance(d, dict)]
    if len(set(ids)) != len(ids) or not all(ids):
        out.bad(
            "front matter 'exercises'",
            "exercise ids must be present and unique",
            "give each a stable id",
        )
    for s in exercises:
        if not s.title:
            out.bad(
                f"line {s.line}", "exercise heading has no name", f"write '## {s.heading}: <name>'"
            )
        if s.ordered_lists == 0:
            out.bad(
                f"line {s.line}",
                f"exercise '{s.title}' has no numbered steps",
                "write the steps as a numbered list (1. 2. 3.)",
            )


def _check_stories(out: _Findings, f: ModuleFile, facts: MarkdownFacts) -> None:
    """Every story begins by saying, in italics, that it is fictional."""
    marker = FICTION_MARKERS.get(f.lang, "")
    for s in facts.sections:
        if s.kind != "story":
            continue
        if not (s.first_paragraph_emphasised and marker in s.first_paragraph.lower()):
            out.bad(
                f"line {s.line}",
                f"story '{s.title}' does not say it is fictional",
                f"begin it with an italic paragraph containing '{marker}'",
            )


def _check_link(f: ModuleFile, href: str, line: int, modules: set[str]) -> list[Problem]:
    if href.startswith(("https://", "mailto:", "tel:")):
        return []
    if href.startswith("http://"):
        return [Problem(f.path, f"line {line}", f"link '{href}' is not secure", "use https://")]
    target = href.split("#", 1)[0]
    if target.endswith(".md") and "/" not in target:
        if target[:-3] in modules:
            return []
        return [
            Problem(
                f.path,
                f"line {line}",
                f"link '{href}' points to a module that does not exist",
                "link to <code>.md of a module in programme.yaml",
            )
        ]
    return [
        Problem(
            f.path,
            f"line {line}",
            f"link '{href}' cannot be resolved",
            "link to another module as <code>.md, or to a web page with https://",
        )
    ]
