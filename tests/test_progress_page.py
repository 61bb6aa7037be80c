"""The client's progress page in a real browser (issue 20, point 6): every measure the
client filled in over six weeks (scores, the weekly check-in, the tension log, the
look-backs after an exercise) on a time axis spaced by date, on each measure's own range
with its bands, with the same figures in a table whose headers wrap only between words;
numbers and dates in Dutch, and in English on the English page. axe-core (WCAG 2.2 A/AA)
at phone and desktop size; screenshots in dist/screenshots/progress-*.png."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from fhir_burnout.demo import enrol_demo_patients
from fhir_burnout.questionnaire import load_form, score
from fhir_burnout.workflow import add_response, change_task, enrol, submit_response

from .conftest import PHONE, SCREENSHOTS, WCAG22, accessible, home_url
from .practitioners import PHQ9_ITEMS, submit

PATIENT = "pat-21"  # Dutch-speaking in the sandbox's seed
START = (datetime.now(UTC) - timedelta(weeks=6)).replace(hour=9, minute=0, second=0)
CHECKIN_WEEKS = (0, 1, 2, 4)  # week 3 skipped: spacing by order would hide the gap
WHO5 = [f"who5-{n}" for n in range(1, 6)]


def _option(definitions, task_key, link, weight):
    """The index of the option with ``weight`` (the forms list them highest first)."""
    with_form = load_form(definitions.by_canonical[task_key], lang="nl")
    return next(i for i, o in enumerate(with_form.index[link].options) if o.weight == weight)


def _response(questionnaire, items, *, patient, when):
    who = f"Patient/{patient}"
    return {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": questionnaire,
        "status": "completed",
        "subject": {"reference": who},
        "author": {"reference": who},
        "authored": when.isoformat(timespec="seconds"),
        "item": items,
    }


def _answer(link, value_type, value):
    return {"linkId": link, "answer": [{value_type: value}]}


def six_weeks_of_answers(live, patient=PATIENT):
    """A client in the standard track with six weeks of history, built through the
    workflow as the pages would keep it, dated in the past."""
    state = live.app.extensions["fhir_burnout"]
    definitions = state["definitions"]
    who = f"Patient/{patient}"
    with Session(state["engine"]) as db, db.begin():
        enrolment = enrol(
            db, definitions, fhir_base=live.info.fhir_base, patient=patient,
            track="standard", author="Practitioner/prac-1", now=START,
        )  # fmt: skip
        tasks = {t.action_id: t for t in enrolment.tasks}
        who5 = tasks["who-5.start"].definition
        # WHO-5: every item "less than half of the time" (2): raw 10 of 25, 40 of 100.
        submit(db, definitions, tasks["who-5.start"].key,
               dict.fromkeys(WHO5, _option(definitions, who5, "who5-1", 2)),
               patient=patient, now=START)  # fmt: skip
        submit(db, definitions, tasks["phq-9.start"].key,
               {**dict.fromkeys(PHQ9_ITEMS, 2), "phq9-9": 0}, patient=patient,
               now=START)  # fmt: skip
        cbi = tasks["cbi.start"].definition
        # CBI personal burn-out: 100, 75, 50, 50, 50, 25: a mean of 58.33…
        weights = (100, 75, 50, 50, 50, 25)
        submit(db, definitions, tasks["cbi.start"].key,
               {f"cbi-{n}": _option(definitions, cbi, f"cbi-{n}", w)
                for n, w in enumerate(weights, 1)},
               patient=patient, now=START)  # fmt: skip
        for week in CHECKIN_WEEKS:
            [checkin] = [
                t for t in enrolment.tasks
                if t.action_id == "weekly-checkin.weekly" and t.status == "ready"
            ]  # fmt: skip
            submit(db, definitions, checkin.key, {"checkin-sleep": 2, "checkin-safety": 0},
                   patient=patient, now=START + timedelta(weeks=week),
                   extra={"checkin-energy": [{"valueInteger": 3 + week}],
                          "checkin-tension": [{"valueInteger": 8 - week}]})  # fmt: skip
        modules = [t for t in enrolment.tasks if t.kind == "module" and t.phase == "recovery"]
        for module in modules:
            change_task(db, definitions, module.key, "completed", actor="client", who=who,
                        now=START + timedelta(days=10))  # fmt: skip
        later = START + timedelta(weeks=5)
        submit(db, definitions, tasks["who-5.end-recovery"].key,
               dict.fromkeys(WHO5, _option(definitions, who5, "who5-1", 3)),
               patient=patient, now=later)  # fmt: skip
        submit(db, definitions, tasks["phq-9.end-recovery"].key,
               {**dict.fromkeys(PHQ9_ITEMS, 1), "phq9-9": 0}, patient=patient,
               now=later)  # fmt: skip
        log = tasks["body-signals.tension-log"]
        moment = START + timedelta(weeks=2, hours=5)
        submit_response(db, definitions, log.key, _response(log.definition, [{
            "linkId": "tension-moment", "item": [
                _answer("tension-datetime", "valueDateTime", moment.isoformat()),
                _answer("tension-level", "valueInteger", 7),
                _answer("tension-situation", "valueString", "Een lastig telefoontje"),
                _answer("tension-exercise", "valueBoolean", True),
                _answer("tension-after", "valueInteger", 4),
            ]}], patient=patient, when=moment), who=who, now=moment)  # fmt: skip
        relax = tasks["tension-relaxation"]
        look_back = relax.definition.replace("ActivityDefinition/tension-relaxation",
                                             "Questionnaire/exercise-reflection")  # fmt: skip
        look_back = look_back.split("|", 1)[0]
        for days, before, after in ((17, 7, 4), (24, 6, 3)):
            when = START + timedelta(days=days)
            add_response(db, relax.key, _response(look_back, [
                _answer("reflection-exercise", "valueString", "paced-breathing"),
                _answer("reflection-tension-before", "valueInteger", before),
                _answer("reflection-tension-after", "valueInteger", after),
            ], patient=patient, when=when), who=who, now=when)  # fmt: skip
    return START


def launch(page, live, patient=PATIENT):
    page.goto(f"{live.info.launcher}?app=fhir-burnout&patient={patient}")
    page.wait_for_url(home_url(live.app_url))
    page.goto(f"{live.app_url}/progress")


@pytest.fixture(scope="module")
def client_with_history(live):
    return six_weeks_of_answers(live)


@pytest.fixture
def desktop(browser):
    context = browser.new_context(
        locale="nl-NL", viewport={"width": 1280, "height": 900}, bypass_csp=True
    )
    yield context.new_page()
    context.close()


def dots(section):
    """(ISO day, centre x, centre y) of each reading, and the y axis' top and bottom, as
    the browser drew them (CSS pixels)."""
    found = section.evaluate(
        """s => {
          const svg = s.querySelector('svg.fb-chart');
          const axis = svg.querySelector('.fb-chart__axis').getBoundingClientRect();
          const dots = [...svg.querySelectorAll('.fb-chart__dot')].map(c => {
            const r = c.getBoundingClientRect();
            return [c.dataset.day, r.x + r.width / 2, r.y + r.height / 2];
          });
          return {dots, top: axis.top, bottom: axis.bottom};
        }"""
    )
    return found["dots"], found["top"], found["bottom"]


def headers_broken_inside_a_word(page):
    """Header cells whose text wraps anywhere but at a space or a hyphen."""
    return page.evaluate(
        """() => [...document.querySelectorAll('.fb-progress th')].filter(th => {
          const node = th.firstChild, text = node.textContent, range = document.createRange();
          let top = null;
          for (let i = 0; i < text.length; i++) {
            range.setStart(node, i); range.setEnd(node, i + 1);
            const box = range.getClientRects()[0];
            if (!box || text[i] === ' ') continue;
            if (top !== null && box.top > top + 2 && !' -'.includes(text[i - 1])) return true;
            top = box.top;
          }
          return false;
        }).map(th => th.textContent)"""
    )


def section(page, title):
    return page.locator("section.fb-measure").filter(
        has=page.get_by_role("heading", level=2, name=title, exact=True)
    )


def test_progress_shows_every_measure_on_its_own_range_spaced_by_date(
    live, phone, client_with_history
):
    page = phone
    launch(page, live)
    start = client_with_history

    # WHO-5: 10 of 25 (40 of 100) is drawn at 40 % of the axis' height, not at the top.
    who5 = section(page, "Welbevinden (WHO-5)")
    (first_day, _, y), _ = dots(who5)[0]
    _, top, bottom = dots(who5)
    assert first_day == start.date().isoformat()
    assert (bottom - y) / (bottom - top) == pytest.approx(0.4, abs=0.01)
    labels = who5.locator(".fb-chart__label").all_text_contents()
    assert {"0", "20", "40", "60", "80", "100"} <= set(labels)  # the y axis: 0 to 100
    assert any(re.fullmatch(r"\d{1,2} [a-z]{3}\.?", label) for label in labels)  # "3 sep"
    assert "Je welbevinden is laag." in who5.locator(".fb-bands").inner_text()
    # The chart is described by the summary's words: the latest, its band, its change.
    described = who5.locator("svg.fb-chart").get_attribute("aria-describedby").split()
    words = " ".join(page.locator(f"#{word}").inner_text() for word in described)
    assert re.fullmatch(r"\d+ van de 100 Je welbevinden is \w+\. · \d+ hoger dan de eerste keer\.",
                        words), words  # fmt: skip
    # PHQ-9 on 0-27: its top tick is 27, whatever the highest score.
    assert (
        "27" in section(page, "Stemming (PHQ-9)").locator(".fb-chart__label").all_text_contents()
    )

    # The weekly check-in: energy on 0-10, its points spaced by date (week 3 is a gap).
    checkin = section(page, "Je wekelijkse check-in")
    energy = checkin.locator("svg.fb-chart").first.locator("xpath=..")
    readings, _, _ = dots(energy)
    assert [d for d, _, _ in readings] == [
        (start + timedelta(weeks=w)).date().isoformat() for w in CHECKIN_WEEKS
    ]
    xs = [x for _, x, _ in readings]
    for week, x in zip(CHECKIN_WEEKS, xs, strict=True):
        assert (x - xs[0]) / (xs[-1] - xs[0]) == pytest.approx(week / 4, abs=0.01)
    assert checkin.get_by_role("heading", level=3).all_inner_texts() == [
        "Energie", "Slaap", "Spanning",
    ]  # fmt: skip
    assert "Redelijk" in checkin.locator(".fb-chart__label").all_text_contents()  # sleep's axis

    # The tension log and the look-backs: before -> after pairs.
    log = section(page, "Spanningsdagboek")
    assert log.locator(".fb-chart__after").count() == 1
    look_back = section(page, "Je spanning voor en na een oefening")
    assert look_back.locator(".fb-chart__after").count() == 2
    words = dict(summary_rows(page))["Je spanning voor en na een oefening"]
    assert "van 6,5 naar 3,5 (2 keer)" in words  # a decimal comma
    page.screenshot(path=str(SCREENSHOTS / "progress-phone.png"), full_page=True)

    # The tables: open, Dutch numbers, headers whole.
    for summary in page.locator("details.fb-measure__table > summary").all():
        summary.click()
    assert "58,3" in section(page, "Burn-outklachten (CBI)").locator("table").inner_text()
    rows = look_back.locator("tbody tr").all_inner_texts()
    assert [r.split("\t")[1:] for r in rows] == [["Rustig ademen", "7", "4"],
                                                  ["Rustig ademen", "6", "3"]]  # fmt: skip
    assert "Een lastig telefoontje" in log.locator("table").inner_text()
    assert headers_broken_inside_a_word(page) == []
    accessible(page, "progress-phone-tables", WCAG22)


def test_progress_on_a_desktop_and_in_english(live, desktop, client_with_history):
    page = desktop
    launch(page, live)
    assert page.get_by_role("heading", level=1).inner_text() == "Hoe het gaat"
    page.screenshot(path=str(SCREENSHOTS / "progress-desktop.png"), full_page=True)
    accessible(page, "progress-desktop", WCAG22)
    for summary in page.locator("details.fb-measure__table > summary").all():
        summary.click()
    assert headers_broken_inside_a_word(page) == []

    page.get_by_role("button", name="English").click()
    assert page.get_by_role("heading", level=1).inner_text() == "How you are doing"
    words = dict(summary_rows(page, "At a glance"))["Your tension before and after an exercise"]
    assert "from 6.5 to 3.5 (2 times)" in words  # a decimal point
    for summary in page.locator("details.fb-measure__table > summary").all():
        summary.click()
    assert "58.3" in page.locator("table").all_inner_texts()[2]
    assert "Your weekly check-in" in page.content()
    accessible(page, "progress-english", WCAG22)


#: Daan's progress page at 390 px wide before it had a summary: 6,696 px, a chart, its
#: latest reading in words and its bands' legend after another for eleven measures.
LONG_BEFORE = 6_696


def summary_rows(page, name="In het kort"):
    """(name, its words) of each row of the summary, as the client reads them."""
    rows = page.get_by_role("region", name=name).locator(".fb-summary__item")
    return [
        (row.locator(".fb-summary__name").inner_text(), " ".join(row.inner_text().split()))
        for row in rows.all()
    ]


def test_daans_progress_on_a_phone_is_a_short_summary_then_the_charts(live, browser):
    """The demo's Daan, seven weeks in, eleven measures: first a summary (per measure the
    latest in words, with its band, and its change), then the charts, each with its table
    behind "show as a table"; no explanation said twice; a good part shorter."""
    state = live.app.extensions["fhir_burnout"]
    enrol_demo_patients(
        state["engine"], state["definitions"], live.info.fhir_base, today=date.today()
    )
    context = browser.new_context(locale="nl-NL", viewport=PHONE, bypass_csp=True)
    page = context.new_page()
    page.goto(f"{live.info.launcher}?app=fhir-burnout&patient=pat-04&portal=1")
    page.wait_for_url(home_url(live.app_url))
    page.goto(f"{live.app_url}/progress")

    summary = page.get_by_role("region", name="In het kort")
    charts = page.locator("svg.fb-chart")
    expect(charts).to_have_count(11)
    box = summary.bounding_box()
    assert box["y"] + box["height"] <= charts.first.bounding_box()["y"], "the summary first"
    rows = dict(summary_rows(page))
    assert list(rows) == [
        "Stemming (PHQ-9)", "Angst en piekeren (GAD-7)", "Welbevinden (WHO-5)",
        "Burn-outklachten (CBI)",
        "Je wekelijkse check-in", "Spanningsdagboek", "Je spanning voor en na een oefening",
        "Je energiedagboek",
    ]  # fmt: skip
    for name, words in {
        "Stemming (PHQ-9)": ["7 van de 27", "Milde klachten", "8 lager dan de eerste keer"],
        "Welbevinden (WHO-5)": ["44 van de 100", "Je welbevinden is laag.",
                                "20 hoger dan de eerste keer"],
        "Burn-outklachten (CBI)": ["Score persoonlijke burn-out 70,8 van de 100 Hoge score",
                                   "Score burn-out door werk 71,4 van de 100 Hoge score",
                                   "Eén keer ingevuld"],
        "Je wekelijkse check-in": ["Energie 6 van de 10 4 hoger dan de eerste keer.",
                                   "Slaap Redelijk De eerste keer: heel slecht.",
                                   "Spanning 4 van de 10 4 lager dan de eerste keer."],
        "Spanningsdagboek": ["6 van de 10", "van 6 naar 4,2 (4 keer)"],
        "Je spanning voor en na een oefening": ["van 6,3 naar 4 (6 keer)"],
        "Je energiedagboek": ["2 van de 10", "1 lager dan de eerste keer"],
    }.items():  # fmt: skip
        for word in words:
            assert word in rows[name], (name, word, rows[name])

    # Each chart's table behind a <details>, closed, opened from the keyboard.
    tables = page.locator("details.fb-measure__table")
    expect(tables).to_have_count(8)
    assert tables.evaluate_all("ds => ds.filter(d => d.open).length") == 0
    tables.first.locator("summary").focus()
    page.keyboard.press("Enter")
    expect(tables.first.locator("table")).to_be_visible()
    tables.first.locator("summary").click()

    # Nothing explained twice: no paragraph, and no control, says the same as another.
    said = page.locator("main p:visible, main summary").all_inner_texts()
    twice = {text for text in said if said.count(text) > 1}
    assert not twice, twice
    # All of it in words within the first two screens; the page a good part shorter (its
    # eleven charts, each on its own range with its bands, make most of what is left).
    assert box["y"] + box["height"] < 2 * PHONE["height"]
    height = page.evaluate("document.documentElement.scrollHeight")
    assert height < LONG_BEFORE * 0.8, f"{height} px at 390 px wide"
    accessible(page, "progress-daan-phone", WCAG22, screenshot="progress-daan-phone.png")
    context.close()


def test_progress_with_nothing_filled_in_yet_says_so(live, browser):
    context = browser.new_context(locale="nl-NL", viewport=PHONE, bypass_csp=True)
    page = context.new_page()
    state = live.app.extensions["fhir_burnout"]
    with Session(state["engine"]) as db, db.begin():
        enrol(db, state["definitions"], fhir_base=live.info.fhir_base, patient="pat-22",
              track="waiting-list", author="Practitioner/prac-1")  # fmt: skip
    launch(page, live, "pat-22")
    assert "Zodra je een vragenlijst hebt ingevuld" in page.content()
    assert page.locator("svg.fb-chart").count() == 0
    context.close()


def test_the_score_ranges_the_content_declares_are_the_scores_extremes(resources):
    """Each score's minValue/maxValue (the chart's y axis) is what the lowest and the
    highest answers give: the declared 0-27 of the PHQ-9 is its real range."""
    scored = [
        r for r in resources
        if r["resourceType"] == "Questionnaire" and r["id"] in ("phq-9", "gad-7", "who-5", "cbi")
    ]  # fmt: skip
    assert len(scored) == 4
    for questionnaire in scored:
        form = load_form(questionnaire, lang="nl")
        for pick in (min, max):
            items = [i for i in form.walk() if i.options and all(o.weight is not None
                                                                 for o in i.options)]  # fmt: skip
            answers = [
                {"linkId": i.link_id,
                 "answer": [{"valueCoding": pick(i.options, key=lambda o: o.weight).value}]}
                for i in items
            ]  # fmt: skip
            works_with_clients = {"linkId": "cbi-clients", "answer": [{"valueBoolean": True}]}
            response = {"resourceType": "QuestionnaireResponse",
                        "item": [*answers, works_with_clients]}  # fmt: skip
            for result in score(form, response):
                assert result.value is not None, (questionnaire["id"], result.link_id, pick)
                item = form.index[result.link_id]
                bound = item.min_value if pick is min else item.max_value
                assert bound is not None, f"{questionnaire['id']} {result.link_id} has no range"
                assert float(result.value) == float(bound), (questionnaire["id"], result.link_id)
