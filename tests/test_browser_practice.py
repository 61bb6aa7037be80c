"""/practice as a work list (issue 21, points 2 and 5) in a real browser at a desktop size
(1280 x 800), against the app on a real port and a sandbox EHR of this module's own: one row
per client, sorted by a column and filtered with plain links, a name opening the client
(the launch's own on /practitioner, any other to read only), and the practice's outcomes
with hand-counted figures and no client in them; axe-core clean at WCAG 2.2 AA."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from fhir_burnout.fhir import FhirClient
from fhir_burnout.questionnaire import build_response, load_form, score
from fhir_burnout.web._launch import person_name
from fhir_burnout.workflow import STUCK_AFTER, ResponseRow, enrol, stop

from .conftest import WCAG22, accessible, home_url, serving, with_ehr
from .outbox_load import worker_token_source
from .practitioners import PHQ9_ITEMS, PRACTICE, answers_for, submit

#: PHQ-9 first and last score per client, and what each is (reliable change 6, case >= 10):
PHQ9 = {
    "pat-11": (18, 8),  # improved; a case, recovered, reliably recovered
    "pat-12": (12, 8),  # no reliable change; a case, recovered
    "pat-13": (6, 13),  # deteriorated; no case at the start
    "pat-14": (22, 14),  # improved; a case, not recovered (the programme ended)
    "pat-15": (20, 4),  # improved; a case, recovered, reliably recovered
    "pat-16": (16, 15),  # no reliable change; a case, not recovered
}


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    def for_the_practice(settings):
        return with_ehr(settings, worker_client_id="fhir-burnout-worker", practice=PRACTICE)

    with serving(tmp_path_factory, "live-practice", for_the_practice) as running:
        yield running


@pytest.fixture(scope="module")
def seeded(live):
    """Six clients at the practice: pat-11 with an urgent signal, pat-12 on the waiting
    list, pat-13 stuck, pat-14 ended, pat-15 and pat-16 in treatment; each with a first and
    a last PHQ-9 score. Returns their enrolment keys."""
    state = live.app.extensions["fhir_burnout"]
    definitions = state["definitions"]
    now = datetime.now(UTC)
    long_ago = now - STUCK_AFTER - timedelta(days=1)
    phq9 = next(c for c in definitions.by_canonical if "/Questionnaire/phq-9|" in c)
    form = load_form(definitions.by_canonical[phq9], lang="nl")
    keys = {}
    with Session(state["engine"]) as db, db.begin():
        for patient, (first, last) in PHQ9.items():
            when = long_ago if patient == "pat-13" else now - timedelta(days=3)
            track = "waiting-list" if patient == "pat-12" else "standard"
            row = enrol(db, definitions, fhir_base=live.info.fhir_base, patient=patient,
                        track=track, practice=PRACTICE, now=when, today=when.date())  # fmt: skip
            keys[patient] = row.key
            for days, value in ((20, first), (2, last)):
                authored = now - timedelta(days=days)
                resource, scores = _phq9(form, patient, value, authored)
                db.add(ResponseRow(
                    key=str(uuid.uuid4()), task_key=None, enrolment_key=row.key,
                    questionnaire=phq9, status="completed", resource=json.dumps(resource),
                    authored=authored, scores=json.dumps(scores),
                ))  # fmt: skip
            if patient == "pat-11":  # the weekly check-in says "often": an urgent signal
                db.flush()
                tasks = {t.action_id: t.key for t in row.tasks}
                submit(db, definitions, tasks["weekly-checkin.weekly"],
                       {"checkin-sleep": 2, "checkin-safety": 2}, patient=patient,
                       now=now - timedelta(hours=2),
                       extra={"checkin-energy": [{"valueInteger": 2}],
                              "checkin-tension": [{"valueInteger": 8}]})  # fmt: skip
            if patient == "pat-14":
                db.flush()
                stop(db, row.key, by="Practitioner/prac-1", now=now - timedelta(days=1))
    return keys


def _phq9(form, patient, total, authored):
    """A PHQ-9 response with this total (items 1 to 8 filled up in turn; item 9, the
    safety question, at 0), scored as the app keeps it."""
    choices, left = {}, total
    for item in PHQ9_ITEMS:
        choices[item] = 0 if item == "phq9-9" else min(3, left)
        left -= choices[item]
    who = f"Patient/{patient}"
    response = build_response(
        form, answers_for(form, choices), status="completed", subject=who, author=who,
        authored=authored.isoformat(timespec="seconds"),
    )  # fmt: skip
    scores = [s.stored() for s in score(form, response, current=True) if s.value is not None]
    assert {"linkId": "phq9-total", "value": float(total)} in [
        {k: v for k, v in s.items() if k != "band"} for s in scores
    ]
    return response, scores


def _names(live, *patients):
    with FhirClient(live.info.fhir_base, token_source=worker_token_source(live.info)) as fhir:
        return {p: person_name(fhir.read("Patient", p)) for p in patients}


def _rows(page):
    """The work list's rows: the texts of their cells, the row's header first."""
    return [
        [cell.strip() for cell in row.locator("th, td").all_inner_texts()]
        for row in page.locator("table.work-list__table tbody tr").all()
    ]


def _to_the_practice(page, live, patient="pat-11"):
    page.goto(f"{live.info.launcher}?app=fhir-burnout&practitioner=prac-1&patient={patient}")
    page.wait_for_url(home_url(live.app_url))
    page.get_by_role("link", name="Praktijkoverzicht").first.click()
    page.wait_for_url(home_url(live.app_url, "/practice"))


def test_the_work_list_sorts_filters_and_opens_a_client(live, seeded, desk):
    page = desk
    _to_the_practice(page, live)
    names = _names(live, *PHQ9)
    rows = _rows(page)
    # Everyone current (pat-14's programme ended), the urgent signal on top.
    assert len(rows) == 5 and rows[0][0].startswith(names["pat-11"])
    assert rows[0][4] == "1, waarvan 1 dringend"
    assert all(re.fullmatch(r"\d{1,2}-\d{1,2}-\d{4}, \d{2}:\d{2}", r[3]) for r in rows)
    by_id = {re.search(r"pat-\d+", r[0])[0]: r for r in rows}
    assert by_id["pat-13"][5] == "ja" and by_id["pat-15"][5] == "—"  # stuck
    assert by_id["pat-12"][6] != "—" and by_id["pat-15"][6] == "—"  # waiting since
    assert page.locator("table.work-list__table").evaluate("t => t.scrollWidth <= t.clientWidth")
    accessible(page, "practice-work-list", WCAG22, screenshot="practice-work-list-desktop.png")

    # Sorted by name, A to Z, then Z to A: a header is a link, and says how it sorts.
    page.get_by_role("link", name="Cliënt", exact=True).click()
    header = page.locator("th[aria-sort]")
    expect(header).to_have_attribute("aria-sort", "ascending")
    listed = [r[0].split(" (")[0] for r in _rows(page)]
    assert listed == sorted(listed, key=str.casefold)
    page.get_by_role("link", name=re.compile("^Cliënt")).click()
    expect(header).to_have_attribute("aria-sort", "descending")
    assert [r[0].split(" (")[0] for r in _rows(page)] == listed[::-1]

    # The filters: plain links with their counts.
    for label, expected in [
        ("Met signalen (1)", {"pat-11"}),
        ("Vastgelopen (1)", {"pat-13"}),
        ("Op de wachtlijst (1)", {"pat-12"}),
        ("Beëindigd (1)", {"pat-14"}),
    ]:
        page.get_by_role("link", name=label).click()
        expect(page.get_by_role("link", name=label)).to_have_attribute("aria-current", "page")
        assert {re.search(r"pat-\d+", r[0])[0] for r in _rows(page)} == expected, label
    page.get_by_role("link", name="Iedereen die meedoet (5)").click()

    # Another client's name opens a page to read: no form acts on them from here.
    page.get_by_role("link", name=names["pat-15"], exact=True).click()
    page.wait_for_url(re.compile(r"/practice/clients/"))
    expect(page.get_by_role("heading", level=1)).to_contain_text(names["pat-15"])
    expect(page.locator(".notice")).to_contain_text("open de app vanuit het dossier")
    assert page.locator("main form").count() == 0
    measure = page.locator("tbody tr", has_text="PHQ-9")
    expect(measure).to_contain_text("Betrouwbaar verbeterd")
    expect(measure).to_contain_text("Betrouwbaar hersteld")
    accessible(page, "practice-client", WCAG22, screenshot="practice-client-desktop.png")
    # The launch's own client opens the chart's page, with its decisions.
    page.get_by_role("link", name="Terug naar het praktijkoverzicht").click()
    page.get_by_role("link", name=names["pat-11"], exact=True).click()
    page.wait_for_url(home_url(live.app_url, "/practitioner"))
    # A key that is not the list's is not found.
    assert page.goto(f"{live.app_url}/practice/clients/{uuid.uuid4()}").status == 404


def test_the_practice_outcomes_are_counted_and_name_nobody(live, seeded, desk):
    page = desk
    _to_the_practice(page, live, "pat-12")
    outcomes = page.locator("section.outcomes")
    phq9 = outcomes.locator("tbody tr", has_text="PHQ-9")
    # By hand from PHQ9 above: 6 clients with two scores; 3 improved (11, 14, 15), 2 without
    # a reliable change (12, 16), 1 deteriorated (13); 5 cases at the start (all but 13),
    # 3 recovered (11, 12, 15), 2 reliably recovered (11, 15). 1 to 4 shows as "< 5".
    assert [c.strip() for c in phq9.locator("td").all_inner_texts()] == [
        "6", "< 5", "< 5", "< 5", "5", "< 5", "< 5",
    ]  # fmt: skip
    gad7 = outcomes.locator("tbody tr", has_text="GAD-7")
    assert set(gad7.locator("td").all_inner_texts()) == {"0"}
    text = outcomes.inner_text()
    for patient, name in _names(live, *PHQ9).items():
        assert patient not in text and name not in text
        assert name.split()[0] not in text  # not even a first name
    assert not re.search(r"\d{1,2}-\d{1,2}-\d{4}", text)  # no dates
    outcomes.scroll_into_view_if_needed()
    accessible(page, "practice-outcomes", WCAG22, screenshot="practice-outcomes-desktop.png")
