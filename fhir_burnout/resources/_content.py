"""Loading the programme from ``content/`` and ``questionnaires/`` (no network, no database).

The loader is lenient where it can be: a module file it cannot read becomes a problem and the
rest still loads, so that validation can report every problem at once. Only an unreadable
``programme.yaml`` stops it (:class:`~fhir_burnout.errors.ContentError`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from fhir_burnout import __version__
from fhir_burnout.errors import ContentError
from fhir_burnout.resources._guides import guide_of
from fhir_burnout.resources._markdown import heading_kind, inspect, split_front_matter
from fhir_burnout.resources._model import (
    Exercise,
    Measure,
    Module,
    ModuleFile,
    Phase,
    Programme,
    Section,
    Text,
    Track,
)
from fhir_burnout.resources._problems import Problem

PROGRAMME_FILE = "content/programme.yaml"


def _rel(root: Path, path: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _text(value: Any, file: str, where: str, langs: tuple[str, ...]) -> Text:
    if isinstance(value, str):
        return Text.of({langs[0]: value.strip()})
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ContentError(file, where, "must be a mapping of language to text (nl: ..., en: ...)")
    return Text.of({str(k): v.strip() for k, v in value.items()})


def _require(data: dict[str, Any], key: str, file: str, where: str) -> Any:
    if key not in data:
        raise ContentError(file, where, f"'{key}' is missing")
    return data[key]


def _weeks(value: Any, file: str, where: str) -> int | None:
    """A track's ``duration: {weeks: N}``: how long its repeating measures run."""
    if value is None:
        return None
    weeks = value.get("weeks") if isinstance(value, dict) else None
    if not isinstance(weeks, int) or isinstance(weeks, bool) or weeks < 1:
        raise ContentError(file, where, "must be {weeks: N}, a whole number of weeks above 0")
    return weeks


def load_programme(
    root: str | Path, version: str = __version__
) -> tuple[Programme, list[Problem]]:
    """Load the programme under ``root``; returns it with the problems found while loading."""
    root = Path(root)
    file = PROGRAMME_FILE
    data = _read_programme_file(root / file)
    langs = tuple(str(x) for x in _require(data, "languages", file, ""))
    if not langs:
        raise ContentError(file, "languages", "name at least one language")
    problems: list[Problem] = []
    phases = [
        _phase(raw, f"phases[{i}]", langs)
        for i, raw in enumerate(_require(data, "phases", file, ""))
    ]
    tracks = [
        _track(raw, f"tracks[{i}]", phases, langs)
        for i, raw in enumerate(_require(data, "tracks", file, ""))
    ]
    modules = _load_modules(root, phases, langs, problems)
    programme = _programme(
        data, root, version=version, langs=langs, phases=phases, tracks=tracks,
        modules=modules, problems=problems,
    )  # fmt: skip
    expected = programme.url("CodeSystem", "referral-decline-reason")
    if programme.decline_reasons and _triage_system(root) != expected:
        problems.append(
            Problem(TRIAGE_FILE, "system", "is not the package's CodeSystem", f"use {expected}")
        )
    return programme, problems


def _read_programme_file(path: Path) -> dict[str, Any]:
    """``programme.yaml`` as a mapping; the one file whose problems stop the loader."""
    file = PROGRAMME_FILE
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ContentError(file, "", "not found; is this the project root?") from None
    except OSError as exc:
        raise ContentError(file, "", f"cannot be read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ContentError(file, "", f"invalid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ContentError(file, "", "must be a YAML mapping")
    return data


def _phase(raw: dict[str, Any], where: str, langs: tuple[str, ...]) -> Phase:
    """One of ``phases``: its code, title, description and modules."""
    file = PROGRAMME_FILE
    return Phase(
        code=str(_require(raw, "code", file, where)),
        title=_text(_require(raw, "title", file, where), file, f"{where}.title", langs),
        description=_text(raw.get("description", ""), file, f"{where}.description", langs),
        modules=tuple(str(m) for m in raw.get("modules") or ()),
    )


def _track(raw: dict[str, Any], where: str, phases: list[Phase], langs: tuple[str, ...]) -> Track:
    """One of ``tracks``: the modules it takes from each phase and its measures."""
    file = PROGRAMME_FILE
    track_phases = [
        _track_phase(code, selection, where, phases)
        for code, selection in (raw.get("phases") or {}).items()
    ]
    measures = [
        _measure(m, f"{where}.measures[{j}]") for j, m in enumerate(raw.get("measures") or ())
    ]
    return Track(
        code=str(_require(raw, "code", file, where)),
        title=_text(_require(raw, "title", file, where), file, f"{where}.title", langs),
        description=_text(raw.get("description", ""), file, f"{where}.description", langs),
        unlock=str(raw.get("unlock", "practitioner")),
        phases=tuple(track_phases),
        measures=tuple(measures),
        weeks=_weeks(raw.get("duration"), file, f"{where}.duration"),
        self_start=_self_start(raw.get("self-start")),
    )


def _track_phase(
    code: Any, selection: Any, where: str, phases: list[Phase]
) -> tuple[str, tuple[str, ...]]:
    """A track's choice from one phase: ``all`` its modules, or a list of them."""
    phase = next((p for p in phases if p.code == code), None)
    if selection == "all":
        return str(code), phase.modules if phase else ()
    if isinstance(selection, list):
        return str(code), tuple(str(m) for m in selection)
    raise ContentError(
        PROGRAMME_FILE, f"{where}.phases.{code}", "must be 'all' or a list of modules"
    )


def _measure(raw: dict[str, Any], where: str) -> Measure:
    """One of a track's ``measures``: a questionnaire and when it is taken (one moment or
    a list of them)."""
    at = raw.get("at", [])
    return Measure(
        questionnaire=str(_require(raw, "questionnaire", PROGRAMME_FILE, where)),
        at=(str(at),) if isinstance(at, str) else tuple(str(a) for a in at),
    )


def _programme(
    data: dict[str, Any],
    root: Path,
    *,
    version: str,
    langs: tuple[str, ...],
    phases: list[Phase],
    tracks: list[Track],
    modules: tuple[Module, ...],
    problems: list[Problem],
) -> Programme:
    """The programme from ``programme.yaml``'s own fields and its loaded parts."""
    file = PROGRAMME_FILE
    licence = data.get("content-licence") or {}
    return Programme(
        root=str(root),
        name=str(_require(data, "name", file, "")),
        canonical=str(_require(data, "canonical", file, "")).rstrip("/"),
        version=version,
        date=str(_require(data, "date", file, "")),
        publisher=str(data.get("publisher", "")),
        contact=str(data.get("contact", "")),
        jurisdiction=str(data.get("jurisdiction", "")),
        language=str(data.get("language", langs[0])),
        languages=langs,
        licence_id=str(licence.get("id", "")),
        licence_text=str(licence.get("text", "")).strip(),
        title=_text(_require(data, "title", file, ""), file, "title", langs),
        description=_text(data.get("description", ""), file, "description", langs),
        phases=tuple(phases),
        modules=modules,
        tracks=tuple(tracks),
        questionnaires=tuple(
            (p.stem, _rel(root, p)) for p in sorted((root / "questionnaires").glob("*.json"))
        ),
        decline_reasons=_decline_reasons(root, langs, problems),
    )


#: Referral triage: the exclusion criteria (read by fhir_burnout.referral) and the reasons
#: a referral may be declined, which the package publishes as a CodeSystem.
TRIAGE_FILE = "content/triage.yaml"


def _triage(root: Path) -> dict[str, Any]:
    path = root / TRIAGE_FILE
    if not path.exists():  # a programme without triage content publishes no reasons
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ContentError(TRIAGE_FILE, "", f"invalid YAML: {exc}") from None
    return data if isinstance(data, dict) else {}


def _triage_system(root: Path) -> str:
    return str(_triage(root).get("system", ""))


def _decline_reasons(
    root: Path, langs: tuple[str, ...], problems: list[Problem]
) -> tuple[tuple[str, Text], ...]:
    found = []
    for i, raw in enumerate(_triage(root).get("decline-reasons") or []):
        where = f"decline-reasons[{i}]"
        if not isinstance(raw, dict) or not raw.get("code"):
            problems.append(Problem(TRIAGE_FILE, where, "needs a code"))
            continue
        found.append((str(raw["code"]), _text(raw.get("display", ""), TRIAGE_FILE, where, langs)))
    return tuple(found)


def _load_modules(
    root: Path, phases: list[Phase], langs: tuple[str, ...], problems: list[Problem]
) -> tuple[Module, ...]:
    modules = []
    for phase in phases:
        for code in phase.modules:
            files = []
            for lang in langs:
                path = root / "content" / lang / f"{code}.md"
                rel = _rel(root, path)
                if not path.exists():
                    problems.append(
                        Problem(
                            rel,
                            "",
                            f"module '{code}' has no {lang} text",
                            f"write {rel} (copy the other language's file and translate it)",
                        )
                    )
                    continue
                try:
                    files.append(read_module_file(path, lang, rel))
                except ContentError as exc:
                    problems.append(Problem(exc.file, exc.location, exc.message))
            if files:
                modules.append(_module_from_files(code, phase.code, files))
    return tuple(modules)


def read_module_file(path: Path, lang: str, rel: str) -> ModuleFile:
    """Read one module file: front matter, body and its sections."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ContentError(rel, f"byte {exc.start}", "not UTF-8 text; save it as UTF-8") from None
    front, body, body_line = split_front_matter(text, rel)
    facts = inspect(body, lang, body_line)
    sections = tuple(
        Section(kind=s.kind or "unknown", heading=s.heading, line=s.line) for s in facts.sections
    )
    return ModuleFile(
        path=rel, lang=lang, front=front, body=body, body_line=body_line, sections=sections
    )


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _module_from_files(code: str, phase: str, files: list[ModuleFile]) -> Module:
    # The primary language's file is authoritative for everything but the title.
    first = files[0].front
    exercises = []
    declared = [e for e in first.get("exercises") or () if isinstance(e, dict)]
    for i, raw in enumerate(declared):
        titles = {}
        for f in files:
            headings = [s.heading for s in f.sections if s.kind == "exercise"]
            if i < len(headings):
                titles[f.lang] = heading_kind(headings[i], f.lang)[1]
        exercises.append(
            Exercise(
                id=str(raw.get("id", "")),
                minutes=_int(raw.get("minutes")),
                timed=bool(raw.get("timed", False)),
                title=Text.of(titles),
                **guide_of(i, files),
            )
        )
    return Module(
        code=code,
        phase=phase,
        title=Text.of({f.lang: f.title for f in files}),
        minutes=_int(first.get("minutes")),
        kinds=tuple(str(k) for k in first.get("kinds") or ()),
        homework=tuple(str(h) for h in first.get("homework") or ()),
        exercises=tuple(exercises),
        files=tuple(files),
        homework_daily=tuple(
            (str(qid), days)
            for qid, days in dict(first.get("homework-daily") or {}).items()
            if isinstance(days, int) and not isinstance(days, bool)
        ),
        self_start=_self_start(first.get("self-start")),
    )


def _self_start(value: Any) -> str | None:
    """``self-start`` as written (checked by validation), None when absent."""
    return None if value is None else str(value)
