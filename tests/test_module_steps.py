"""A module in short screens (issue 20, point 4): its own sections, a long one cut at its
``###`` headings; Verder and Terug as plain links; the client's place kept on the server;
links to other modules resolved for this client (or plain text), never a dead end."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from fhir_burnout.resources import load_programme
from fhir_burnout.web._module_screens import WORDS_PER_SCREEN, split_screens
from fhir_burnout.workflow import TaskRow, change_task, enrol

from .conftest import ROOT, client_of
from .launches import launch
from .smart_flow import sign_in_at_ehr

NL = {"Accept-Language": "nl"}


def enrolled_in(app, patient, track="waiting-list"):
    state = app.extensions["fhir_burnout"]
    with Session(state["engine"]) as db, db.begin():
        enrolment = enrol(
            db, state["definitions"], fhir_base=state["settings"].ehrs[0].fhir_base,
            patient=patient, track=track, author="Practitioner/prac-1",
        )  # fmt: skip
        return {t.action_id: t.key for t in enrolment.tasks}


def open_module(app, key):
    """The care professional opens a module early (as they may), for the test."""
    state = app.extensions["fhir_burnout"]
    with Session(state["engine"]) as db, db.begin():
        change_task(db, state["definitions"], key, "ready", actor="practitioner")


def signed_in(app, patient):
    client = app.test_client()
    started = client.get("/login")
    client.get(sign_in_at_ehr(started.headers["Location"] + f"&login_hint=Patient/{patient}"))
    return client


def place(app, key):
    with Session(app.extensions["fhir_burnout"]["engine"]) as db:
        return db.get(TaskRow, key).place


def every_screen(client, url, headers=NL):
    """Each screen of the module at ``url``, in order."""
    first = client.get(url, headers=headers).get_data(as_text=True)
    steps = (
        step_of(first)[1] if "Stap " in first else int(re.search(r"Step \d+ of (\d+)", first)[1])
    )
    return [
        client.get(f"{url}?step={n}", headers=headers).get_data(as_text=True)
        for n in range(1, steps + 1)
    ]


def step_of(page: str) -> tuple[int, int]:
    found = re.search(r'id="module-step">Stap (\d+) van (\d+)<', page)
    assert found, page
    return int(found[1]), int(found[2])


# --- the screens, from the content itself -------------------------------------------------


def module_bodies():
    programme, _problems = load_programme(ROOT)
    return [(m.code, f.lang, f.body) for m in programme.modules for f in m.files]


@pytest.mark.parametrize(("code", "lang", "body"), module_bodies())
def test_every_module_is_cut_into_short_screens_that_keep_all_of_its_text(code, lang, body):
    screens = split_screens(body)
    assert 4 <= len(screens) <= 8, [s.heading for s in screens]
    for screen in screens:
        words = len(screen.markdown.split())
        # Over the limit only where there is no ### to cut at (an exercise's steps).
        assert words <= WORDS_PER_SCREEN or "\n### " not in f"\n{screen.markdown}", (
            screen.heading,
            words,
        )
    # Nothing lost, nothing twice: only a long section's heading repeats on its next screen.
    kept = [
        line
        for s in screens
        for i, line in enumerate(s.markdown.splitlines())
        if line and (s.starts or i > 1)  # a later part opens with its section's heading
    ]
    assert kept == [line for line in body.splitlines() if line]


def test_a_long_explanation_is_cut_at_its_subheadings_into_balanced_screens():
    body = "Intro.\n\n## Uitleg\n\n" + "".join(
        f"### Deel {n}\n\n{'woord ' * 120}\n\n" for n in range(1, 6)
    )
    screens = split_screens(body + "## Huiswerk\n\nDoe iets.\n")
    assert [(s.heading, s.starts) for s in screens] == [
        ("Uitleg", True), ("Uitleg", False), ("Uitleg", False), ("Huiswerk", True),
    ]  # fmt: skip
    # 618 words: three screens, the largest as small as the cuts allow (246 + its heading).
    assert [len(s.markdown.split()) for s in screens[:3]] == [126, 248, 248]
    assert screens[1].markdown.startswith("## Uitleg\n\n### Deel 2")


# --- the pages ----------------------------------------------------------------------------


def test_a_module_is_read_in_steps_with_verder_and_terug(app):
    tasks = enrolled_in(app, "pat-08")
    open_module(app, tasks["body-signals"])
    client = signed_in(app, "pat-08")
    url = f"/task/{tasks['body-signals']}"
    first = client.get(url, headers=NL).get_data(as_text=True)
    assert step_of(first) == (1, 5)
    assert "Ongeveer 25 minuten." in first and "Voelen wat er in je lichaam gebeurt" in first
    assert "Ervaringsverhaal" not in first  # Daan's story is a later screen
    assert f'rel="next" href="{url}?step=2">Verder</a>' in first and 'rel="prev"' not in first
    assert "Klaar met deze module" not in first  # only on the last screen
    exercise = client.get(f"{url}?step=3", headers=NL).get_data(as_text=True)
    assert step_of(exercise) == (3, 5) and ">Oefening: De bodyscan</h2>" in exercise
    assert f'href="{url}/exercise/1">Doe de oefening, stap voor stap</a>' in exercise
    assert f'rel="prev" href="{url}?step=2">Terug</a>' in exercise
    last = client.get(f"{url}?step=5", headers=NL).get_data(as_text=True)
    assert step_of(last) == (5, 5) and ">Huiswerk</h2>" in last
    assert 'rel="next"' not in last and "Klaar met deze module</button>" in last
    assert step_of(client.get(f"{url}?step=99").get_data(as_text=True)) == (5, 5)
    assert step_of(client.get(f"{url}?step=nee").get_data(as_text=True)) == (5, 5)
    english = client.get(f"{url}?step=2", headers={"Accept-Language": "en"})
    assert ">Next</a>" in english.get_data(as_text=True)
    assert ">Back</a>" in english.get_data(as_text=True)


def test_the_clients_place_is_kept_and_reopening_returns_there_with_a_way_to_the_start(app):
    tasks = enrolled_in(app, "pat-08")
    key = tasks["understanding-burnout"]
    client = signed_in(app, "pat-08")
    url = f"/task/{key}"
    assert place(app, key) is None
    client.get(f"{url}?step=3")
    assert place(app, key) == 3
    again = client.get(url, headers=NL).get_data(as_text=True)  # a new visit, no ?step
    assert step_of(again)[0] == 3
    assert "Je gaat verder waar je de vorige keer was." in again
    assert f'href="{url}?step=1">Liever bij het begin beginnen?</a>' in again
    start = client.get(f"{url}?step=1", headers=NL).get_data(as_text=True)
    assert step_of(start)[0] == 1 and "Je gaat verder" not in start and place(app, key) == 1
    # Someone else's module: not found, and its place unchanged.
    stranger = signed_in(app, "pat-09")
    assert stranger.get(f"{url}?step=4").status_code == 404 and place(app, key) == 1
    # Done: the module opens at its start when the client reads it again, and every screen
    # says it is done.
    client.get(f"{url}?step=5")
    token = re.search(r'name="csrf_token" value="([^"]+)"', again)[1]
    client.post(f"{url}/done", data={"patient": client_of(client), "csrf_token": token})
    assert place(app, key) is None
    reread = client.get(url, headers=NL).get_data(as_text=True)
    assert step_of(reread)[0] == 1 and "Deze module heb je gedaan." in reread
    assert "Deze module heb je gedaan." in client.get(f"{url}?step=5", headers=NL).get_data(
        as_text=True
    )


def statements_of(app, fetch):
    """The SQL statements ``fetch`` makes the app run, on both its engines."""
    state = app.extensions["fhir_burnout"]
    seen: list[str] = []

    def count(_conn, _cursor, statement, *_):
        seen.append(statement.split(None, 1)[0].upper())

    # The reader is the engine with other options: it shares the engine's events.
    event.listen(state["engine"], "before_cursor_execute", count)
    try:
        assert fetch().status_code == 200
    finally:
        event.remove(state["engine"], "before_cursor_execute", count)
    return seen


def test_remembering_the_place_costs_a_plain_module_page_no_statement(app):
    tasks = enrolled_in(app, "pat-08")
    key = tasks["understanding-burnout"]
    client = signed_in(app, "pat-08")
    client.get(f"/task/{key}")  # started: the first visit records that
    plain = statements_of(app, lambda: client.get(f"/task/{key}"))
    # The session with the Task; the session's token is good for a while yet, as the
    # process read it before, so nothing asks whether it needs renewing.
    assert plain == ["SELECT"]
    moved = statements_of(app, lambda: client.get(f"/task/{key}?step=2"))
    # The place, and nothing else (SQLite's write transaction says BEGIN, PostgreSQL's not).
    assert [s for s in moved if s not in ("SELECT", "BEGIN")] == ["UPDATE"]
    assert moved.count("SELECT") == len(plain)
    same = statements_of(app, lambda: client.get(f"/task/{key}?step=2"))
    assert same == plain  # already there: nothing to write


def test_a_link_to_another_module_goes_to_its_page_when_it_is_open_in_the_clients_track(app):
    tasks = enrolled_in(app, "pat-08")
    open_module(app, tasks["tension-relaxation"])
    open_module(app, tasks["body-signals"])
    client = signed_in(app, "pat-08")
    url = f"/task/{tasks['tension-relaxation']}"
    link = f'<a class="utrecht-link" href="/task/{tasks["body-signals"]}">'
    screens = "".join(every_screen(client, url))
    assert f"{link}Signalen van je lichaam</a>" in screens
    assert "body-signals.md" not in screens and "\x00" not in screens
    english = "".join(every_screen(client, url, {"Accept-Language": "en"}))
    assert f"{link}Your body's signals</a>" in english


@pytest.mark.parametrize("track", ["waiting-list", "standard"])
def test_a_link_to_a_module_outside_the_track_or_not_open_yet_is_plain_text(app, track):
    tasks = enrolled_in(app, "pat-08", track)
    open_module(app, tasks["rhythm-self-care"])  # links perfectionism and boundaries
    assert "perfectionism" not in tasks if track == "waiting-list" else "perfectionism" in tasks
    client = signed_in(app, "pat-08")
    url = f"/task/{tasks['rhythm-self-care']}"
    said = next(p for p in every_screen(client, url) if "modules over perfectionisme" in p)
    assert "modules over perfectionisme en grenzeloosheid" in said  # the words, no link
    assert ".md" not in said and "\x00" not in said


def test_a_care_professional_looking_at_a_module_does_not_move_the_clients_place(app, sandbox):
    tasks = enrolled_in(app, "pat-08")
    key = tasks["understanding-burnout"]
    signed_in(app, "pat-08").get(f"/task/{key}?step=2")
    pro = app.test_client()
    launch(pro, sandbox, patient="pat-08", practitioner="prac-1")
    looked = pro.get(f"/task/{key}?step=4", headers=NL).get_data(as_text=True)
    assert step_of(looked)[0] == 4 and "Alleen de cliënt kan hem afronden" in looked
    assert place(app, key) == 2
    assert step_of(pro.get(f"/task/{key}", headers=NL).get_data(as_text=True))[0] == 2
