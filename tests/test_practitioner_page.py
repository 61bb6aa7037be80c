"""The care professional's page about one client (issue 21, points 1 and 4), on SQLite and
PostgreSQL against the sandbox EHR: the actions it offers fit the programme's state (one
test per state), it speaks to the clinician (no "je", "jij", "jouw" outside the client's
own words), the clients' crisis help is not on it (the practice's own crisis protocol
instead, where configured; error pages keep crisis help for everyone), and "Sinds de vorige
sessie" starts where it says: a date picked, the last contact in the EHR, the care
professional's previous visit, or the start of the programme. Its summary reaches the
sandbox EHR as a DocumentReference when the practice switched that on."""

from __future__ import annotations

import base64
import dataclasses
import json
import re
from datetime import UTC, date, datetime, timedelta

import pytest
from lxml import html
from sqlalchemy import select
from sqlalchemy.orm import Session

from fhir_burnout.fhir import FhirClient
from fhir_burnout.sync import KEY_SYSTEM, OutboxEntry, Worker, queue_status
from fhir_burnout.web import create_app
from fhir_burnout.workflow import EnrolmentRow, ending_reason, enrol, pause, record_visit, stop

from .conftest import app_settings, hidden_fields, with_ehr
from .outbox_load import deliver_all, worker_token_source
from .practitioners import PRACTICE, as_practitioner, page_of, post, submit
from .session_history import seed

BY = "Practitioner/prac-1"
DASH = "\N{EN DASH}"
PROTOCOL = "https://intranet.example/crisisprotocol"


def make(sandbox, folder, database_url, **ehr):
    """The app writing for the practice, its [[ehr]] changed by ``ehr``; top-level settings
    in ``ehr["settings"]``."""
    folder.mkdir(parents=True, exist_ok=True)
    top = ehr.pop("settings", {})
    settings = app_settings(sandbox.fhir_base, folder, database_url=database_url)
    settings = with_ehr(settings, worker_client_id="fhir-burnout-worker", practice=PRACTICE, **ehr)
    return create_app(dataclasses.replace(settings, **top))


@pytest.fixture
def app(sandbox, tmp_path, database_url):
    app = make(sandbox, tmp_path / "app", database_url)
    yield app
    app.extensions["fhir_burnout"]["engine"].dispose()


def state_of(app):
    return app.extensions["fhir_burnout"]


def tree(page):
    return html.fromstring(page)


def having(root, tag, cls):
    """The ``tag`` elements of ``root`` with the class ``cls`` (XPath: no cssselect here)."""
    return root.xpath(f"//{tag}[contains(concat(' ', normalize-space(@class), ' '), ' {cls} ')]")


def actions(page):
    """What the actions column offers: its visible buttons and the tracks to enrol in."""
    [aside] = having(tree(page), "aside", "fb-pract__actions")
    buttons = [b.text_content().strip() for b in aside.iter("button") if b.get("hidden") is None]
    tracks = [o.get("value") for o in aside.iter("option")]
    return buttons, tracks


def enrolled(app, sandbox, patient, track="standard"):
    state = state_of(app)
    with Session(state["engine"]) as db, db.begin():
        return enrol(
            db, state["definitions"], fhir_base=sandbox.fhir_base, patient=patient, track=track,
            author=BY, practice=PRACTICE,
        ).key  # fmt: skip


# --- the actions fit the state ---------------------------------------------------------

TREATMENT = "Herstellen van burn-out: Tijdens de behandeling"


def test_a_client_in_no_programme_can_only_be_enrolled(app, sandbox):
    buttons, tracks = actions(page_of(as_practitioner(app, sandbox, "pat-03"))[1])
    assert buttons == ["Aanmelden"]
    assert sorted(tracks) == ["after-care", "standard", "waiting-list"]


def test_a_waiting_list_client_moves_into_treatment_and_is_not_offered_enrolment(app, sandbox):
    enrolled(app, sandbox, "pat-04", track="waiting-list")
    buttons, tracks = actions(page_of(as_practitioner(app, sandbox, "pat-04"))[1])
    assert buttons == [
        f"Overstappen naar: {TREATMENT}", "Pauzeren", "Bericht versturen", "Afronden",
        "Stoppen",
    ]  # fmt: skip
    assert tracks == []  # not "Aanmelden" beside "Overstappen"


def test_a_client_in_treatment_is_not_offered_the_waiting_list(app, sandbox):
    enrolled(app, sandbox, "pat-05")
    buttons, tracks = actions(page_of(as_practitioner(app, sandbox, "pat-05"))[1])
    assert buttons == [
        "Openzetten: Fase 2: Inzicht in patronen", "Pauzeren", "Bericht versturen", "Afronden",
        "Stoppen",
    ]  # fmt: skip
    assert tracks == [] and "Aanmelden" not in buttons


def test_a_paused_client_can_be_resumed_not_paused_or_moved_on(app, sandbox):
    key = enrolled(app, sandbox, "pat-06")
    with Session(state_of(app)["engine"]) as db, db.begin():
        pause(db, key, by=BY)
    buttons, tracks = actions(page_of(as_practitioner(app, sandbox, "pat-06"))[1])
    assert buttons == ["Hervatten", "Bericht versturen", "Afronden", "Stoppen"]
    assert tracks == []


def test_a_client_whose_programme_ended_can_be_enrolled_again(app, sandbox):
    key = enrolled(app, sandbox, "pat-07")
    state = state_of(app)
    with Session(state["engine"]) as db, db.begin():
        stop(db, key, by=BY, reason=ending_reason(state["definitions"], "own-choice", ""))
    client = as_practitioner(app, sandbox, "pat-07")
    buttons, tracks = actions(page_of(client)[1])
    assert buttons == ["Aanmelden"]
    assert sorted(tracks) == ["after-care", "standard", "waiting-list"]


# --- the clinician's language ------------------------------------------------------------

#: Words that speak to the client (Dutch "je", "jij", "jou", "jouw", "jezelf", "jullie").
CLIENT_VOICE = re.compile(r"\b(je|jij|jou|jouw|jezelf|jullie)\b", re.IGNORECASE)
ISO_DAY = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")


def unquoted_text(page):
    """The page's text without what it quotes (``q``, ``blockquote``: the client's own
    words, a question as the client was asked it, a note as it was sent), the titles it
    cites (``cite``: "Signalen van je lichaam" is a module's name) and the scripts."""
    root = tree(page)
    for quoted in root.xpath("//q | //blockquote | //cite | //script | //style"):
        quoted.drop_tree()
    return " ".join(root.text_content().split())


@pytest.fixture
def rich(app, sandbox):
    """pat-08 with eight weeks behind them (every part of the summary has something), a
    safety signal from this week's check-in, and a note from the care professional."""
    state = state_of(app)
    definitions = state["definitions"]
    with Session(state["engine"]) as db, db.begin():
        key, since = seed(db, definitions, fhir_base=sandbox.fhir_base, patient="pat-08",
                          today=date.today())  # fmt: skip
    client = as_practitioner(app, sandbox, "pat-08")
    post(client, f"/practitioner/enrolments/{key}/note",
         text="Fijn dat je fase 1 hebt afgerond. Tot dinsdag!")  # fmt: skip
    with Session(state["engine"]) as db, db.begin():
        tasks = db.get(EnrolmentRow, key).tasks
        checkin = next(
            t.key for t in tasks if t.action_id == "weekly-checkin.weekly" and t.status == "ready"
        )
        submit(db, definitions, checkin, {"checkin-sleep": 2, "checkin-safety": 2},
               patient="pat-08", now=datetime.now(UTC),
               extra={"checkin-energy": [{"valueInteger": 3}],
                      "checkin-tension": [{"valueInteger": 7}]})  # fmt: skip
    return client, key, since


def test_the_page_and_its_ending_pages_speak_to_the_clinician(app, sandbox, rich):
    client, key, _ = rich
    status, page = page_of(client)
    assert status == 200 and "Sinds de vorige sessie" in page
    assert "Veiligheidssignalen" in page  # the signal
    assert "Fase 2: Inzicht in patronen kan open." in page  # the phase to decide
    text = unquoted_text(page)
    said = [text[max(0, m.start() - 60) : m.end() + 30] for m in CLIENT_VOICE.finditer(text)]
    assert said == []
    # Not the client's band ("Je welbevinden is erg laag.") nor "Je zit nu in Fase 2".
    assert "welbevinden is" not in text and "Je zit nu" not in page
    assert f"zeer laag welbevinden (0{DASH}28)" in text
    assert f"laag welbevinden (29{DASH}50)" in text
    # The client's own words are there, quoted.
    quoted = [q.text_content() for q in having(tree(page), "q", "fb-own-words")]
    assert "Mijn schouders werden zachter." in quoted and "Werkmail lezen" in quoted
    # From the programme's start (the default here): the first check-in to today's.
    assert (
        "Van de eerste check-in in deze periode naar de laatste: energie 2 → 3, slaap heel "
        "slecht → slecht, spanning 8 → 7." in text
    )
    # Dates as people write them, never the ISO text (also inside answers).
    assert ISO_DAY.findall(text) == []
    for ending in ("stop", "finish"):
        status, page = page_of(client, f"/practitioner/enrolments/{key}/{ending}")
        text = unquoted_text(page)
        assert status == 200 and CLIENT_VOICE.findall(text) == [], (ending, text)
    english = client.get("/practitioner", headers={"Accept-Language": "en"})
    text = unquoted_text(english.get_data(as_text=True))
    assert "Since the last session" in text and "Reliably improved" in text
    assert f"moderately severe (15{DASH}19)" in text and ISO_DAY.findall(text) == []


def test_the_first_page_opened_from_the_chart_speaks_of_the_client(app, sandbox, rich):
    """The app's first page, opened from a client's chart, shows the care professional the
    client's programme as the client sees it (the next step, this week), in the care
    professional's own voice: "De cliënt zit nu in ...", never "Je zit nu in ..."."""
    client, _, _ = rich
    page = client.get("/", headers={"Accept-Language": "nl"}).get_data(as_text=True)
    text = unquoted_text(page)
    # A module's name is a name ("Huiswerk bij Signalen van je lichaam"), not a voice.
    for resource in state_of(app)["definitions"].by_canonical.values():
        if resource.get("resourceType") == "ActivityDefinition":
            text = text.replace(str(resource.get("title", "")), "")
    said = [text[max(0, m.start() - 60) : m.end() + 30] for m in CLIENT_VOICE.finditer(text)]
    assert said == []
    assert "Je zit nu" not in text and "Het hele programma van de cliënt" in text
    assert "Sommige vragenlijsten komen later terug; de cliënt ziet ze hier" in text
    english = client.get("/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "The client's whole programme" in unquoted_text(english)


# --- crisis help: the clients', or the practice's protocol -------------------------------


def test_a_care_professional_gets_the_practice_crisis_protocol_and_error_pages_keep_crisis_help(
    sandbox, tmp_path, database_url
):
    app = make(sandbox, tmp_path / "protocol", database_url,
               settings={"crisis_protocol_url": PROTOCOL})  # fmt: skip
    try:
        enrolled(app, sandbox, "pat-09")
        client = as_practitioner(app, sandbox, "pat-09")
        _, page = page_of(client)
        assert 'class="crisis"' not in page and "0800-0113" not in page
        [link] = tree(page).xpath("//p[@class='fb-crisis-protocol']/a")
        assert link.get("href") == PROTOCOL and link.text == "Crisisprotocol van de praktijk"
        # An error page: crisis help for everyone, the care professional too.
        status, error = page_of(client, "/practitioner/enrolments/nothing/nonsense")
        assert status == 404 and 'class="crisis"' in error and "0800-0113" in error
        # The client and anyone not signed in: crisis help beside every page, as before.
        assert 'class="crisis"' in app.test_client().get("/hulp").get_data(as_text=True)
    finally:
        state_of(app)["engine"].dispose()


# --- where "Sinds de vorige sessie" starts ----------------------------------------------


def period_of(page):
    [period] = having(tree(page), "p", "fb-summary__period")
    return period.text_content().strip()


def written(day):
    return f"{day.day}-{day.month}-{day.year}"


def test_the_summary_starts_at_the_programme_then_the_last_visit_or_a_picked_date(app, sandbox):
    enrolled(app, sandbox, "pat-10")
    client = as_practitioner(app, sandbox, "pat-10")
    today = date.today()
    assert period_of(page_of(client)[1]) == f"Sinds {written(today)}: de start van het programma."
    # This first look is today's; a look three days ago is where the next summary starts.
    before = datetime.now(UTC) - timedelta(days=3)
    with Session(state_of(app)["engine"]) as db, db.begin():
        record_visit(db, fhir_base=sandbox.fhir_base, patient="pat-10", practitioner=BY,
                     now=before)  # fmt: skip
    seen = before.astimezone().date()
    assert period_of(page_of(client)[1]) == (
        f"Sinds {written(seen)}: uw vorige bezoek aan deze pagina."
    )
    picked = today - timedelta(days=10)
    _, page = page_of(client, f"/practitioner?since={picked.isoformat()}")
    assert period_of(page) == f"Sinds {written(picked)}: de gekozen datum."
    assert tree(page).get_element_by_id("since").get("value") == picked.isoformat()
    # A day in the future, or no day at all: the default again.
    _, page = page_of(client, "/practitioner?since=2999-01-01")
    assert "uw vorige bezoek" in period_of(page)


def test_the_summary_starts_at_the_last_encounter_where_the_launch_may_read_encounters(
    sandbox, tmp_path, database_url, fhir
):
    """With ``user/Encounter.rs`` granted (a practice adds it to ``scopes_practitioner``),
    the newest Encounter before today that was a contact: not a cancelled one, not a
    planned one, not today's."""
    scopes = "openid fhirUser user/Practitioner.rs user/PractitionerRole.rs user/Patient.rs"
    app = make(sandbox, tmp_path / "encounters", database_url,
               scopes_practitioner=f"{scopes} user/Encounter.rs")  # fmt: skip
    patient = "pat-11"
    now = datetime.now(UTC).replace(microsecond=0)

    def encounter(status, start, end=None):
        period = {"start": start.isoformat()} | ({"end": end.isoformat()} if end else {})
        fhir.create({"resourceType": "Encounter", "status": status, "class": {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": f"Patient/{patient}"}, "period": period})  # fmt: skip

    last = now - timedelta(days=9)
    try:
        encounter("finished", now - timedelta(days=30), now - timedelta(days=30, hours=-1))
        encounter("finished", last - timedelta(hours=1), last)
        encounter("cancelled", now - timedelta(days=4))
        encounter("planned", now + timedelta(days=5))
        enrolled(app, sandbox, patient)
        client = as_practitioner(app, sandbox, patient)
        day = last.astimezone().date()
        expected = f"Sinds {written(day)}: het laatste contact volgens het dossier."
        assert period_of(page_of(client)[1]) == expected
        # Without the scope (the app's defaults), the same client: the care professional's
        # own looks instead.
        plain = make(sandbox, tmp_path / "plain", database_url)
        try:
            seen = page_of(as_practitioner(plain, sandbox, patient))[1]
            assert "het laatste contact" not in period_of(seen)
        finally:
            state_of(plain)["engine"].dispose()
    finally:
        state_of(app)["engine"].dispose()


# --- the summary to the EHR ----------------------------------------------------------------


def test_the_summary_reaches_the_ehr_as_a_document_reference_when_switched_on(
    sandbox, tmp_path, database_url, app
):
    # Off by default: no button, and the route refuses.
    enrolled(app, sandbox, "pat-12")
    client = as_practitioner(app, sandbox, "pat-12")
    _, page = page_of(client)
    assert "Samenvatting naar het dossier" not in page
    refused = post(client, "/practitioner/summary", since="2026-01-01T00:00:00+00:00")
    assert refused.status_code == 404

    on = make(sandbox, tmp_path / "on", database_url, summary_to_ehr=True)
    state = state_of(on)
    patient = "pat-13"
    with Session(state["engine"]) as db, db.begin():
        key, since = seed(db, state["definitions"], fhir_base=sandbox.fhir_base,
                          patient=patient, today=date.today())  # fmt: skip
    token = FhirClient(sandbox.fhir_base, token_source=worker_token_source(sandbox))
    worker = Worker(state["engine"], lambda base: token, owner="summary21")
    try:
        client = as_practitioner(on, sandbox, patient)
        _, page = page_of(client, f"/practitioner?since={since.astimezone().date().isoformat()}")
        [form] = tree(page).xpath("//form[contains(@action, '/practitioner/summary')]")
        fields = {i.get("name"): i.get("value") for i in form.iter("input")}
        assert fields["since"] == since.isoformat() and fields["source"] == "chosen"
        sent = client.post("/practitioner/summary", data=fields | hidden_fields(page),
                           headers={"Accept-Language": "nl"})  # fmt: skip
        assert sent.status_code == 303
        assert "De samenvatting gaat naar het dossier" in page_of(client)[1]
        deliver_all(worker)
        assert queue_status(state["engine"]).dead == 0
        with Session(state["engine"]) as db:  # its write key (both databases use pat-13)
            entry = db.scalars(select(OutboxEntry).where(OutboxEntry.kind == "session-summary"))
            [written] = json.loads(entry.one().payload)["operations"]
        [document] = token.search(
            "DocumentReference", {"identifier": f"{KEY_SYSTEM}|{written['key']}"}
        )
        [careplan] = token.search("CarePlan", {"identifier": f"{KEY_SYSTEM}|{key}"})
        assert document["context"]["related"] == [{"reference": f"CarePlan/{careplan['id']}"}]
        assert document["author"] == [{"reference": BY}]
        assert document["custodian"] == {"reference": PRACTICE}
        assert document["type"]["coding"][0]["code"] == "11506-3"
        text = base64.b64decode(document["content"][0]["attachment"]["data"]).decode()
        assert "Sinds de vorige sessie" in text and "Mijn schouders werden zachter." in text
        assert "Betrouwbaar hersteld" in text and "<form" not in text and "<script" not in text
        assert ISO_DAY.findall(unquoted_text(text)) == []
        target = f"DocumentReference/{document['id']}"
        [provenance] = token.search("Provenance", {"target": target})
        assert provenance["agent"][0]["who"] == {"reference": BY}
    finally:
        token.close()
        state["engine"].dispose()
