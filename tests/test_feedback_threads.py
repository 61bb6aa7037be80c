"""Feedback both ways on homework (issue 21, point 3): the care professional responds to one
homework answer, the client reads it beside their answer and replies, the care professional
reads the reply; each message reaches the EHR as a Communication with the references that
tie it to the answer, its Task and the message it answers. Nobody else reaches a thread;
a note for care professionals only never reaches a page of the client's nor the client's
compartment; texts are short and plain; the client's reply is kept while the EHR is down.
On SQLite and PostgreSQL, against the sandbox EHR (the worker delivers)."""

from __future__ import annotations

import html
import json
from datetime import UTC, date, datetime

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import func, inspect, select, text
from sqlalchemy.orm import Session

from fhir_burnout._demo_history import Event, History, play
from fhir_burnout.db import create_db_engine, upgrade
from fhir_burnout.db._migrate import MIGRATIONS
from fhir_burnout.demo import enrol_demo_patients
from fhir_burnout.fhir import FhirClient
from fhir_burnout.koppeltaal._plan import plan_entry
from fhir_burnout.sync import Backoff, OutboxEntry, Worker, operation_from_json, queue_status
from fhir_burnout.web import create_app
from fhir_burnout.web._gate import GATE
from fhir_burnout.workflow import (
    MAX_MESSAGE,
    Definitions,
    EnrolmentRow,
    ResponseRow,
    TaskRow,
    ThreadMessageRow,
    enrol,
    post_message,
    stop,
)

from .conftest import app_settings, client_of, hidden_fields
from .launches import as_patient
from .outbox_load import deliver_all, worker_token_source
from .practitioners import PRACTICE, as_practitioner, make_app, page_of, post, server

#: The client's own words in their tension log: what the care professional responds to.
WORDS = "Mail van mijn werk gelezen, daarna de hele avond onrustig"
NL = {"Accept-Language": "nl"}


@pytest.fixture
def app(sandbox, tmp_path, database_url):
    app = make_app(sandbox, tmp_path / "app", database_url)
    yield app
    app.extensions["fhir_burnout"]["engine"].dispose()


@pytest.fixture
def worker(app, sandbox):
    client = FhirClient(sandbox.fhir_base, token_source=worker_token_source(sandbox))
    yield Worker(app.extensions["fhir_burnout"]["engine"], lambda base: client, owner="t21")
    client.close()


def homework_answer(app, fhir_base, patient, words=WORDS):
    """``patient`` twelve days into the standard track: the first module done, the second
    open, and its tension log sent with ``words``; returns (enrolment, Task, response) keys."""
    state = app.extensions["fhir_burnout"]
    moment = {
        "tension-datetime": (9, 20, 45), "tension-level": 7, "tension-body": ["neck-shoulders"],
        "tension-situation": words, "tension-exercise": False,
    }  # fmt: skip
    history = History(patient, "standard", 12, (
        Event(1, 19, "open", "understanding-burnout"),
        Event(3, 21, "done", "understanding-burnout"),
        Event(4, 19, "open", "body-signals"),
        Event(10, 20, "answer", "body-signals.tension-log", {"tension-moment": [moment]}),
        Event(10, 21, "answer", "phq-9.start", {f"phq9-{n}": 1 for n in range(1, 10)}),
    ))  # fmt: skip
    with Session(state["engine"]) as db, db.begin():
        played = play(db, state["definitions"], history, fhir_base=fhir_base, today=date.today())
    with Session(state["engine"]) as db:
        task = db.scalar(
            select(TaskRow.key).where(
                TaskRow.enrolment_key == played.enrolment,
                TaskRow.action_id == "body-signals.tension-log",
            )
        )
        response = db.scalar(select(ResponseRow.key).where(ResponseRow.task_key == task))
    return played.enrolment, task, response


def measure_answer(app, enrolment):
    """The key of the enrolment's PHQ-9 (a measure: no thread)."""
    with Session(app.extensions["fhir_burnout"]["engine"]) as db:
        return db.scalar(
            select(ResponseRow.key).where(
                ResponseRow.enrolment_key == enrolment,
                ResponseRow.questionnaire.like("%phq-9%"),
            )
        )


def client_page(client, path):
    answer = client.get(path, headers=NL)
    return answer.status_code, answer.get_data(as_text=True)


def reply(client, key, words):
    """The client's reply as their answer page's form sends it (the client its launch's)."""
    _, page = client_page(client, "/answers")
    fields = {"csrf_token": hidden_fields(page)["csrf_token"], "patient": client_of(client)}
    return client.post(f"/answers/{key}/reply", data={**fields, "text": words}, headers=NL)


def respond(client, key, words, **extra):
    return post(client, f"/practitioner/responses/{key}/thread", text=words, **extra)


def messages(app):
    with Session(app.extensions["fhir_burnout"]["engine"]) as db:
        rows = db.scalars(select(ThreadMessageRow).order_by(ThreadMessageRow.created_at)).all()
        return [(m.key, m.author, m.text, m.clinician_only) for m in rows]


def main_of(page):
    """The page's main content (the crisis help and header around it left out)."""
    return page.split("<main>", 1)[1].split("</main>", 1)[0]


def test_a_response_and_the_clients_reply_reach_the_ehr_as_communications(
    app, sandbox, worker, fhir
):
    _, task, answer = homework_answer(app, sandbox.fhir_base, "pat-15")
    carer = as_practitioner(app, sandbox, "pat-15")
    _, page = page_of(carer)
    assert WORDS in page and f'id="thread-{answer}"' in page  # the form under the answer
    sent = respond(carer, answer, "Herkenbaar. Wat merkte je in je schouders?")
    assert sent.status_code == 303 and sent.headers["Location"].endswith(f"#thread-{answer}")
    _, page = page_of(carer)
    assert "De reactie is verstuurd" in page and "Herkenbaar. Wat merkte je" in page

    # The client: a calm line on their home, with the way to their answer.
    client = as_patient(app, "pat-15")
    _, home = client_page(client, "/")
    assert "Je behandelaar heeft gereageerd op je antwoord bij Spanningsdagboek" in home
    assert f'href="/answers/{answer}"' in home
    status, own = client_page(client, f"/answers/{answer}")
    assert status == 200
    assert "Je antwoord en de reactie van je behandelaar" in own
    assert WORDS in own and "Herkenbaar. Wat merkte je in je schouders?" in own
    assert "Je behandelaar" in own and 'name="csrf_token"' in own  # a form to reply
    _, home = client_page(client, "/")  # read: the notice is gone
    assert "heeft gereageerd" not in home
    replied = reply(client, answer, "Vooral in mijn nek.\r\nIk ging daarna wandelen.")
    assert replied.status_code == 303
    _, own = client_page(client, f"/answers/{answer}")
    assert "Je reactie is bewaard" in own and "Vooral in mijn nek.<br>Ik ging daarna" in own

    # The care professional reads the reply under the answer, marked as the last word.
    _, page = page_of(carer)
    assert (
        "Vooral in mijn nek." in page
        and "De cliënt reageerde als laatste en heeft nog geen antwoord." in page
    )
    again = respond(carer, answer, "Mooi dat je ging wandelen.")
    assert again.status_code == 303

    deliver_all(worker)
    assert queue_status(app.extensions["fhir_burnout"]["engine"]).dead == 0
    first, second, third = (server(fhir, key, "Communication") for key, *_ in messages(app))
    task_id = server(fhir, task)["id"]
    response_id = server(fhir, answer, "QuestionnaireResponse")["id"]
    for communication in (first, second, third):
        assert communication["status"] == "completed"
        assert communication["subject"] == {"reference": "Patient/pat-15"}
        assert communication["basedOn"] == [{"reference": f"Task/{task_id}"}]
        assert communication["about"] == [{"reference": f"QuestionnaireResponse/{response_id}"}]
        assert communication["sent"]
    assert first["sender"] == {"reference": "Practitioner/prac-1"}
    assert first["recipient"] == [{"reference": "Patient/pat-15"}]
    assert first["payload"] == [{"contentString": "Herkenbaar. Wat merkte je in je schouders?"}]
    assert "inResponseTo" not in first
    assert second["sender"] == {"reference": "Patient/pat-15"}
    assert second["recipient"] == [{"reference": "Practitioner/prac-1"}]
    assert second["inResponseTo"] == [{"reference": f"Communication/{first['id']}"}]
    assert second["payload"] == [
        {"contentString": "Vooral in mijn nek.\nIk ging daarna wandelen."}
    ]
    assert third["inResponseTo"] == [{"reference": f"Communication/{second['id']}"}]
    assert third["recipient"] == [{"reference": "Patient/pat-15"}]
    for communication in (first, second, third):  # each with its Provenance
        [provenance] = fhir.search(
            "Provenance", {"target": f"Communication/{communication['id']}"}
        )
        assert provenance["agent"][0]["onBehalfOf"] == {"reference": PRACTICE}


def test_nobody_else_reaches_a_thread(app, sandbox):
    enrolment, _, answer = homework_answer(app, sandbox.fhir_base, "pat-16")
    homework_answer(app, sandbox.fhir_base, "pat-17")
    carer = as_practitioner(app, sandbox, "pat-16")
    assert respond(carer, answer, "Dank je, goed gedaan.").status_code == 303

    other_client = as_patient(app, "pat-17")  # another client of the same practice
    assert client_page(other_client, f"/answers/{answer}")[0] == 404
    assert answer not in client_page(other_client, "/answers")[1]
    assert reply(other_client, answer, "Niet van mij").status_code == 404
    # A care professional launched from another client's chart.
    not_theirs = as_practitioner(app, sandbox, "pat-17", practitioner="prac-2")
    refused = respond(not_theirs, answer, "Niet mijn cliënt")
    assert refused.status_code == 404 and "Niet mijn" not in refused.get_data(as_text=True)
    # A measure has no thread, not even for the client's own care professional.
    assert respond(carer, measure_answer(app, enrolment), "Over de PHQ-9").status_code == 404
    # An enrolment another practice made on the same EHR is not this practice's thread.
    with app.extensions["fhir_burnout"]["engine"].begin() as db:
        db.execute(
            text("UPDATE enrolment SET practice = 'Organization/practice-2' WHERE key = :key"),
            {"key": enrolment},
        )
    assert respond(carer, answer, "Andere praktijk").status_code == 404
    assert f'id="thread-{answer}"' not in page_of(carer)[1]  # nor its thread on the page
    assert [m[2] for m in messages(app)] == ["Dank je, goed gedaan."]
    # A care professional reads the client's page, and does not reply as the client.
    assert client_page(carer, f"/answers/{answer}")[0] == 200
    assert reply(carer, answer, "Namens de cliënt").status_code == 403
    assert len(messages(app)) == 1


def test_a_text_too_long_or_empty_comes_back_as_typed_with_a_kind_word(app, sandbox):
    _, _, answer = homework_answer(app, sandbox.fhir_base, "pat-18")
    carer = as_practitioner(app, sandbox, "pat-18")
    long = "Heel goed. " * 200  # 2,200 characters
    refused = respond(carer, answer, long, clinician_only="yes")
    page = refused.get_data(as_text=True)
    assert refused.status_code == 400
    assert "De reactie telt 2.199 tekens; het maximum is 2.000." in page
    assert html.escape(long.strip(), quote=False) in page  # as typed, the box still ticked
    assert 'name="clinician_only" value="yes" checked' in page
    empty = respond(carer, answer, "  \r\n ")
    assert empty.status_code == 400 and "De reactie is leeg" in empty.get_data(as_text=True)
    exactly = respond(carer, answer, "x" * MAX_MESSAGE)
    assert exactly.status_code == 303

    client = as_patient(app, "pat-18")
    refused = reply(client, answer, "Ik heb veel te zeggen. " * 100)
    page = refused.get_data(as_text=True)
    assert refused.status_code == 400
    assert "Je reactie is wat te lang: 2.299 tekens, en er passen er 2.000." in page
    assert "Ik heb veel te zeggen. Ik heb veel" in page and 'aria-invalid="true"' in page
    assert "Je hebt nog niets getypt" in reply(client, answer, "").get_data(as_text=True)
    assert [m[2] for m in messages(app)] == ["x" * MAX_MESSAGE]


def test_typed_markup_is_shown_as_text_on_both_sides(app, sandbox):
    _, _, answer = homework_answer(app, sandbox.fhir_base, "pat-19")
    carer = as_practitioner(app, sandbox, "pat-19")
    respond(carer, answer, '<b>Goed</b> <script>alert("x")</script>')
    client = as_patient(app, "pat-19")
    _, own = client_page(client, f"/answers/{answer}")
    assert "&lt;b&gt;Goed&lt;/b&gt; &lt;script&gt;" in own and "<b>Goed" not in own
    reply(client, answer, '<a href="https://example.org">kijk</a>')
    _, page = page_of(carer)
    assert "&lt;a href=" in page and '<a href="https://example.org">' not in page


def test_a_note_for_care_professionals_only_never_reaches_the_client(app, sandbox, worker, fhir):
    _, task, answer = homework_answer(app, sandbox.fhir_base, "pat-20")
    carer = as_practitioner(app, sandbox, "pat-20")
    noted = respond(carer, answer, "Let op: mogelijk piekeren, volgende sessie bespreken.",
                    clinician_only="yes")  # fmt: skip
    assert noted.status_code == 303
    _, page = page_of(carer)
    assert "De notitie is bewaard, alleen voor behandelaars" in page
    assert "mogelijk piekeren" in page and "alleen voor behandelaars" in page

    client = as_patient(app, "pat-20")
    for path in ("/", "/progress", "/programme", "/answers", f"/answers/{answer}"):
        status, seen = client_page(client, path)
        assert status == 200, path
        assert "volgende sessie bespreken" not in seen, path
        assert "heeft gereageerd" not in seen, path
    _, own = client_page(client, f"/answers/{answer}")
    assert "Je behandelaar heeft nog niet op dit antwoord gereageerd." in own
    assert 'name="text"' not in own  # nothing to reply to
    assert reply(client, answer, "Waarop?").status_code == 409

    deliver_all(worker)
    [(key, *_)] = messages(app)
    note = server(fhir, key, "Communication")
    # Out of the client's compartment (R4 CompartmentDefinition patient: Communication by
    # subject, sender, recipient): to the practice, about the answer, based on its Task.
    assert "subject" not in note
    assert note["recipient"] == [{"reference": PRACTICE}]
    assert note["sender"] == {"reference": "Practitioner/prac-1"}
    assert note["basedOn"] == [{"reference": f"Task/{server(fhir, task)['id']}"}]
    in_compartment = list(fhir.search("Communication", {"subject": "Patient/pat-20"}))
    in_compartment += list(fhir.search("Communication", {"recipient": "Patient/pat-20"}))
    assert note["id"] not in {c["id"] for c in in_compartment}


def test_the_clients_reply_is_kept_while_the_ehr_is_down(app, sandbox, worker, fhir):
    _, _, answer = homework_answer(app, sandbox.fhir_base, "pat-21")
    deliver_all(worker)
    carer = as_practitioner(app, sandbox, "pat-21")
    respond(carer, answer, "Hoe ging de week verder?")
    client = as_patient(app, "pat-21")
    engine = app.extensions["fhir_burnout"]["engine"]
    # The EHR is away: the worker cannot reach it, the client's pages do not need it.
    with FhirClient("http://127.0.0.1:9/fhir", token="x") as away:
        # Tried again at once (no backoff): the EHR back, the next round delivers.
        down = Worker(engine, lambda base: away, owner="t21-down", backoff=Backoff(0.0, 0.0))
        down.run_once()
        assert reply(client, answer, "Rustiger, dank je.").status_code == 303
        down.run_once()
    _, own = client_page(client, f"/answers/{answer}")
    assert "Rustiger, dank je." in own
    assert queue_status(engine).dead == 0
    with Session(engine) as db:
        waiting = db.scalar(
            select(func.count()).select_from(OutboxEntry).where(OutboxEntry.kind == "thread")
        )
    assert waiting == 2
    deliver_all(worker)  # the EHR is back
    [_, (key, *_)] = messages(app)
    assert server(fhir, key, "Communication")["payload"] == [
        {"contentString": "Rustiger, dank je."}
    ]


def test_no_form_without_its_token_changes_anything(app, sandbox):
    _, _, answer = homework_answer(app, sandbox.fhir_base, "pat-22")
    carer = as_practitioner(app, sandbox, "pat-22")
    forged = carer.post(
        f"/practitioner/responses/{answer}/thread",
        data={"csrf_token": "x", "patient": "pat-22", "text": "Vervalst"},
    )
    assert forged.status_code == 400
    respond(carer, answer, "Echt")
    client = as_patient(app, "pat-22")
    forged = client.post(
        f"/answers/{answer}/reply", data={"csrf_token": "x", "patient": "pat-22", "text": "Nep"}
    )
    assert forged.status_code == 400
    assert [m[2] for m in messages(app)] == ["Echt"]


def test_an_ended_programme_keeps_its_threads_to_read_only(app, sandbox):
    enrolment, _, answer = homework_answer(app, sandbox.fhir_base, "pat-23")
    carer = as_practitioner(app, sandbox, "pat-23")
    respond(carer, answer, "Tot volgende week.")
    with Session(app.extensions["fhir_burnout"]["engine"]) as db, db.begin():
        stop(db, enrolment, by="Practitioner/prac-1")
    _, page = page_of(carer)
    assert "Tot volgende week." in page and "reageren kan hier niet meer" in page
    assert respond(carer, answer, "Nog iets").status_code == 409
    client = as_patient(app, "pat-23")
    _, own = client_page(client, f"/answers/{answer}")
    assert "Tot volgende week." in own and 'name="text"' not in own
    assert "Je programma is afgelopen" in own
    assert reply(client, answer, "Bedankt").status_code == 409
    assert len(messages(app)) == 1


# --- without the sandbox: the pages' gate, Koppeltaal, the migration -------------------------


@pytest.fixture
def definitions(resources):
    return Definitions.from_resources(resources)


def test_the_client_s_answer_pages_are_behind_the_client_gate(tmp_path):
    app = create_app(app_settings("http://127.0.0.1:9/fhir", tmp_path))
    pages = [r for r in app.url_map.iter_rules() if r.rule.startswith("/answers")]
    assert {r.rule for r in pages} == {"/answers", "/answers/<key>", "/answers/<key>/reply"}
    for rule in pages:
        assert getattr(app.view_functions[rule.endpoint], GATE, None) == ("client_of_launch",)


def test_on_a_koppeltaal_domain_the_thread_stays_in_the_app(engine, definitions):
    base = "https://domain.example/fhir"
    with Session(engine) as db, db.begin():
        enrolment = enrol(
            db, definitions, fhir_base=base, patient="pat-3", track="standard",
            author="Practitioner/prac-1",
        )  # fmt: skip
        task = next(t for t in enrolment.tasks if t.kind == "homework")
        db.add(
            ResponseRow(
                key="r-1", task_key=task.key, enrolment_key=enrolment.key,
                questionnaire=task.definition, status="completed", resource="{}",
                scores="[]", authored=datetime.now(UTC),
            )
        )  # fmt: skip
        db.flush()
        post_message(db, db.get(ResponseRow, "r-1"), "Goed zo.", by="Practitioner/prac-1")
    with Session(engine) as db:
        payload = db.scalar(select(OutboxEntry.payload).where(OutboxEntry.kind == "thread"))
    operations = [operation_from_json(op) for op in json.loads(payload)["operations"]]
    with Session(engine) as db, db.begin():
        plan = plan_entry(db, base, operations)
    assert plan.changes == () and plan.audit_events == ()
    assert plan.kept_text() == "stays with us: 1 Communication"


def test_daan_s_demo_history_has_a_thread_about_his_first_tension_log(engine, definitions):
    enrol_demo_patients(engine, definitions, "https://ehr.example/fhir", today=date(2026, 12, 7))
    with Session(engine) as db:
        rows = db.scalars(
            select(ThreadMessageRow)
            .join(EnrolmentRow, ThreadMessageRow.enrolment_key == EnrolmentRow.key)
            .where(EnrolmentRow.patient == "pat-04")
            .order_by(ThreadMessageRow.created_at)
        ).all()
        authors = [m.author for m in rows]
        answered = [m.in_response_to for m in rows]
        queued = db.scalar(
            select(func.count()).select_from(OutboxEntry).where(OutboxEntry.kind == "thread")
        )
    assert authors == ["Practitioner/prac-1", "Patient/pat-04", "Practitioner/prac-1"]
    assert answered == [None, rows[0].key, rows[1].key] and queued == 3


def test_the_thread_table_comes_and_goes_with_its_migration(database_url):
    engine = create_db_engine(database_url)
    upgrade(engine, "0021")
    assert "thread_message" not in inspect(engine).get_table_names()
    upgrade(engine)
    columns = {c["name"] for c in inspect(engine).get_columns("thread_message")}
    assert {"response_key", "author", "text", "clinician_only", "in_response_to"} <= columns
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0021")
    assert "thread_message" not in inspect(engine).get_table_names()
    engine.dispose()
