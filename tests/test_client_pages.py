"""The client's module page: read, mark as done, and nobody else's."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from fhir_burnout.sync import OutboxEntry
from fhir_burnout.web import create_app
from fhir_burnout.workflow import ResponseRow, TaskRow, add_note, enrol, pause, resume

from .conftest import app_settings, client_of, hidden_fields, path_of
from .smart_flow import sign_in_at_ehr


@pytest.fixture
def enrolled(app):
    state = app.extensions["fhir_burnout"]
    sandbox_base = state["settings"].ehrs[0].fhir_base
    with Session(state["engine"]) as db, db.begin():
        enrolment = enrol(
            db, state["definitions"], fhir_base=sandbox_base, patient="pat-08",
            track="waiting-list", author="Practitioner/prac-1",
        )  # fmt: skip
        return {t.action_id: t.key for t in enrolment.tasks}


def signed_in(app, patient):
    client = app.test_client()
    started = client.get("/login")
    client.get(sign_in_at_ehr(started.headers["Location"] + f"&login_hint=Patient/{patient}"))
    return client


def status(app, key):
    with Session(app.extensions["fhir_burnout"]["engine"]) as db:
        return db.get(TaskRow, key).status


def test_reading_a_module_and_marking_it_done(app, enrolled):
    client = signed_in(app, "pat-08")
    first = enrolled["understanding-burnout"]
    home = client.get("/", headers={"Accept-Language": "nl"}).get_data(as_text=True)
    assert f'href="/task/{first}"' in home
    page = client.get(f"/task/{first}", headers={"Accept-Language": "nl"})
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and ">Wat is burn-out?</h1>" in text
    assert "Ongeveer 20 minuten." in text and "0800-0113" in text
    assert status(app, first) == "in-progress"  # opening it is recorded
    token = re.search(r'name="csrf_token" value="([^"]+)"', text)[1]
    # Without the form's token nothing changes.
    refused = client.post(
        f"/task/{first}/done", data={"patient": client_of(client), "csrf_token": "forged"}
    )
    assert refused.status_code == 400 and status(app, first) == "in-progress"
    done = client.post(
        f"/task/{first}/done", data={"patient": client_of(client), "csrf_token": token}
    )
    assert done.status_code == 303 and status(app, first) == "completed"
    assert status(app, enrolled["body-signals"]) == "ready"  # the next one opens
    again = client.post(
        f"/task/{first}/done", data={"patient": client_of(client), "csrf_token": token}
    )
    assert again.status_code == 303 and status(app, first) == "completed"  # no harm
    english = client.get(f"/task/{first}", headers={"Accept-Language": "en"})
    assert ">What is burn-out?</h1>" in english.get_data(as_text=True)


def test_another_client_cannot_see_or_change_a_module(app, enrolled):
    first = enrolled["understanding-burnout"]
    stranger = signed_in(app, "pat-09")
    page = stranger.get(f"/task/{first}")
    assert page.status_code == 404 and "Wat is burn-out?" not in page.get_data(as_text=True)
    stranger.get("/")  # a session with a token of its own
    with stranger.session_transaction() as cookie:
        token = cookie.get("csrf_token", "x")
    assert stranger.post(
        f"/task/{first}/done", data={"patient": client_of(stranger), "csrf_token": token}
    ).status_code in (
        400,
        404,
    )
    assert status(app, first) == "ready"
    anonymous = app.test_client()
    assert anonymous.get(f"/task/{first}").status_code == 404


def test_pages_carry_a_strict_content_security_policy(app, enrolled):
    client = signed_in(app, "pat-08")
    page = client.get("/")
    policy = page.headers["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([^']+)'", policy)[1]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy  # no other site frames a page of ours
    assert "Strict-Transport-Security" not in page.headers  # plain http: nothing to pin
    assert nonce and "<style" not in page.get_data(as_text=True)  # the look is in files
    assert page.headers["Cache-Control"] == "no-store"
    assert client.get("/").headers["Content-Security-Policy"] != policy  # a nonce per answer


def test_over_https_browsers_are_told_to_stay_on_https(app, sandbox, tmp_path):
    secure = create_app(
        dataclasses.replace(
            app_settings(sandbox.fhir_base, tmp_path), base_url="https://b.example"
        )
    )
    answer = secure.test_client().get("/hulp", base_url="https://b.example")
    assert answer.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    secure.extensions["fhir_burnout"]["engine"].dispose()


def test_an_oversized_post_is_refused_with_a_readable_page(app, enrolled):
    client = signed_in(app, "pat-08")
    first = enrolled["understanding-burnout"]
    text = client.get(f"/task/{first}").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', text)[1]
    answer = client.post(
        f"/task/{first}/done",
        data={"patient": client_of(client), "csrf_token": token, "note": "x" * (600 * 1024)},
        headers={"Accept-Language": "nl"},
    )
    assert answer.status_code == 413
    assert "te veel tekst" in answer.get_data(as_text=True)
    assert status(app, first) == "in-progress"  # nothing changed, nothing lost


def test_the_client_switches_to_english_and_back(app, enrolled):
    client = signed_in(app, "pat-08")
    first = enrolled["understanding-burnout"]
    page = client.get(f"/task/{first}", headers={"Accept-Language": "nl"}).get_data(as_text=True)
    assert 'lang="nl"' in page and ">English</button>" in page
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]
    switched = client.post(
        "/language", data={"csrf_token": token, "language": "en", "next": f"/task/{first}"}
    )
    assert switched.status_code == 303 and switched.headers["Location"] == f"/task/{first}"
    page = client.get(f"/task/{first}", headers={"Accept-Language": "nl"}).get_data(as_text=True)
    assert ">What is burn-out?</h1>" in page and ">Nederlands</button>" in page
    # Only our own pages as the way back, and never without the form's token.
    for away in ("//evil.example", "/\t/evil.example", "/\\evil.example", "/\n/evil.example",
                 "https://evil.example", "/%09/x\t"):  # fmt: skip
        elsewhere = client.post(
            "/language", data={"csrf_token": token, "language": "nl", "next": away}
        )
        assert path_of(elsewhere.headers["Location"]) == "/", away
    assert client.post("/language", data={"language": "en"}).status_code == 400


def test_an_exercise_page_shows_the_steps_and_a_timer_for_a_timed_one(app, enrolled):
    client = signed_in(app, "pat-08")
    module = enrolled["body-signals"]
    page = client.get(f"/task/{module}", headers={"Accept-Language": "nl"})
    assert f'href="/task/{module}/exercise/1"' in page.get_data(as_text=True)
    exercise = client.get(f"/task/{module}/exercise/1", headers={"Accept-Language": "nl"})
    text = exercise.get_data(as_text=True)
    assert ">Oefening: De bodyscan</h2>" in text and '<ol class="utrecht-ordered-list">' in text
    assert 'data-seconds="600"' in text and "guided.js" in text
    # What the timer says each minute, with the plural for each count (guided.js picks one).
    assert "Deze oefening duurt ongeveer 10 minuten." in text
    assert "&#34;Nog 1 minuut.&#34;, &#34;Nog 2 minuten.&#34;" in text
    assert "Uitleg" not in text  # only the exercise, not the whole module
    assert client.get(f"/task/{module}/exercise/9").status_code == 404
    untimed = client.get(f"/task/{enrolled['understanding-burnout']}/exercise/1")
    assert "data-guide" not in untimed.get_data(as_text=True)


def kept_reflections(app):
    with Session(app.extensions["fhir_burnout"]["engine"]) as db:
        rows = db.scalars(select(ResponseRow).order_by(ResponseRow.authored)).all()
        queued = db.scalars(select(OutboxEntry)).all()
        creates = [
            op["resource"]
            for entry in queued
            for op in json.loads(entry.payload)["operations"]
            if op["op"] == "create" and op["resource"]["resourceType"] == "QuestionnaireResponse"
        ]
        return [json.loads(r.resource) for r in rows], creates


def test_after_an_exercise_the_client_can_look_back_and_it_is_kept_once(app, enrolled):
    client = signed_in(app, "pat-08")
    module = enrolled["body-signals"]
    url = f"/task/{module}/exercise/1"
    page = client.get(url, headers={"Accept-Language": "nl"}).get_data(as_text=True)
    assert "Even terugkijken op de oefening" in page and "Je mag alles overslaan" in page
    assert "reflection-exercise" not in page  # which exercise it was is ours to fill in
    form = {
        **hidden_fields(page),
        "form_id": re.search(r'name="form_id" value="([^"]+)"', page)[1],
        "a.reflection-tension-before": "7",
        "a.reflection-tension-after": "15",
        "a.reflection-noticed": "Mijn schouders werden zwaar.",
    }
    # A mistake: shown at its question, what was typed is still there, nothing kept.
    wrong = client.post(f"{url}/reflection", data=form, headers={"Accept-Language": "nl"})
    text = wrong.get_data(as_text=True)
    assert wrong.status_code == 400 and 'id="error-reflection-tension-after"' in text
    assert "Mijn schouders werden zwaar.</textarea>" in text
    assert kept_reflections(app) == ([], [])
    form["a.reflection-tension-after"] = "4"
    for _ in range(2):  # sent twice (a double click, a reload): kept once
        kept = client.post(f"{url}/reflection", data=form)
        assert kept.status_code == 303 and kept.headers["Location"].endswith(
            f"/task/{module}?reflection=saved"
        )
    [response], [queued] = kept_reflections(app)
    answers = {i["linkId"]: i["answer"][0] for i in response["item"]}
    assert answers["reflection-exercise"] == {"valueString": "body-scan"}
    assert answers["reflection-tension-after"] == {"valueInteger": 4}
    assert response["subject"] == {"reference": "Patient/pat-08"}
    assert queued["identifier"] == response["identifier"]  # on its way to the EHR
    thanks = client.get(f"/task/{module}?reflection=saved", headers={"Accept-Language": "nl"})
    assert "Je antwoorden na de oefening zijn bewaard" in thanks.get_data(as_text=True)
    # Nothing filled in: nothing kept. Someone else's module, or no form token: refused.
    empty = {**hidden_fields(page), "form_id": form["form_id"]}
    assert client.post(f"{url}/reflection", data=empty).status_code == 303
    assert client.post(f"{url}/reflection", data={**form, "csrf_token": "x"}).status_code == 400
    stranger = signed_in(app, "pat-09")
    stranger.get("/")
    with stranger.session_transaction() as cookie:
        token = cookie["csrf_token"]
    other = stranger.post(f"{url}/reflection", data={**form, "csrf_token": token})
    assert other.status_code == 404
    assert len(kept_reflections(app)[0]) == 1


def test_a_paused_programme_tells_the_client_and_keeps_its_pages_closed(app, enrolled):
    state = app.extensions["fhir_burnout"]
    first = enrolled["understanding-burnout"]
    with Session(state["engine"]) as db, db.begin():
        enrolment_key = db.get(TaskRow, first).enrolment_key
        pause(db, enrolment_key, by="Practitioner/prac-1")
    client = signed_in(app, "pat-08")
    home = client.get("/", headers={"Accept-Language": "nl"}).get_data(as_text=True)
    assert "Je programma staat even stil" in home and "0800-0113" in home
    assert f'href="/task/{first}"' not in home  # nothing to do meanwhile
    # The module can still be read, but not marked done.
    page = client.get(f"/task/{first}", headers={"Accept-Language": "nl"})
    assert page.status_code == 200 and status(app, first) == "on-hold"
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))[1]
    refused = client.post(
        f"/task/{first}/done", data={"patient": client_of(client), "csrf_token": token}
    )
    assert refused.status_code == 409 and status(app, first) == "on-hold"
    with Session(state["engine"]) as db, db.begin():
        resume(db, enrolment_key, by="Practitioner/prac-1")
    home = client.get("/", headers={"Accept-Language": "nl"}).get_data(as_text=True)
    assert "Je programma staat even stil" not in home and f'href="/task/{first}"' in home


def test_a_note_from_the_care_professional_shows_on_the_clients_own_first_page(app, enrolled):
    state = app.extensions["fhir_burnout"]
    with Session(state["engine"]) as db, db.begin():
        enrolment_key = db.get(TaskRow, enrolled["understanding-burnout"]).enrolment_key
        add_note(db, enrolment_key, "Fijn dat je begonnen bent. <b>Tot dinsdag!</b>",
                 by="Practitioner/prac-1")  # fmt: skip
    home = signed_in(app, "pat-08").get("/", headers={"Accept-Language": "nl"})
    text = home.get_data(as_text=True)
    assert "Berichten van je behandelaar" in text
    assert "Fijn dat je begonnen bent. &lt;b&gt;Tot dinsdag!&lt;/b&gt;" in text  # text, not HTML
    # Another client sees none of it.
    other = signed_in(app, "pat-09").get("/", headers={"Accept-Language": "nl"})
    assert "Fijn dat je begonnen bent" not in other.get_data(as_text=True)


def test_another_client_cannot_see_an_exercise_or_keep_a_look_back_on_it(app, enrolled):
    """The exercise pages read the module's Task as the module page does (values only, one
    statement with the session): the same refusal for a Task that is not the client's."""
    module = enrolled["tension-relaxation"]
    owner = signed_in(app, "pat-08")
    assert owner.get(f"/task/{module}/exercise/1").status_code == 200
    stranger = signed_in(app, "pat-09")
    for path in (f"/task/{module}/exercise/1", f"/task/{module}/exercise/1/audio"):
        page = stranger.get(path, headers={"Accept-Language": "nl"})
        assert page.status_code == 404 and "Spanning loslaten" not in page.get_data(as_text=True)
    stranger.get("/")
    with stranger.session_transaction() as cookie:
        token = cookie.get("csrf_token", "x")
    kept = stranger.post(
        f"/task/{module}/exercise/1/reflection",
        data={"patient": client_of(stranger), "csrf_token": token, "form_id": ""},
    )
    assert kept.status_code == 404
    with Session(app.extensions["fhir_burnout"]["engine"]) as db:
        assert db.scalars(select(ResponseRow).where(ResponseRow.task_key == module)).all() == []
    assert app.test_client().get(f"/task/{module}/exercise/1").status_code == 404
