"""Homework and questionnaires in the browser's forms: drafts, errors, submit once, safety."""

from __future__ import annotations

import html
import json
import re

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from fhir_burnout.questionnaire import load_form
from fhir_burnout.sync import OutboxEntry
from fhir_burnout.workflow import (
    ResponseRow,
    TaskRow,
    change_task,
    enrol,
    load_draft,
    pause,
    resume,
)

from .conftest import by_id, client_of, hidden_fields, path_of
from .smart_flow import sign_in_at_ehr


def task_of(app, patient, action_id, started=()):
    """Enrol ``patient`` in the waiting-list track, with the modules in ``started`` done
    except the last, which is opened; the key of the Task of ``action_id``."""
    state = app.extensions["fhir_burnout"]
    with Session(state["engine"]) as db, db.begin():
        enrolment = enrol(
            db, state["definitions"], fhir_base=state["settings"].ehrs[0].fhir_base,
            patient=patient, track="waiting-list", author="Practitioner/prac-1",
        )  # fmt: skip
        tasks = {t.action_id: t.key for t in enrolment.tasks}
        for n, module in enumerate(started, 1):
            status = "in-progress" if n == len(started) else "completed"
            change_task(db, state["definitions"], tasks[module], status, actor="client")
        return tasks[action_id]


@pytest.fixture
def checkin(app):
    return task_of(app, "pat-10", "weekly-checkin.weekly")


def signed_in(app, patient="pat-10"):
    client = app.test_client()
    started = client.get("/login")
    client.get(sign_in_at_ehr(started.headers["Location"] + f"&login_hint=Patient/{patient}"))
    return client


def token_of(page):
    return re.search(r'name="csrf_token" value="([^"]+)"', page)[1]


def option(page, link, label):
    """The form value of the option with this label."""
    pattern = rf'name="a\.{link}" value="(\d+)"[^>]*> <span>{re.escape(label)}<'
    return re.search(pattern, page)[1]


def responses(app):
    with Session(app.extensions["fhir_burnout"]["engine"]) as db:
        return db.scalar(select(func.count()).select_from(ResponseRow))


def test_fill_in_with_a_mistake_save_come_back_and_send_once(app, checkin):
    client = signed_in(app)
    url = f"/task/{checkin}/form"
    page = client.get(url, headers={"Accept-Language": "nl"}).get_data(as_text=True)
    assert "<h1>Wekelijkse check-in</h1>" in page and "0800-0113" in page
    answers = {
        **hidden_fields(page),
        "a.checkin-energy": "veel",  # not a number
        "a.checkin-sleep": option(page, "checkin-sleep", "Redelijk"),
        "a.checkin-went-well": "Een wandeling gemaakt",
        "a.checkin-safety": option(page, "checkin-safety", "Nee"),
        "action": "submit",
    }
    refused = client.post(url, data=answers, headers={"Accept-Language": "nl"})
    text = refused.get_data(as_text=True)
    assert refused.status_code == 400 and "Je antwoorden zijn bewaard" in text
    assert 'id="error-checkin-energy"' in text and "Een wandeling gemaakt" in text
    assert responses(app) == 0
    # Closed the tab; the draft is there when they come back.
    with Session(app.extensions["fhir_burnout"]["engine"]) as db:
        assert load_draft(db, checkin)["checkin-went-well"] == [
            {"valueString": "Een wandeling gemaakt"}
        ]
    again = signed_in(app).get(url).get_data(as_text=True)
    assert "Een wandeling gemaakt" in again
    answers |= {"a.checkin-energy": "6", "a.checkin-tension": "4", **hidden_fields(again)}
    sent = client.post(url, data={**answers, **hidden_fields(page)})
    assert sent.status_code == 303 and responses(app) == 1
    twice = client.post(url, data={**answers, **hidden_fields(page)})
    assert twice.status_code == 303 and responses(app) == 1  # no second response
    with Session(app.extensions["fhir_burnout"]["engine"]) as db:
        row = db.scalars(select(ResponseRow)).one()
        response = json.loads(row.resource)
        assert db.get(TaskRow, checkin).status == "completed"
        queued = json.loads(db.scalars(select(OutboxEntry.payload)).all()[-1])["operations"]
    assert response["questionnaire"].endswith("/Questionnaire/weekly-checkin|0.1.0")
    assert response["subject"] == {"reference": "Patient/pat-10"}
    assert queued[0]["resource"]["resourceType"] == "QuestionnaireResponse"


def test_a_concerning_answer_shows_crisis_help_and_alerts_the_care_professional(app, checkin):
    client = signed_in(app)
    url = f"/task/{checkin}/form"
    page = client.get(url, headers={"Accept-Language": "nl"}).get_data(as_text=True)
    answers = {
        **hidden_fields(page),
        "a.checkin-energy": "2",
        "a.checkin-sleep": option(page, "checkin-sleep", "Slecht"),
        "a.checkin-tension": "8",
        "a.checkin-safety": option(page, "checkin-safety", "Vaak"),
        "action": "submit",
    }
    sent = client.post(url, data=answers, headers={"Accept-Language": "nl"})
    # Post/redirect/get: the crisis help is a page of its own, so a reload sends nothing.
    assert sent.status_code == 303
    assert path_of(sent.headers["Location"]) == f"/task/{checkin}/safety?level=urgent"
    for _ in range(2):  # shown, and reloaded
        shown = client.get(sent.headers["Location"], headers={"Accept-Language": "nl"})
        text = shown.get_data(as_text=True)
        assert shown.status_code == 200 and 'href="tel:08000113"' in text
        # The practice's promise, not a behandelaar: a waiting-list client has none yet.
        assert "De praktijk leest je antwoord op werkdagen binnen één werkdag" in text
        assert "niet dag en nacht bekeken" in text
        assert "behandelaar" not in text.split("<main")[-1]
    assert responses(app) == 1
    with Session(app.extensions["fhir_burnout"]["engine"]) as db:
        alert = db.scalars(select(TaskRow).where(TaskRow.kind == "practitioner")).one()
        assert alert.owner == "Practitioner/prac-1" and alert.action_id.startswith("safety:")
    # Only the client's own Task has this page.
    assert signed_in(app, "pat-11").get(f"/task/{checkin}/safety").status_code == 404


def test_another_client_cannot_open_or_send_the_form(app, checkin):
    stranger = signed_in(app, "pat-11")
    assert stranger.get(f"/task/{checkin}/form").status_code == 404
    stranger.get("/")
    with stranger.session_transaction() as cookie:
        token = cookie.get("csrf_token", "x")
    posted = stranger.post(
        f"/task/{checkin}/form",
        data={"patient": client_of(stranger), "csrf_token": token, "action": "submit"},
    )
    assert posted.status_code in (400, 404) and responses(app) == 0


def test_the_score_shows_on_the_progress_page_as_a_chart_and_a_table(app, resources):
    who5 = task_of(app, "pat-12", "who-5.start")
    client = signed_in(app, "pat-12")
    empty = client.get("/progress", headers={"Accept-Language": "nl"}).get_data(as_text=True)
    assert "Zodra je een vragenlijst hebt ingevuld" in empty
    url = f"/task/{who5}/form"
    page = client.get(url, headers={"Accept-Language": "nl"}).get_data(as_text=True)
    # The option weighing 2 ("less than half of the time") on all five items: raw score 10,
    # percentage 40, by the published rule (raw x 4).
    form = load_form(by_id(resources, "Questionnaire", "who-5"))
    two = next(i for i, o in enumerate(form.index["who5-1"].options) if o.weight == 2)
    answers = {f"a.who5-{n}": str(two) for n in range(1, 6)}
    sent = client.post(
        url,
        data={
            **answers,
            "patient": client_of(client),
            **hidden_fields(page),
            "action": "submit",
        },
    )
    assert sent.status_code == 303
    progress = client.get("/progress", headers={"Accept-Language": "nl"}).get_data(as_text=True)
    assert '<svg class="fb-chart" role="img"' in progress and "fb-chart__dot" in progress
    # The percentage and its band for the client (the raw 10 of 25 is the same score).
    cell = r'<td class="utrecht-table__cell">'
    assert re.search(rf"{cell}40</td>{cell}Je welbevinden is laag.</td>", progress)
    words = " ".join(re.sub(r"<[^>]+>", " ", progress).split())
    assert "Welbevinden (WHO-5) 40 van de 100 Je welbevinden is laag. · Eén keer ingevuld" in words
    other = signed_in(app, "pat-13").get("/progress").get_data(as_text=True)
    assert f"{cell}40</td>" not in other  # only one's own scores


def tension_log(app, patient):
    """The patient's tension log, open because its module was started."""
    modules = ("understanding-burnout", "body-signals", "tension-relaxation")
    return task_of(app, patient, "tension-relaxation.tension-log", started=modules)


def entry(n, level, situation="", exercise=None):
    fields = {
        f"a.tension-moment[{n}]/": "",
        f"a.tension-moment[{n}]/tension-datetime": "2026-12-01T08:30" if level else "",
        f"a.tension-moment[{n}]/tension-level": str(level or ""),
        f"a.tension-moment[{n}]/tension-situation": situation,
    }
    if exercise is not None:
        fields[f"a.tension-moment[{n}]/tension-exercise"] = exercise
    return fields


def test_a_log_takes_several_entries_added_and_removed_without_javascript(app):
    key = tension_log(app, "pat-11")
    client = signed_in(app, "pat-11")
    url = f"/task/{key}/form"
    page = client.get(url, headers={"Accept-Language": "nl"}).get_data(as_text=True)
    token = hidden_fields(page)
    # One entry to start with, and nothing to remove yet.
    assert 'name="a.tension-moment[0]/tension-level"' in page
    assert "a.tension-moment[1]/" not in page and "remove:" not in page
    # "Add another" keeps what was typed (as a draft too) and shows a second, empty entry
    # that gets the focus.
    added = client.post(
        url,
        data={**entry(0, 7, "Vergadering"), **token,
              "action": "add:a.tension-moment"},
        headers={"Accept-Language": "nl"},
    )  # fmt: skip
    text = added.get_data(as_text=True)
    assert added.status_code == 200
    assert 'value="Vergadering"' not in text  # a textarea: its text is the element's content
    assert ">Vergadering</textarea>" in text
    assert 'id="a.tension-moment[1]/" tabindex="-1" autofocus' in text
    assert 'value="remove:a.tension-moment[1]/"' in text
    with Session(app.extensions["fhir_burnout"]["engine"]) as db:
        draft = load_draft(db, key)
    assert [e["tension-situation"] for e in draft["tension-moment"]] == [
        [{"valueString": "Vergadering"}]
    ]
    # Three entries; the client removes the middle one: the third becomes the second.
    three = {**entry(0, 7, "Vergadering"), **entry(1, 4, "Boodschappen"),
             **entry(2, 9, "Ruzie"), **token}  # fmt: skip
    removed = client.post(
        url, data={**three, "action": "remove:a.tension-moment[1]/"},
        headers={"Accept-Language": "nl"},
    )  # fmt: skip
    text = removed.get_data(as_text=True)
    assert ">Vergadering</textarea>" in text and ">Ruzie</textarea>" in text
    assert "Boodschappen" not in text and "a.tension-moment[2]/" not in text
    # Sending with the second entry incomplete: its problem is shown at that entry only.
    incomplete = {**entry(0, 7, "Vergadering"), **entry(1, 0, "Ruzie"), **token}
    refused = client.post(
        url, data={**incomplete, "action": "submit"}, headers={"Accept-Language": "nl"}
    )
    text = refused.get_data(as_text=True)
    assert refused.status_code == 400
    assert 'id="error-tension-moment[1]/tension-level"' in text
    assert "error-tension-moment[0]/" not in text and ">Ruzie</textarea>" in text
    assert responses(app) == 0
    sent = client.post(
        url,
        data={**entry(0, 7, "Vergadering"), **entry(1, 9, "Ruzie", "true"),
              "a.tension-moment[1]/tension-after": "5", **token,
              "action": "submit"},
    )  # fmt: skip
    assert sent.status_code == 303
    with Session(app.extensions["fhir_burnout"]["engine"]) as db:
        stored = json.loads(db.scalars(select(ResponseRow)).one().resource)
    moments = [i for i in stored["item"] if i["linkId"] == "tension-moment"]
    by_link = [{c["linkId"]: c["answer"][0] for c in m["item"]} for m in moments]
    assert [m["tension-situation"]["valueString"] for m in by_link] == ["Vergadering", "Ruzie"]
    assert "tension-after" not in by_link[0]  # no exercise in that moment: not asked
    assert by_link[1]["tension-after"] == {"valueInteger": 5}


def test_enter_in_a_text_field_saves_and_stays_and_tampered_entries_are_harmless(app):
    key = tension_log(app, "pat-12")
    client = signed_in(app, "pat-12")
    url = f"/task/{key}/form"
    token = hidden_fields(client.get(url).get_data(as_text=True))
    page = client.get(url).get_data(as_text=True)
    # The form's first button is the one Enter presses: it keeps the answers, nothing else.
    first = re.search(r'<button type="submit" name="action" value="([^"]+)"', page)[1]
    assert first == "stay"
    stayed = client.post(url, data={**entry(0, 6, "Trein"), **token,
                                    "action": "stay"})  # fmt: skip
    assert stayed.status_code == 303 and stayed.headers["Location"].endswith(url)
    # Entry numbers far apart, a remove of nothing, an unknown action: no error, no loss.
    tampered = {**entry(0, 6, "Trein"), **entry(999999, 3, "Later"), **token}
    for action in ("remove:a.tension-moment[42]/", "add:a.nothing", "explode"):
        answer = client.post(url, data={**tampered, "action": action})
        assert answer.status_code in (200, 303)
    with Session(app.extensions["fhir_burnout"]["engine"]) as db:
        draft = load_draft(db, key)
    assert [e["tension-situation"][0]["valueString"] for e in draft["tension-moment"]] == [
        "Trein", "Later",
    ]  # fmt: skip


def test_each_entry_decides_its_own_questions_in_the_browser(app):
    key = tension_log(app, "pat-13")
    client = signed_in(app, "pat-13")
    url = f"/task/{key}/form"
    token = hidden_fields(client.get(url).get_data(as_text=True))
    client.post(url, data={**entry(0, 6, "Trein", "true"), **entry(1, 4, "Werk", "false"),
                           **token, "action": "save"})  # fmt: skip
    page = client.get(url).get_data(as_text=True)
    specs = [json.loads(html.unescape(s)) for s in re.findall(r'data-enable-when="([^"]+)"', page)]
    # "How tense afterwards?" reads "did you do an exercise?" of its own entry only.
    assert [s["conditions"][0]["q"] for s in specs] == [
        ["a.tension-moment[0]/tension-exercise"],
        ["a.tension-moment[1]/tension-exercise"],
    ]
    assert all(s["conditions"][0]["values"] == ["true"] for s in specs)


def diary_day(date, parts, overall):
    """The energy diary's fields for one day: parts as (daypart index, activity, mark)."""
    fields = {"a.energy-date": date, "a.energy-day-end": "", "a.energy-overall": str(overall)}
    for n, (daypart, activity, level) in enumerate(parts):
        fields |= {
            f"a.energy-part[{n}]/": "",
            f"a.energy-part[{n}]/energy-daypart": str(daypart),
            f"a.energy-part[{n}]/energy-activity": activity,
            f"a.energy-part[{n}]/energy-level": str(level),
        }
    return fields


def test_the_energy_diary_shows_its_trend_on_the_progress_page(app):
    modules = ("understanding-burnout", "body-signals", "tension-relaxation", "effort-recovery")
    task_of(app, "pat-14", "effort-recovery.energy-diary", started=modules)
    client = signed_in(app, "pat-14")
    days = [
        ("2026-12-02", [(0, "Boodschappen", -3), (2, "Wandelen met de hond", 3)], 4),
        ("2026-12-01", [(0, "Werkmail lezen", -4), (1, "wandelen met de hond ", 4)], 3),
        ("2026-12-03", [(0, "Wandelen met de hond", 2)], 7),
    ]  # filled in out of order: a missed day caught up later
    for date, parts, overall in days:
        # Homework may be past the first page's three: everything is on Mijn programma.
        everything = client.get("/programme").get_data(as_text=True)
        [key] = re.findall(r'href="/task/([^"/]+)/form">Energiedagboek', everything)
        url = f"/task/{key}/form"
        token = hidden_fields(client.get(url).get_data(as_text=True))
        sent = client.post(
            url, data={**diary_day(date, parts, overall), **token, "action": "submit"}
        )
        assert sent.status_code == 303, sent.get_data(as_text=True)
    page = client.get("/progress", headers={"Accept-Language": "nl"}).get_data(as_text=True)
    assert "Je energiedagboek" in page
    assert 'aria-labelledby="energy-title" aria-describedby="latest-energy change-energy"' in page
    cell = r'<td class="utrecht-table__cell">'
    rows = re.findall(
        rf'<tr class="utrecht-table__row">{cell}([^<]+)</td>{cell}([^<]+)</td>{cell}([^<]+)'
        rf"</td>{cell}(\d)</td></tr>",
        page,
    )
    assert rows == [("1-12-2026", "3", "+0", "2"), ("2-12-2026", "4", "+0", "2"),
                    ("3-12-2026", "7", "+2", "1")]  # fmt: skip
    gives = page.split("Dit gaf je energie")[1].split("</ul>")[0]
    costs = page.split("Dit kostte je energie")[1].split("</ul>")[0]
    assert "Wandelen met de hond: +3 (3 keer)" in gives  # the same walk, however it was typed
    assert costs.index("Werkmail lezen: -4") < costs.index("Boodschappen: -3")
    english = client.get("/progress", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "This gave you energy" in english and "1 December 2026" in english
    assert "energiedagboek" not in signed_in(app, "pat-13").get("/progress").get_data(as_text=True)


def test_an_answer_to_a_question_that_does_not_apply_is_pointed_out_not_dropped(app):
    # Without the page's script every question shows: "how tense afterwards?" can be
    # answered while "did you do an exercise?" says no.
    key = tension_log(app, "pat-15")
    client = signed_in(app, "pat-15")
    url = f"/task/{key}/form"
    token = hidden_fields(client.get(url).get_data(as_text=True))
    fields = {**entry(0, 6, "Trein", "false"), "a.tension-moment[0]/tension-after": "3"}
    refused = client.post(
        url, data={**fields, **token, "action": "submit"},
        headers={"Accept-Language": "nl"},
    )  # fmt: skip
    text = refused.get_data(as_text=True)
    assert refused.status_code == 400
    problem = re.search(r'id="error-tension-moment\[0\]/tension-after">([^<]+)<', text)[1]
    assert "hoort niet bij je andere antwoorden" in problem
    assert responses(app) == 0
    with Session(app.extensions["fhir_burnout"]["engine"]) as db:
        [moment] = load_draft(db, key)["tension-moment"]
    assert moment["tension-after"] == [{"valueInteger": 3}]  # kept until the client decides
    fields["a.tension-moment[0]/tension-after"] = ""
    sent = client.post(url, data={**fields, **token, "action": "submit"})
    assert sent.status_code == 303 and responses(app) == 1


def test_answers_sent_after_the_session_ended_are_kept_for_next_time(app, checkin):
    client = signed_in(app)
    url = f"/task/{checkin}/form"
    token = hidden_fields(client.get(url).get_data(as_text=True))
    # The EHR authorization behind the session ran out, with nothing to renew it.
    with app.extensions["fhir_burnout"]["engine"].begin() as db:
        db.execute(text("update launch_session set expires_at = 0, refresh_token = null"))
    answer = {"a.checkin-went-well": "Een wandeling gemaakt", **token}
    nl = {"Accept-Language": "nl"}
    ended = client.post(url, data={**answer, "action": "submit"}, headers=nl)
    assert ended.status_code == 401
    assert "Wat je net invulde, is bewaard" in ended.get_data(as_text=True)
    with Session(app.extensions["fhir_burnout"]["engine"]) as db:
        assert load_draft(db, checkin)["checkin-went-well"] == [
            {"valueString": "Een wandeling gemaakt"}
        ]
        assert db.get(TaskRow, checkin).status == "ready"  # kept, not sent
    assert responses(app) == 0
    again = signed_in(app)  # signing in again finds it
    assert "Een wandeling gemaakt" in again.get(url).get_data(as_text=True)


def test_answers_sent_while_the_programme_is_paused_are_kept_for_when_it_resumes(app, checkin):
    state = app.extensions["fhir_burnout"]
    client = signed_in(app)
    url = f"/task/{checkin}/form"
    page = client.get(url, headers={"Accept-Language": "nl"}).get_data(as_text=True)
    with Session(state["engine"]) as db, db.begin():  # the care professional pauses meanwhile
        pause(db, db.get(TaskRow, checkin).enrolment_key, by="Practitioner/prac-1")
    answers = {
        **hidden_fields(page),
        "a.checkin-energy": "6",
        "a.checkin-tension": "4",
        "a.checkin-sleep": option(page, "checkin-sleep", "Redelijk"),
        "a.checkin-went-well": "Rustig aan gedaan",
        "a.checkin-safety": option(page, "checkin-safety", "Nee"),
        "action": "submit",
    }
    held = client.post(url, data=answers, headers={"Accept-Language": "nl"})
    assert held.status_code == 409 and "Wat je invulde, is bewaard" in held.get_data(as_text=True)
    assert responses(app) == 0
    with Session(state["engine"]) as db, db.begin():
        assert db.get(TaskRow, checkin).status == "on-hold"
        resume(db, db.get(TaskRow, checkin).enrolment_key, by="Practitioner/prac-1")
    back = client.get(url).get_data(as_text=True)
    assert "Rustig aan gedaan" in back  # where they left off
    sent = client.post(url, data={**answers, **hidden_fields(back)})
    assert sent.status_code == 303 and responses(app) == 1


def test_a_concerning_answer_while_paused_still_alerts_the_care_professional(app, checkin):
    """Answers that cannot be sent (the programme is paused) are kept; a safety signal in
    them is not left lying in a draft: crisis help now, and the urgent Task, queued."""
    state = app.extensions["fhir_burnout"]
    client = signed_in(app)
    url = f"/task/{checkin}/form"
    page = client.get(url, headers={"Accept-Language": "nl"}).get_data(as_text=True)
    with Session(state["engine"]) as db, db.begin():
        pause(db, db.get(TaskRow, checkin).enrolment_key, by="Practitioner/prac-1")
    answers = {
        **hidden_fields(page),
        "a.checkin-energy": "2",
        "a.checkin-safety": option(page, "checkin-safety", "Vaak"),
        "action": "submit",
    }
    shown = client.post(
        url, data=answers, headers={"Accept-Language": "nl"}, follow_redirects=True
    )
    text = shown.get_data(as_text=True)
    assert shown.request.path == f"/task/{checkin}/safety"
    assert "0800-0113" in text and "op werkdagen binnen één werkdag" in text
    again = client.post(
        url, data=answers, headers={"Accept-Language": "nl"}, follow_redirects=True
    )
    assert "0800-0113" in again.get_data(as_text=True)  # sent again: crisis help again
    with Session(state["engine"]) as db:
        # One signal, one Task: the same answers sent again raise no second one.
        alert = db.scalars(select(TaskRow).where(TaskRow.kind == "practitioner")).one()
        assert alert.status == "requested" and alert.action_id.startswith("safety:")
        queued = json.loads(db.scalars(select(OutboxEntry.payload)).all()[-1])["operations"]
        assert queued[0]["resource"]["priority"] == "urgent"
        assert load_draft(db, checkin)["checkin-energy"] == [{"valueInteger": 2}]
    assert responses(app) == 0


@pytest.mark.parametrize("item_9, worrying", [(0, False), (1, True), (3, True)])
def test_a_phq9_draft_with_item_9_above_zero_shows_crisis_help_not_sent(app, item_9, worrying):
    """PHQ-9 item 9 (thoughts of being better off dead or of hurting yourself) above "not
    at all" in a draft: the form comes back with crisis help at once, and says the answers
    are not sent yet; nothing reaches the practice until the client sends them."""
    state = app.extensions["fhir_burnout"]
    with Session(state["engine"]) as db, db.begin():
        enrolment = enrol(
            db, state["definitions"], fhir_base=state["settings"].ehrs[0].fhir_base,
            patient="pat-13", track="standard", author="Practitioner/prac-1",
        )  # fmt: skip
        key = next(t.key for t in enrolment.tasks if t.action_id == "phq-9.start")
    client = signed_in(app, "pat-13")
    url = f"/task/{key}/form"
    nl = {"Accept-Language": "nl"}
    page = client.get(url, headers=nl).get_data(as_text=True)
    assert 'class="safety-now"' not in page
    item = re.search(r'name="(a\.[^"]*phq9-9)"', page)[1]
    saved = client.post(
        url, data={item: str(item_9), **hidden_fields(page), "action": "save"}, headers=nl
    )
    assert saved.status_code == 303
    assert saved.headers["Location"] == (url if worrying else "/")
    again = client.get(url, headers=nl).get_data(as_text=True)
    assert ('class="safety-now"' in again) is worrying
    if worrying:
        assert "nog niet verstuurd" in again and 'href="tel:08000113"' in again
    with Session(state["engine"]) as db:
        alerts = db.scalars(select(TaskRow).where(TaskRow.kind == "practitioner")).all()
    assert alerts == [] and responses(app) == 0


def rename(app, table, to):
    with app.extensions["fhir_burnout"]["engine"].begin() as db:
        db.execute(text(f"alter table {table} rename to {to}"))


def test_a_send_the_database_cannot_store_gives_the_answers_back_with_crisis_help(app, checkin):
    """Anything failing during a questionnaire post (here: a table the send needs is gone)
    stores nothing and gives the posted answers back (503), with crisis help for the
    worrying one; once it works again the same send stores them and alerts, once. Pages
    that fail outright are a readable page with crisis help, never a stack trace."""
    client = signed_in(app)
    url = f"/task/{checkin}/form"
    page = client.get(url, headers={"Accept-Language": "nl"}).get_data(as_text=True)
    answers = {
        **hidden_fields(page),
        "questionnaire": re.search(r'name="questionnaire" value="([^"]+)"', page)[1],
        "a.checkin-energy": "2",
        "a.checkin-sleep": option(page, "checkin-sleep", "Slecht"),
        "a.checkin-tension": "8",
        "a.checkin-went-well": "Even buiten geweest",
        "a.checkin-safety": option(page, "checkin-safety", "Vaak"),
        "action": "submit",
    }
    rename(app, "draft", "draft_away")
    failed = client.post(url, data=answers, headers={"Accept-Language": "nl"})
    text_ = failed.get_data(as_text=True)
    assert failed.status_code == 503 and "We konden je antwoorden niet opslaan" in text_
    assert "nog niet opgeslagen en niet verstuurd" in text_ and 'href="tel:08000113"' in text_
    assert ">Even buiten geweest</textarea>" in text_ and 'value="8"' in text_
    assert "Traceback" not in text_
    with Session(app.extensions["fhir_burnout"]["engine"]) as db:
        assert db.scalars(select(TaskRow).where(TaskRow.kind == "practitioner")).all() == []
    assert responses(app) == 0
    rename(app, "draft_away", "draft")
    sent = client.post(url, data=answers, headers={"Accept-Language": "nl"})
    assert sent.status_code == 303 and sent.headers["Location"].startswith(
        f"/task/{checkin}/safety?"
    )
    assert responses(app) == 1
    with Session(app.extensions["fhir_burnout"]["engine"]) as db:
        assert len(db.scalars(select(TaskRow).where(TaskRow.kind == "practitioner")).all()) == 1
    # A page that fails outright: readable, in the person's language, with crisis help.
    rename(app, "launch_session", "launch_session_away")
    for lang, title in (("nl", "Dit lukte niet"), ("en", "This did not work")):
        broken = client.get("/", headers={"Accept-Language": lang})
        body = broken.get_data(as_text=True)
        assert broken.status_code == 500 and f"<h1>{title}</h1>" in body
        assert 'href="tel:08000113"' in body and "Traceback" not in body
    rename(app, "launch_session_away", "launch_session")
