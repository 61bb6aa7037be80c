"""Care relationships on a Koppeltaal domain: a care professional sees on /practice only the
clients of their CareTeams (KT2_CareTeam, IG 0.16.3: active, within its period) and those
whose Task they launched; when the CareTeams cannot be read, nobody.

Against the Koppeltaal sandbox, whose seed has the portal's CareTeams: prac-1 treats pat-01
and pat-02, prac-2 pat-03; pat-05's team (prac-1) is inactive and pat-06's period ended.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect

from fhir_burnout.koppeltaal._care import counts
from fhir_burnout.sandbox import start_sandbox
from fhir_burnout.web import create_app

from .conftest import home_url, path_of
from .koppeltaal_launches import (
    AD_BASE,
    assign,
    kt_settings,
    launch,
    launch_form,
    publish,
    text_of,
)
from .smart_flow import APP

MODULE = AD_BASE + "module-boundaries"
NOW = datetime(2026, 12, 9, 12, 0, tzinfo=UTC)


def _enrol(app, app_url, info, definitions, patient):
    """The client ``patient`` launches a module the portal assigned: enrolled with us."""
    task = assign(info, definitions[MODULE], patient)
    client = app.test_client()
    done = launch(client, launch_form(info, task["id"]), f"{app_url}/koppeltaal/callback")
    assert done.status_code == 303 and path_of(done.headers["Location"]) == "/", done.data


def _listed(page) -> set[str]:
    """The clients on the practice page's work list, by their ids (a row's header cell: the
    name with the id, or the id alone when the name cannot be read)."""
    rows = page.locator("table.work-list__table tbody th").all_inner_texts()
    return {m for row in rows for m in re.findall(r"\bpat-\d+\b", row)}


def _to_the_practice_list(page, app_url, info, task):
    """The care professional launches ``task`` from the portal, then opens the list."""
    page.goto(f"{info.portal}/launch?task={task['id']}&as=practitioner")
    page.wait_for_url(home_url(app_url, "/practitioner"), timeout=30_000)
    page.get_by_role("link", name="Praktijkoverzicht").first.click()
    page.wait_for_url(home_url(app_url, "/practice"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Praktijkoverzicht")


def test_in_a_browser_a_care_professional_sees_only_their_own_clients(kt_live, page):
    app_url, info, definitions, app = kt_live
    for patient in ("pat-01", "pat-02", "pat-03", "pat-05", "pat-06", "pat-09", "pat-10"):
        _enrol(app, app_url, info, definitions, patient)
    # prac-1 launches pat-09's Task from the portal: no CareTeam, but theirs from now on.
    task = assign(info, definitions[MODULE], "pat-09", "prac-1")
    _to_the_practice_list(page, app_url, info, task)
    # Theirs: the two active CareTeams and the launched Task. Not: prac-2's client, an
    # inactive team, a team whose period ended, a client nobody is with.
    assert _listed(page) == {"pat-01", "pat-02", "pat-09"}
    assert page.get_by_role("alert").count() == 0
    # Another care professional of the same domain sees their own, not prac-1's.
    page.context.clear_cookies()
    other = assign(info, definitions[MODULE], "pat-03", "prac-2")
    _to_the_practice_list(page, app_url, info, other)
    assert _listed(page) == {"pat-03"}


def test_when_the_care_teams_cannot_be_read_the_list_shows_nobody_and_says_why(
    tmp_path, resources
):
    """A domain that stops answering: the list cannot tell whose clients are whose."""
    with start_sandbox(koppeltaal=True) as info:
        app = create_app(kt_settings(info, tmp_path))
        definitions = publish(info, resources, APP)
        _enrol(app, APP, info, definitions, "pat-01")
        task = assign(info, definitions[MODULE], "pat-02", "prac-1")
        client = app.test_client()
        done = launch(client, launch_form(info, task["id"], "practitioner"))
        assert path_of(done.headers["Location"]) == "/practitioner"
        before = client.get("/practice", headers={"Accept-Language": "nl"})
        assert before.status_code == 200
        assert {"(pat-01)", "(pat-02)"} <= set(re.findall(r"\(pat-\d+\)", text_of(before)))
    # The sandbox is gone: the CareTeam search fails (connection refused).
    after = client.get("/practice", headers={"Accept-Language": "nl"})
    assert after.status_code == 503
    shown = text_of(after)
    assert "pat-01" not in shown and "pat-02" not in shown
    assert "kon nu niet bij het domein worden nagevraagd" in shown
    english = client.get("/practice", headers={"Accept-Language": "en"})
    assert "could not ask the domain which clients are yours" in text_of(english)
    app.extensions["fhir_burnout"]["engine"].dispose()


@pytest.mark.parametrize(
    ("team", "counted"),
    [
        ({"status": "active"}, True),
        ({"status": "inactive"}, False),
        ({"status": "proposed"}, False),
        ({"status": "active", "period": {"start": "2026-01-01", "end": "2026-12-31"}}, True),
        ({"status": "active", "period": {"end": "2026-12-08"}}, False),
        ({"status": "active", "period": {"end": "2026-12-09"}}, True),  # its whole last day
        ({"status": "active", "period": {"start": "2026-12-10T00:00:00Z"}}, False),
        ({"status": "active", "period": {"end": "2026-12-09T12:00:01+00:00"}}, True),
    ],
)
def test_a_care_team_counts_only_while_active_and_within_its_period(team, counted):
    assert counts({"resourceType": "CareTeam", **team}, NOW) is counted
