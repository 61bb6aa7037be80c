"""Every page a client can reach, found by following the links, as issue 20 asks: a crawl
from the client's home finds no link of ours that answers 4xx or 5xx; axe-core finds no
WCAG 2.2 A/AA violation on any client page type, at phone size; every tap target on every
questionnaire page is at least 44 x 44 px with each radio on one line with its label.

The client is the demo's Daan (pat-04), seven weeks in: phase 1 done, phase 2 open, answers,
diaries and look-backs behind him, homework and questionnaires open, so every kind of
client page has something on it."""

from __future__ import annotations

import re
from datetime import date
from urllib.parse import urlparse

from fhir_burnout.demo import enrol_demo_patients

from .browser_checks import tap_targets_and_rows
from .conftest import PHONE, WCAG22, accessible, home_url

#: A page's type: its path with Task keys and numbers taken out (``/task/<key>/form``).
_KEY = re.compile(r"/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def page_type(url: str) -> str:
    return re.sub(r"/\d+(?=/|$)", "/<n>", _KEY.sub("/<key>", urlparse(url).path))


def links_of(page, origin: str) -> set[str]:
    """The page's links to our own site, without their fragment."""
    hrefs = page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)")
    return {h.split("#", 1)[0] for h in hrefs if urlparse(h).netloc == origin}


def test_every_page_a_client_reaches_answers_is_accessible_and_fits_a_finger(live, browser):
    state = live.app.extensions["fhir_burnout"]
    enrol_demo_patients(
        state["engine"], state["definitions"], live.info.fhir_base, today=date.today()
    )
    context = browser.new_context(locale="nl-NL", viewport=PHONE, bypass_csp=True)
    page = context.new_page()
    page.goto(f"{live.info.launcher}?app=fhir-burnout&patient=pat-04&portal=1")
    page.wait_for_url(home_url(live.app_url))
    origin = urlparse(live.app_url).netloc
    queue, seen, checked, forms = [page.url], {page.url}, {}, []
    while queue:
        url = queue.pop(0)
        answer = page.goto(url)
        assert answer is not None and answer.status < 400, f"{url} answered {answer.status}"
        kind = page_type(url)
        form = kind.endswith("/form")
        if kind not in checked or form:  # each kind of page once, and every questionnaire
            name = re.sub(r"[^a-z0-9]+", "-", f"crawl {kind} {len(forms) if form else ''}")
            accessible(page, name.strip("-"), WCAG22, screenshot=f"{name.strip('-')}.png")
            checked.setdefault(kind, url)
        if form:
            tap_targets_and_rows(page, at_least=2)
            forms.append(page.locator("h1").inner_text())
        for link in links_of(page, origin) - seen:
            if "/audio" in link:  # a recording: no page (none ships yet)
                continue
            seen.add(link)
            queue.append(link)
    context.close()
    # Every kind of client page was reached by links alone, from home.
    assert {
        "/", "/programme", "/progress", "/hulp", "/task/<key>", "/task/<key>/form",
        "/task/<key>/exercise/<n>",
    } <= set(checked), sorted(checked)  # fmt: skip
    assert len(seen) > 60, len(seen)
    print(sorted(checked), len(seen))  # every module screen, exercise and form of Daan's
