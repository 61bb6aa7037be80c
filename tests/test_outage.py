"""Nothing lost in an outage, with the database REALLY stopped: a private PostgreSQL cluster
for this test, stopped (immediate shutdown) between loading a form and pressing "Versturen".
The page comes back with the posted answers and crisis help for the worrying one, the other
pages answer with a readable error page with crisis help, the browser's unsent copy puts the
answers back on a fresh load, and once the database is back, sending again stores them and
raises the alert, once."""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from fhir_burnout.workflow import ResponseRow, enrol

from .conftest import (
    PHONE,
    SCREENSHOTS,
    accessible,
    home_url,
    responses_and_alerts,
    serving,
)

INITDB = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
SAFETY_QUESTION = "Had je de afgelopen week gedachten"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Cluster:
    """A PostgreSQL cluster of our own, run as the ``postgres`` OS user (initdb and pg_ctl
    refuse root), in a folder it owns, on a free port; trust authentication, no fsync."""

    def __init__(self, bindir: Path, folder: Path) -> None:
        self.bindir, self.folder, self.port = bindir, folder, _free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        command = ["runuser", "-u", "postgres", "--", str(self.bindir / tool), *args]
        subprocess.run(command, check=True, capture_output=True, timeout=60, cwd=self.folder)

    def init(self) -> None:
        self._run("initdb", "-D", str(self.folder / "data"), "-A", "trust", "-U", "postgres",
                  "-E", "UTF8", "--no-sync")  # fmt: skip

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} -c fsync=off "
            "-c full_page_writes=off -c synchronous_commit=off"
        )
        self._run("pg_ctl", "-D", str(self.folder / "data"), "-l", str(self.folder / "log"),
                  "-o", options, "-w", "start")  # fmt: skip

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.folder / "data"), "-m", "immediate", "-w", "stop")


@pytest.fixture
def cluster():
    if not INITDB:
        pytest.skip("initdb is absent: this test needs PostgreSQL's server programs")
    folder = Path(tempfile.mkdtemp(prefix="fhir-burnout-outage-"))
    shutil.chown(folder, "postgres", "postgres")
    cluster = Cluster(INITDB[-1].parent, folder)
    cluster.init()
    cluster.start()
    try:
        yield cluster
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):  # stopped already
            cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def live_on(cluster, tmp_path_factory):
    """The app on a real port, on the cluster's database, and a sandbox EHR launching it."""

    def on_the_cluster(settings):
        return dataclasses.replace(settings, database_url=cluster.url)

    with serving(tmp_path_factory, "outage", on_the_cluster) as running:
        yield running
        running.app.extensions["fhir_burnout"]["engine"].dispose()


def stored(live, task):
    return responses_and_alerts(live.app, task)


def test_a_send_while_the_database_is_down_keeps_the_answers_and_shows_crisis_help(
    cluster, live_on, browser
):
    live = live_on
    state = live.app.extensions["fhir_burnout"]
    with Session(state["engine"]) as db, db.begin():
        enrolment = enrol(
            db, state["definitions"], fhir_base=live.info.fhir_base, patient="pat-01",
            track="waiting-list", author="Practitioner/prac-1",
        )  # fmt: skip
        key = next(t.key for t in enrolment.tasks if t.action_id == "weekly-checkin.weekly")
    context = browser.new_context(locale="nl-NL", viewport=PHONE, bypass_csp=True)
    page = context.new_page()
    page.goto(f"{live.info.launcher}?app=fhir-burnout&patient=pat-01")
    page.wait_for_url(home_url(live.app_url))
    form_url = f"{live.app_url}/task/{key}/form"
    page.goto(form_url)
    page.get_by_label("Hoeveel energie had je deze week?").fill("2")
    page.get_by_role("group", name="Hoe heb je deze week geslapen?").get_by_label(
        "Slecht", exact=True
    ).check()
    page.get_by_label("Hoeveel spanning voelde je deze week?").fill("8")
    page.get_by_label("Wat ging er deze week goed?").fill("Even buiten geweest")
    page.get_by_role("group", name=SAFETY_QUESTION).get_by_label("Vaak").check()

    cluster.stop()
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.get_by_role("button", name="Versturen").click()
    assert posted.value.status == 503
    expect(page.get_by_role("alert").first).to_contain_text("We konden je antwoorden niet opslaan")
    help_now = page.locator("section.safety-now")
    expect(help_now).to_contain_text("Je antwoorden zijn nog niet opgeslagen en niet verstuurd")
    assert help_now.get_by_role("link", name="Bel 113: 0800-0113").is_visible()
    assert page.get_by_role("group", name=SAFETY_QUESTION).get_by_label("Vaak").is_checked()
    assert page.get_by_label("Hoeveel energie had je deze week?").input_value() == "2"
    assert page.get_by_label("Wat ging er deze week goed?").input_value() == "Even buiten geweest"
    accessible(page, "outage-kept-answers")
    # Another page meanwhile: a readable error page with crisis help, no stack trace.
    other = context.new_page()
    assert other.goto(f"{live.app_url}/").status == 500
    assert other.get_by_role("heading", level=1).inner_text() == "Dit lukte niet"
    assert other.get_by_role("link", name="Bel 113: 0800-0113").is_visible()
    assert "Traceback" not in other.content() and "Internal Server Error" not in other.content()
    other.screenshot(path=str(SCREENSHOTS / "outage-error-500.png"), full_page=True)
    other.get_by_role("button", name="English").click()  # needs no database either
    assert other.get_by_role("heading", level=1).inner_text() == "This did not work"
    assert other.get_by_role("link", name="Call 113: 0800-0113").is_visible()
    other.get_by_role("button", name="Nederlands").click()

    cluster.start()
    # A fresh load of the form: the server has nothing new, the browser's copy is put back.
    other.goto(form_url)
    expect(other.get_by_role("status")).to_contain_text("teruggezet")
    assert other.get_by_label("Wat ging er deze week goed?").input_value() == "Even buiten geweest"
    assert other.get_by_role("group", name=SAFETY_QUESTION).get_by_label("Vaak").is_checked()
    other.close()
    # Pressing "Versturen" again on the page that kept them: stored, and the alert raised.
    page.get_by_role("button", name="Versturen").click()
    page.wait_for_url(home_url(live.app_url, f"/task/{key}/safety"))
    assert page.get_by_role("link", name="Bel 113: 0800-0113").is_visible()
    assert stored(live, key) == (1, 1)
    with Session(state["engine"]) as db:
        response = db.scalars(select(ResponseRow).where(ResponseRow.task_key == key)).one()
    assert "Even buiten geweest" in response.resource
    # Stored: the browser's unsent copy is gone.
    assert page.evaluate("Object.keys(localStorage).filter(k => k.includes('unsent'))") == []
    context.close()
