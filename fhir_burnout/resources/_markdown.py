"""Reading module Markdown: front matter, sections by kind, links, lists and raw HTML.

Uses markdown-it-py (CommonMark) so what we check is what the web app will render.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from markdown_it import MarkdownIt
from markdown_it.token import Token

from fhir_burnout.errors import ContentError

#: Level-2 heading prefixes per language and the section kind each starts.
HEADINGS: dict[str, dict[str, str]] = {
    "nl": {
        "Uitleg": "psycho-education",
        "Oefening": "exercise",
        "Ervaringsverhaal": "story",
        "Huiswerk": "homework",
    },
    "en": {
        "Understanding": "psycho-education",
        "Exercise": "exercise",
        "Experience story": "story",
        "Homework": "homework",
    },
}

#: A story's first paragraph must say it is invented, with this word, per language.
FICTION_MARKERS = {"nl": "verzonnen", "en": "fictional"}

_FRONT = re.compile(r"\A---\n(.*?)\n---\n", re.DOTALL)
#: A link to another module as the content writes it: ``[text](<code>.md)``, perhaps with a
#: ``#part``, inline or as a link reference definition (``[label]: <code>.md``).
_MODULE_LINK = re.compile(
    r"(?P<before>\]\(\s*<?|^[ ]{0,3}\[[^\]]+\]:[ \t]*<?)"
    r"(?P<code>[a-z0-9][a-z0-9-]*)\.md(?P<part>#[^\s)>]*)?(?=[\s)>]|$)",
    re.MULTILINE,
)


def split_front_matter(text: str, path: str) -> tuple[dict[str, Any], str, int]:
    """Split a module file into its YAML front matter, its body and the body's first line."""
    match = _FRONT.match(text)
    if not match:
        raise ContentError(
            path, "line 1", "no front matter; start the file with '---', YAML, then '---'"
        )
    try:
        front = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:
        raise ContentError(path, "front matter", f"invalid YAML: {exc}") from None
    if not isinstance(front, dict):
        raise ContentError(path, "front matter", "must be a YAML mapping (key: value)")
    body_line = match.group(0).count("\n") + 1
    return front, text[match.end() :], body_line


def link_modules(body: str, url_of: dict[str, str]) -> str:
    """``body`` with each link to another module (``body-signals.md``) pointing at that
    module's address in ``url_of`` (its ActivityDefinition's canonical URL) instead, so the
    link means something outside this repository; a module it does not know stays as it is
    (validation reports it)."""

    def one(found: re.Match[str]) -> str:
        url = url_of.get(found["code"])
        if url is None:
            return found[0]
        return f"{found['before']}{url}{found['part'] or ''}"

    return _MODULE_LINK.sub(one, body)


def heading_kind(heading: str, lang: str) -> tuple[str | None, str]:
    """The kind of section a level-2 heading starts and the title after its prefix."""
    for prefix, kind in HEADINGS.get(lang, {}).items():
        if heading == prefix:
            return kind, ""
        if heading.startswith(prefix + ":"):
            return kind, heading[len(prefix) + 1 :].strip()
    return None, heading


@dataclass
class SectionFacts:
    """What a validator needs to know about one level-2 section."""

    heading: str
    kind: str | None
    title: str
    line: int
    ordered_lists: int = 0
    first_paragraph: str = ""
    first_paragraph_emphasised: bool = False
    words: int = 0


@dataclass
class MarkdownFacts:
    """Facts about a module body: its sections, links and raw HTML, with line numbers."""

    sections: list[SectionFacts] = field(default_factory=list)
    links: list[tuple[str, int]] = field(default_factory=list)
    html_lines: list[int] = field(default_factory=list)
    images: list[int] = field(default_factory=list)


def _parser() -> MarkdownIt:
    # html=True only so that raw HTML shows up as tokens we can report; it is never rendered.
    return MarkdownIt("commonmark", {"html": True})


def inspect(body: str, lang: str, first_line: int = 1) -> MarkdownFacts:
    """Parse a module body and collect the facts validation checks."""
    facts = MarkdownFacts()
    tokens = _parser().parse(body)
    current: SectionFacts | None = None
    in_paragraph_of: SectionFacts | None = None
    for i, token in enumerate(tokens):
        line = first_line + (token.map[0] if token.map else 0)
        if token.type == "heading_open" and token.tag == "h2":
            text = tokens[i + 1].content.strip()
            kind, title = heading_kind(text, lang)
            current = SectionFacts(heading=text, kind=kind, title=title, line=line)
            facts.sections.append(current)
        elif token.type == "ordered_list_open" and current is not None:
            current.ordered_lists += 1
        elif token.type in ("html_block", "html_inline"):
            facts.html_lines.append(line)
        elif token.type == "paragraph_open" and current is not None:
            in_paragraph_of = current if not current.first_paragraph else None
        elif token.type == "inline":
            if current is not None:
                current.words += len(token.content.split())
            _inline_facts(token, line, facts)
            if in_paragraph_of is not None:
                in_paragraph_of.first_paragraph = token.content
                children = [c for c in token.children or [] if c.type != "softbreak"]
                in_paragraph_of.first_paragraph_emphasised = bool(children) and (
                    children[0].type in ("em_open", "strong_open")
                    and children[-1].type in ("em_close", "strong_close")
                )
                in_paragraph_of = None
    return facts


def _inline_facts(token: Token, line: int, facts: MarkdownFacts) -> None:
    for child in token.children or []:
        if child.type == "link_open":
            facts.links.append((str(child.attrs.get("href", "")), line))
        elif child.type == "html_inline":
            facts.html_lines.append(line)
        elif child.type == "image":
            facts.images.append(line)
