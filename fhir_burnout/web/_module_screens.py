"""A module in short screens (issue 20, point 4): its own ``##`` sections (explanation,
exercise, someone's story, homework), a long one split at its ``###`` headings, so that a
screen holds about :data:`WORDS_PER_SCREEN` words or less; and links to other modules,
which only a request can resolve (to that module's page for this client, or plain text).

Pure: Markdown in, HTML with link markers out (made once per module and language, by the
memo); :func:`resolve_links` fills the markers in for one client.
"""

from __future__ import annotations

import html as html_lib
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any, NamedTuple

from markdown_it import MarkdownIt
from markdown_it.token import Token

#: About what a tired reader takes in on one phone screen or two, at B1.
WORDS_PER_SCREEN = 300

#: Marks a link to another module in rendered HTML until a request resolves it: NUL never
#: comes out of CommonMark rendering (it turns U+0000 into U+FFFD), so content cannot
#: forge one.
_OPEN, _CLOSE = "\x00L", "\x00/L\x00"
_MARKED = re.compile("\x00L([^\x00]*)\x00(.*?)\x00/L\x00", re.DOTALL)
_FENCE = re.compile(r"^\s{0,3}(```|~~~)")


@dataclass(frozen=True)
class Screen:
    """One screen of a module: the ``##`` heading it belongs to and its HTML (with link
    markers when ``links``); ``exercise``: the number of the exercise it starts, if any."""

    heading: str
    html: str
    exercise: int | None
    links: bool


def _words(lines: Sequence[str]) -> int:
    return sum(len(line.split()) for line in lines)


def _split_at(lines: list[str], prefix: str) -> list[list[str]]:
    """``lines`` cut before each line that starts with ``prefix`` (outside fenced code)."""
    parts: list[list[str]] = [[]]
    fenced = False
    for line in lines:
        if _FENCE.match(line):
            fenced = not fenced
        if not fenced and line.startswith(prefix) and parts[-1]:
            parts.append([])
        parts[-1].append(line)
    return [p for p in parts if p]


def _balanced(sizes: Sequence[int], limit: int) -> list[int]:
    """Where to cut a run of parts (their word counts) into as few groups as keep each at
    ``limit`` words or less, the largest group as small as it can be: the start of each
    group after the first. A part over the limit on its own stays one group."""
    n = len(sizes)
    if n <= 1 or sum(sizes) <= limit:
        return []
    best: tuple[int, ...] = tuple(range(1, n))
    for groups in range(max(2, math.ceil(sum(sizes) / limit)), n + 1):
        fits = [
            (max(sum(sizes[a:b]) for a, b in zip((0, *cuts), (*cuts, n), strict=True)), cuts)
            for cuts in combinations(range(1, n), groups - 1)
        ]
        largest, cuts = min(fits)
        if largest <= max(limit, *sizes):
            best = cuts
            break
    return list(best)


class Part(NamedTuple):
    """A screen's Markdown, the text of the ``##`` heading of its section, and whether it
    starts that section (a later part of a long section repeats its heading)."""

    heading: str
    markdown: str
    starts: bool


def split_screens(markdown: str, limit: int = WORDS_PER_SCREEN) -> list[Part]:
    """The module's Markdown as screens. What comes before the first ``##`` opens the first
    screen; a section over ``limit`` words is cut at its ``###`` headings."""
    sections = _split_at(markdown.splitlines(), "## ")
    if len(sections) > 1 and not sections[0][0].startswith("## "):
        sections[1] = sections[0] + sections[1]  # the introduction opens the first section
        sections.pop(0)
    screens: list[Part] = []
    for section in sections:
        heading_line = next((line for line in section if line.startswith("## ")), "")
        heading = heading_line[3:].strip()
        parts = _split_at(section, "### ")
        cuts = _balanced([_words(p) for p in parts], limit)
        for a, b in zip((0, *cuts), (*cuts, len(parts)), strict=True):
            lines = [line for part in parts[a:b] for line in part]
            if a > 0 and heading_line:
                lines = [heading_line, "", *lines]
            screens.append(Part(heading, "\n".join(lines), a == 0))
    return screens


def _link_open(module_of: Callable[[str], str | None]) -> Callable[..., str]:
    def render(
        renderer: Any, tokens: Sequence[Token], idx: int, options: Any, env: dict[str, Any]
    ) -> str:
        token = tokens[idx]
        target = module_of(str(token.attrGet("href") or ""))
        env.setdefault("module_links", []).append(target is not None)
        if target is not None:
            return f"{_OPEN}{target}\x00"
        token.attrJoin("class", "utrecht-link")
        return str(renderer.renderToken(tokens, idx, options, env))

    return render


def _link_close(
    renderer: Any, tokens: Sequence[Token], idx: int, options: Any, env: dict[str, Any]
) -> str:
    if env.get("module_links", [False]).pop():
        return _CLOSE
    return str(renderer.renderToken(tokens, idx, options, env))


#: The NL Design System's classes on what Markdown makes (its own elements, no raw HTML).
_CLASSES = {
    "paragraph_open": "utrecht-paragraph",
    "bullet_list_open": "utrecht-unordered-list",
    "ordered_list_open": "utrecht-ordered-list",
}
_HEADINGS = {"h2": "utrecht-heading-2", "h3": "utrecht-heading-3", "h4": "utrecht-heading-4"}


def _with_class(renderer: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    token = tokens[idx]
    name = _HEADINGS.get(token.tag) if token.type == "heading_open" else _CLASSES[token.type]
    if name:
        token.attrJoin("class", name)
    return str(renderer.renderToken(tokens, idx, options, env))


def module_markdown(module_of: Callable[[str], str | None]) -> MarkdownIt:
    """A renderer for module texts: CommonMark without raw HTML, the NL Design System's
    classes, and a link whose address ``module_of`` knows (another module: its canonical
    URL) marked for :func:`resolve_links`."""
    md = MarkdownIt("commonmark", {"html": False, "linkify": False})
    md.add_render_rule("link_open", _link_open(module_of))
    md.add_render_rule("link_close", _link_close)
    for name in (*_CLASSES, "heading_open"):
        md.add_render_rule(name, _with_class)
    return md


def has_links(html: str) -> bool:
    """Whether rendered module HTML still has links to other modules to resolve."""
    return _OPEN in html


def resolve_links(html: str, href_of: Mapping[str, str]) -> str:
    """Module HTML for one client: a link to another module goes to ``href_of`` its
    canonical URL (that module's page for this client), or is plain text when there is none
    (not in the client's track, or not open yet): never a link that leads nowhere."""
    if _OPEN not in html:
        return html

    def one(found: re.Match[str]) -> str:
        href = href_of.get(found[1])
        if href is None:
            return found[2]
        return f'<a class="utrecht-link" href="{html_lib.escape(href)}">{found[2]}</a>'

    return _MARKED.sub(one, html)
