"""A care professional at the practice's pages: the app writing for a practice, a signed-in
care professional, the pages' forms, and questionnaires answered as the client's page sends
them."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from fhir_burnout.questionnaire import build_response, load_form, score
from fhir_burnout.sync import KEY_SYSTEM
from fhir_burnout.web import create_app
from fhir_burnout.workflow import EnrolmentRow, TaskRow, submit_response

from .conftest import app_settings, with_ehr
from .launches import launch

PRACTICE = "Organization/practice-1"


def make_app(sandbox, folder, database_url, practice=PRACTICE):
    """The app trusting the sandbox, its worker writing for ``practice``."""
    folder.mkdir(parents=True, exist_ok=True)
    settings = app_settings(sandbox.fhir_base, folder, database_url=database_url)
    return create_app(
        with_ehr(settings, worker_client_id="fhir-burnout-worker", practice=practice)
    )


def as_practitioner(app, sandbox, patient, practitioner="prac-1"):
    client = app.test_client()
    launch(client, sandbox, patient=patient, practitioner=practitioner)
    return client


def token_of(page):
    return re.search(r'name="csrf_token" value="([^"]+)"', page)[1]


def page_of(client, path="/practitioner"):
    answer = client.get(path, headers={"Accept-Language": "nl"})
    return answer.status_code, answer.get_data(as_text=True)


def patient_of(page):
    """The client the page's forms act on (the server checks it against the launch)."""
    return re.search(r'name="patient" value="([^"]*)"', page)[1]


def post(client, path, **form):
    _, page = page_of(client)
    fields = {"csrf_token": token_of(page), "patient": patient_of(page)}
    return client.post(path, data={**fields, **form}, headers={"Accept-Language": "nl"})


def enrolments(app, patient):
    with Session(app.extensions["fhir_burnout"]["engine"]) as db:
        rows = db.scalars(
            select(EnrolmentRow)
            .where(EnrolmentRow.patient == patient)
            .order_by(EnrolmentRow.created_at)
        ).all()
        return [(e.key, e.track, e.status) for e in rows]


def server(fhir, key, resource_type="Task"):
    [found] = fhir.search(resource_type, {"identifier": f"{KEY_SYSTEM}|{key}"})
    return found


def answers_for(form, choices):
    """linkId -> the option at index ``choices[linkId]`` (answers as the form keeps them)."""
    return {
        link: [{"valueCoding": form.index[link].options[n].value}] for link, n in choices.items()
    }


def submit(db, definitions, task_key, choices, *, patient, now, extra=None):
    """Send a questionnaire as the page would: built, scored, safety checked by the caller."""
    task = db.get(TaskRow, task_key)
    form = load_form(definitions.by_canonical[task.definition], lang="nl")
    answers = answers_for(form, choices) | (extra or {})
    who = f"Patient/{patient}"
    response = build_response(
        form, answers, status="completed", subject=who, author=who,
        authored=now.isoformat(timespec="seconds"),
    )  # fmt: skip
    scores = [s.stored() for s in score(form, response, current=True) if s.value is not None]
    safety = any(
        a["valueCoding"]["code"] != "no" for a in answers.get("checkin-safety", [])
    )  # the weekly check-in's safety question
    return submit_response(
        db, definitions, task_key, response, who=who, scores=scores, safety_signal=safety,
        now=now,
    )  # fmt: skip


PHQ9_ITEMS = [f"phq9-{n}" for n in range(1, 10)]
