"""What the pages make from the programme's definitions, made once per process.

The definitions do not change while the app runs, so neither do the form model of a
questionnaire in a language, nor a module's text rendered from its Markdown. Building them
was most of the cost of a module page (Markdown) and of a homework page (the form model).
The values are shared between requests and threads and must not be changed by them.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fhir_burnout.questionnaire import FormModel, load_form
from fhir_burnout.web._context import app_context
from fhir_burnout.web._module_screens import Screen, has_links, module_markdown, split_screens
from fhir_burnout.workflow import Definitions


@dataclass(frozen=True)
class ModuleText:
    """A module in one language: title, its screens and each exercise as HTML (links to
    other modules marked, for ``resolve_links``)."""

    title: str
    screens: tuple[Screen, ...]
    exercises: tuple[str, ...]  # the "## Oefening: …" / "## Exercise: …" sections


def _markdown_of(activity: Mapping[str, Any], lang: str) -> tuple[str, str]:
    """The module's title and Markdown in ``lang`` (Dutch when there is no translation)."""
    documents = {
        str(a.get("document", {}).get("language")): a["document"]
        for a in activity.get("relatedArtifact", [])
        if a.get("document", {}).get("contentType") == "text/markdown"
    }
    document = documents.get(lang) or documents.get("nl") or {}
    markdown = base64.b64decode(str(document.get("data", ""))).decode("utf-8")
    return str(document.get("title", activity.get("title", ""))), markdown


def _sections(markdown: str) -> list[str]:
    """The Markdown of each exercise section ("## Oefening: …" / "## Exercise: …")."""
    found, current = [], None
    for line in markdown.splitlines():
        if line.startswith("## "):
            if current is not None:
                found.append("\n".join(current))
            heading = line[3:].lower()
            current = [line] if heading.startswith(("oefening", "exercise")) else None
        elif current is not None:
            current.append(line)
    if current is not None:
        found.append("\n".join(current))
    return found


def current_memo() -> Memo:
    """The running app's memo (``create_app`` makes one per app)."""
    memo: Memo = app_context().memo
    return memo


class Memo:
    """Form models and module texts of one app's definitions, by canonical and language."""

    def __init__(self, definitions: Definitions) -> None:
        self.definitions = definitions
        self._value_sets = {
            str(r["url"]): r
            for r in definitions.by_canonical.values()
            if r.get("resourceType") == "ValueSet"
        }
        # Other modules by the addresses a module text may link them with: the canonical URL
        # of the ActivityDefinition (with its version or without), and the content's file
        # name, as a package built before such links became canonical URLs has them.
        self._module_urls: dict[str, str] = {}
        for key, r in definitions.by_canonical.items():
            if r.get("resourceType") == "ActivityDefinition":
                self._module_urls[key] = self._module_urls[f"{r['id']}.md"] = str(r["url"])
        self._markdown = module_markdown(self._module_of)
        # Plain dicts: a race between two threads builds the same value twice, no harm.
        self._forms: dict[tuple[str, str], FormModel] = {}
        self._modules: dict[tuple[str, str], ModuleText] = {}

    def form(self, canonical: str, lang: str) -> FormModel:
        """The form model of the Questionnaire ``canonical`` in ``lang``."""
        key = (canonical, lang)
        found = self._forms.get(key)
        if found is None:
            questionnaire = dict(self.definitions.by_canonical[canonical])
            found = load_form(questionnaire, lang=lang, value_sets=self._value_sets)
            self._forms[key] = found
        return found

    def _module_of(self, href: str) -> str | None:
        """The canonical URL of the module ``href`` links to, or None (not a module)."""
        return self._module_urls.get(href.split("#", 1)[0])

    def module(self, canonical: str, lang: str) -> ModuleText:
        """The module (ActivityDefinition ``canonical``) in ``lang``, rendered."""
        key = (canonical, lang)
        found = self._modules.get(key)
        if found is None:
            title, markdown = _markdown_of(self.definitions.by_canonical[canonical], lang)
            found = ModuleText(title, self._screens(markdown), self._exercises(markdown))
            self._modules[key] = found
        return found

    def _screens(self, markdown: str) -> tuple[Screen, ...]:
        screens, exercise = [], 0
        for part in split_screens(markdown):
            starts = part.starts and part.heading.lower().startswith(("oefening", "exercise"))
            exercise += starts
            html = self._markdown.render(part.markdown)
            number = exercise if starts else None
            screens.append(Screen(part.heading, html, number, has_links(html)))
        return tuple(screens)

    def _exercises(self, markdown: str) -> tuple[str, ...]:
        return tuple(self._markdown.render(s) for s in _sections(markdown))
