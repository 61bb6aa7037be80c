"""The EHR goes down while a client is in the programme: their pages work on our own state,
what they type is kept and queued, and nothing waits for the EHR to come back."""

from __future__ import annotations

import re

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from fhir_burnout.sandbox import SandboxProcess
from fhir_burnout.sync import OutboxEntry
from fhir_burnout.web import create_app
from fhir_burnout.workflow import ResponseRow, TaskRow, enrol

from .conftest import app_settings, client_of, hidden_fields
from .smart_flow import sign_in_at_ehr


def token_of(page):
    return re.search(r'name="csrf_token" value="([^"]+)"', page)[1]


def test_a_client_carries_on_while_the_ehr_is_down(tmp_path):
    with SandboxProcess() as ehr:
        info = ehr.info
        app = create_app(app_settings(info.fhir_base, tmp_path))
        state = app.extensions["fhir_burnout"]
        with Session(state["engine"]) as db, db.begin():
            enrolment = enrol(
                db, state["definitions"], fhir_base=info.fhir_base, patient="pat-05",
                track="waiting-list", author="Practitioner/prac-1",
            )  # fmt: skip
            tasks = {t.action_id: t.key for t in enrolment.tasks}
        client = app.test_client()
        started = client.get("/login").headers["Location"] + "&login_hint=Patient/pat-05"
        client.get(sign_in_at_ehr(started))
        assert "Wat is burn-out?" in client.get("/").get_data(as_text=True)
        # The EHR's access token has run out just as the EHR goes down: a refresh cannot
        # reach it. The client notices nothing.
        with state["engine"].begin() as db:
            db.execute(text("update launch_session set expires_at = 0"))
        state["store"].forget_lifetimes()  # as the token's running out would have told it
        ehr.stop()

        home = client.get("/", headers={"Accept-Language": "nl"})
        assert home.status_code == 200 and "Wat is burn-out?" in home.get_data(as_text=True)
        module = tasks["understanding-burnout"]
        page = client.get(f"/task/{module}?step=99").get_data(as_text=True)  # its last screen
        assert (
            client.post(
                f"/task/{module}/done",
                data={**hidden_fields(page)},
            ).status_code
            == 303
        )
        url = f"/task/{tasks['who-5.start']}/form"
        form = client.get(url).get_data(as_text=True)
        answers = {f"a.who5-{n}": "3" for n in range(1, 6)}
        sent = client.post(
            url,
            data={
                **answers,
                "patient": client_of(client),
                **hidden_fields(form),
                "action": "submit",
            },
        )
        assert sent.status_code == 303
        progress = client.get("/progress", headers={"Accept-Language": "nl"})
        assert progress.status_code == 200 and "fb-chart__dot" in progress.get_data(as_text=True)
        with Session(state["engine"]) as db:
            assert db.get(TaskRow, module).status == "completed"
            assert db.scalar(select(func.count()).select_from(ResponseRow)) == 1
            waiting = db.scalar(
                select(func.count()).select_from(OutboxEntry).where(OutboxEntry.state == "pending")
            )
        assert waiting >= 3  # enrolment, module done, the answers: all on their way
        state["engine"].dispose()
