"""Referral triage: a new referral waits for a care professional, who accepts it (enrolled
on the waiting list, invited) or declines it (with a reason for the referrer); on both
databases and against the sandbox EHR."""

from __future__ import annotations

import json
import threading
import uuid

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from fhir_burnout.db import create_db_engine, upgrade
from fhir_burnout.errors import ContentError
from fhir_burnout.referral import (
    ACCEPTED,
    DECLINED,
    TRIAGE,
    TRIAGE_STATUS,
    WAITING_LIST,
    WAITING_LIST_STATUS,
    ReferralDecidedError,
    ReferralNotFoundError,
    ReferralRow,
    TriageError,
    accept_referral,
    decline_referral,
    load_triage,
    status_key,
    summarise,
    take_referral,
    waiting_for_triage,
)
from fhir_burnout.settings import Settings
from fhir_burnout.sync import KEY_SYSTEM, OutboxEntry, Worker, queue_status
from fhir_burnout.workflow import Definitions, EnrolmentRow, InvitationRow, enrol

EHR = "http://ehr.example/fhir"
PRACTICE = "Organization/practice-1"
CARE = "Practitioner/prac-1"


@pytest.fixture(scope="module")
def definitions(resources):
    return Definitions.from_resources(resources)


@pytest.fixture(scope="module")
def triage(root):
    return load_triage(root)


def referral(number="TR-1", patient="Patient/pat-20", **changes):
    request = {
        "resourceType": "ServiceRequest",
        "id": f"sr-{number}",
        "identifier": [{"system": "https://verwijs.example/referral", "value": number}],
        "status": "active",
        "intent": "order",
        "subject": {"reference": patient},
        "authoredOn": "2026-12-01",
        "requester": {"reference": "Practitioner/gp-1", "display": "Dr. H. Huisarts"},
        "reasonCode": [{"text": "Burn-outklachten, drie maanden verzuim"}],
        "note": [{"text": "Slaapt slecht; wil graag zelf aan de slag."}],
        **changes,
    }
    return {k: v for k, v in request.items() if v is not None}


def take(engine, definitions, request, **options):
    with Session(engine) as db, db.begin():
        intake = take_referral(
            db, definitions, fhir_base=EHR, service_request=request, seen_by="subscription",
            practice=PRACTICE, **options,
        )  # fmt: skip
        return intake.referral.key


def operations(engine, kind=None):
    with Session(engine) as db:
        query = select(OutboxEntry).order_by(OutboxEntry.id)
        if kind:
            query = query.where(OutboxEntry.kind == kind)
        return [op for e in db.scalars(query) for op in json.loads(e.payload)["operations"]]


def counted(engine, table):
    with Session(engine) as db:
        return db.scalar(select(func.count()).select_from(table))


def test_a_new_referral_waits_for_triage_and_nobody_is_enrolled(engine, definitions):
    key = take(engine, definitions, referral())
    assert counted(engine, EnrolmentRow) == counted(engine, InvitationRow) == 0
    [task] = [op["resource"] for op in operations(engine)]
    assert task["status"] == "received" and task["businessStatus"]["text"] == TRIAGE_STATUS
    assert TRIAGE_STATUS == "Aangemeld, nog niet beoordeeld" and "output" not in task
    with Session(engine) as db:
        [waiting] = waiting_for_triage(db, fhir_base=EHR, practice=PRACTICE)
        assert (waiting.key, waiting.state, waiting.enrolment_key) == (key, TRIAGE, None)
        assert waiting_for_triage(db, fhir_base=EHR, practice="Organization/other") == []
        said = summarise(waiting)
    assert said.reasons == ("Burn-outklachten, drie maanden verzuim",)
    assert said.referrer == "Dr. H. Huisarts" and said.authored == "2026-12-01"
    assert said.notes == ("Slaapt slecht; wil graag zelf aan de slag.",)


def test_a_practice_with_automatic_enrolment_enrols_and_invites_at_once(engine, definitions):
    take(engine, definitions, referral(), triage=False)
    assert counted(engine, EnrolmentRow) == counted(engine, InvitationRow) == 1
    [task] = [op["resource"] for op in operations(engine, "referral-status")]
    assert task["status"] == "accepted" and task["businessStatus"]["text"] == WAITING_LIST_STATUS
    with Session(engine) as db:
        assert db.scalars(select(ReferralRow.state)).one() == ACCEPTED


def test_accepting_enrols_on_the_waiting_list_and_invites_once(engine, definitions, triage):
    key = take(engine, definitions, referral())
    with Session(engine) as db, db.begin():
        enrolment = accept_referral(
            db, definitions, key, fhir_base=EHR, practice=PRACTICE, by=CARE
        )
        assert (enrolment.track, enrolment.patient, enrolment.author) == (
            WAITING_LIST, "pat-20", CARE,
        )  # fmt: skip
        enrolled = enrolment.key
    before = len(operations(engine))
    for again in (
        lambda db: accept_referral(db, definitions, key, fhir_base=EHR, practice=PRACTICE,
                                   by=CARE),
        lambda db: decline_referral(db, triage, key, fhir_base=EHR,
                                    practice=PRACTICE, reason="other-care-first", note="",
                                    by=CARE),
    ):  # fmt: skip
        with (
            pytest.raises(ReferralDecidedError, match="accepted already"),
            Session(engine) as db,
            db.begin(),
        ):
            again(db)
    assert len(operations(engine)) == before  # a second decision changes nothing
    assert counted(engine, EnrolmentRow) == counted(engine, InvitationRow) == 1
    [accepted] = operations(engine, "referral-status")[1:]
    assert accepted["key"] == status_key(key) and accepted["status"] == "accepted"
    assert accepted["output"][0]["valueReference"] == {"reference": f"urn:uuid:{enrolled}"}
    with Session(engine) as db:
        row = db.get(ReferralRow, key)
        assert (row.state, row.decided_by, row.enrolment_key) == (ACCEPTED, CARE, enrolled)
        assert waiting_for_triage(db, fhir_base=EHR, practice=PRACTICE) == []


def test_declining_enrols_nobody_and_tells_the_referrer_why(engine, definitions, triage):
    key = take(engine, definitions, referral())
    with Session(engine) as db, db.begin():
        decline_referral(
            db, triage, key, fhir_base=EHR, practice=PRACTICE, reason="other-care-first",
            note="Eerst behandeling van de depressie bij de basis-GGZ.", by=CARE,
        )  # fmt: skip
    with (
        pytest.raises(ReferralDecidedError, match="declined already"),
        Session(engine) as db,
        db.begin(),
    ):
        accept_referral(db, definitions, key, fhir_base=EHR, practice=PRACTICE, by=CARE)
    assert counted(engine, EnrolmentRow) == counted(engine, InvitationRow) == 0
    [rejected] = operations(engine, "referral-status")[1:]
    assert rejected["status"] == "rejected"
    [coding] = rejected["statusReason"]["coding"]
    assert (coding["system"], coding["code"]) == (triage.system, "other-care-first")
    assert "Eerst behandeling van de depressie" in rejected["statusReason"]["text"]
    with Session(engine) as db:
        row = db.get(ReferralRow, key)
        assert (row.state, row.decline_reason, row.enrolment_key) == (
            DECLINED, "other-care-first", None,
        )  # fmt: skip


@pytest.mark.parametrize(
    ("reason", "note", "says"),
    [
        ("no-such-reason", "", "not a reason to decline"),
        ("other", "  ", "needs an explanation"),
        ("other-care-first", "x" * 2001, "longer than 2000"),
    ],
)
def test_a_decline_without_a_valid_reason_changes_nothing(
    engine, definitions, triage, reason, note, says
):
    key = take(engine, definitions, referral())
    with pytest.raises(TriageError, match=says), Session(engine) as db, db.begin():
        decline_referral(db, triage, key, fhir_base=EHR, practice=PRACTICE, reason=reason,
                         note=note, by=CARE)  # fmt: skip
    with Session(engine) as db:
        assert db.get(ReferralRow, key).state == TRIAGE


def test_another_practices_referral_cannot_be_decided(engine, definitions):
    key = take(engine, definitions, referral())
    for base, practice in ((EHR, "Organization/other"), ("http://other.example/fhir", PRACTICE)):
        with pytest.raises(ReferralNotFoundError), Session(engine) as db, db.begin():
            accept_referral(db, definitions, key, fhir_base=base, practice=practice, by=CARE)


def test_two_decisions_at_the_same_moment_make_one(engine, definitions, triage):
    key = take(engine, definitions, referral())
    barrier, outcomes = threading.Barrier(2), []

    def decide(accept):
        try:
            with Session(engine) as db, db.begin():
                barrier.wait()
                if accept:
                    accept_referral(db, definitions, key, fhir_base=EHR, practice=PRACTICE,
                                    by=CARE)  # fmt: skip
                else:
                    decline_referral(db, triage, key, fhir_base=EHR, practice=PRACTICE,
                                     reason="self-help-unsuitable", note="", by=CARE)  # fmt: skip
            outcomes.append("decided")
        except ReferralDecidedError:
            outcomes.append("refused")
        except Exception as error:  # SQLite: the loser may find the database busy
            outcomes.append(type(error).__name__)

    threads = [threading.Thread(target=decide, args=(a,)) for a in (True, False)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("decided") == 1, outcomes
    with Session(engine) as db:
        state = db.get(ReferralRow, key).state
    assert len(operations(engine, "referral-status")) == 2  # received, and one decision
    assert (counted(engine, EnrolmentRow) == 1) is (state == ACCEPTED)


def test_a_referral_of_a_client_in_the_programme_needs_no_triage(engine, definitions):
    with Session(engine) as db, db.begin():
        chart = enrol(db, definitions, fhir_base=EHR, patient="pat-20", track="standard")
        chart_key = chart.key
    key = take(engine, definitions, referral())
    with Session(engine) as db:
        row = db.get(ReferralRow, key)
        assert (row.state, row.enrolment_key) == (ACCEPTED, chart_key)


# --- against the sandbox EHR --------------------------------------------------------------


def _deliver(engine, fhir):
    worker = Worker(engine, lambda base: fhir, owner="test-triage")
    while worker.run_once():
        pass
    assert queue_status(engine).dead == 0


def _referrer_task(fhir, key):
    [task] = fhir.search("Task", {"identifier": f"{KEY_SYSTEM}|{status_key(key)}"})
    return task


def test_in_the_ehr_one_referral_is_accepted_and_another_declined(
    engine, definitions, triage, sandbox, fhir
):
    """The referrer's Tasks in the EHR: received while waiting, then accepted (with the
    client's CarePlan) and rejected (with the coded reason and the explanation)."""
    run = uuid.uuid4().hex[:8]
    requests = [
        fhir.create({**referral(f"TR-{run}-{n}", f"Patient/{patient}", id=None),
                     "performer": [{"reference": PRACTICE}]})
        for n, patient in enumerate(("pat-05", "pat-06"))
    ]  # fmt: skip
    keys = []
    for request in requests:
        with Session(engine) as db, db.begin():
            intake = take_referral(
                db, definitions, fhir_base=sandbox.fhir_base, service_request=request,
                seen_by="reconciliation", practice=PRACTICE,
            )  # fmt: skip
            keys.append(intake.referral.key)
    _deliver(engine, fhir)
    for key in keys:
        waiting = _referrer_task(fhir, key)
        assert waiting["status"] == "received"
        assert waiting["businessStatus"]["text"] == "Aangemeld, nog niet beoordeeld"
    accepted, declined = keys
    with Session(engine) as db, db.begin():
        enrolment = accept_referral(
            db, definitions, accepted, fhir_base=sandbox.fhir_base, practice=PRACTICE, by=CARE
        )
        enrolled = enrolment.key
        invitation = db.scalar(
            select(InvitationRow).where(InvitationRow.enrolment_key == enrolled)
        )
        code, invitation_task = invitation.code, invitation.task_key
        decline_referral(
            db, triage, declined, fhir_base=sandbox.fhir_base, practice=PRACTICE,
            reason="acute-risk", note="Wij bellen vandaag met de huisarts.", by=CARE,
        )  # fmt: skip
    _deliver(engine, fhir)
    task = _referrer_task(fhir, accepted)
    assert task["status"] == "accepted"
    assert task["businessStatus"]["text"] == WAITING_LIST_STATUS
    assert task["output"][0]["valueReference"]["reference"].startswith("CarePlan/")
    [careplan] = fhir.search("CarePlan", {"identifier": f"{KEY_SYSTEM}|{enrolled}"})
    assert careplan["subject"]["reference"] == "Patient/pat-05"
    [invited] = fhir.search("Task", {"identifier": f"{KEY_SYSTEM}|{invitation_task}"})
    assert invited["input"][0]["valueString"] == code
    assert invited["for"] == {"reference": "Patient/pat-05"}
    task = _referrer_task(fhir, declined)
    assert task["status"] == "rejected"
    assert task["statusReason"]["coding"][0]["code"] == "acute-risk"
    assert "Wij bellen vandaag met de huisarts." in task["statusReason"]["text"]
    with Session(engine) as db:  # the declined client was enrolled nowhere
        assert db.scalars(select(EnrolmentRow.patient)).all() == ["pat-05"]


# --- configuration, content, migration ----------------------------------------------------


def _settings(tmp_path, top=None, ehr=None):
    data = {"base_url": "https://app.example", "secret_key": "s", "token_key": "t", "ehr": [
        {"fhir_base": EHR, "client_id": "c"}, {"fhir_base": f"{EHR}/2", "client_id": "c"},
    ]}  # fmt: skip
    if top is not None:
        data["referral_triage"] = top
    if ehr is not None:
        data["ehr"][1]["referral_triage"] = ehr
    return Settings.from_mapping(data, base_dir=tmp_path, env={})


@pytest.mark.parametrize(
    ("top", "ehr", "triage"),
    [
        (None, None, (True, True)),  # the default is triage
        (False, None, (False, False)),  # automatic enrolment for the whole practice
        (None, False, (True, False)),  # for one EHR only
        (False, True, (False, True)),
    ],
)
def test_triage_is_the_default_and_a_practice_may_switch_automatic_enrolment_on(
    tmp_path, top, ehr, triage
):
    settings = _settings(tmp_path, top, ehr)
    assert tuple(b.triage for b in settings.ehrs) == triage


def test_the_practice_is_named_for_waiting_list_clients(tmp_path):
    data = {"base_url": "https://app.example", "secret_key": "s", "token_key": "t", "ehr": [
        {"fhir_base": EHR, "client_id": "c", "practice_name": " Praktijk De Linde ",
         "practice_phone": "030 123 45 67"},
        {"fhir_base": f"{EHR}/2", "client_id": "c", "practice_name": ""},
    ]}  # fmt: skip
    named, unnamed = Settings.from_mapping(data, base_dir=tmp_path, env={}).ehrs
    assert (named.practice_name, named.practice_phone) == ("Praktijk De Linde", "030 123 45 67")
    assert (unnamed.practice_name, unnamed.practice_phone) == (None, None)


@pytest.mark.parametrize(("top", "ehr"), [("no", None), (None, 0)])
def test_a_triage_setting_that_is_not_true_or_false_stops_the_app(tmp_path, top, ehr):
    with pytest.raises(ContentError, match="referral_triage"):
        _settings(tmp_path, top, ehr)


def test_the_exclusion_criteria_are_in_both_languages_with_their_source(triage):
    codes = {c.code for c in triage.criteria}
    assert {"acute-suicidality", "psychosis", "severe-depression", "active-crisis",
            "primary-addiction"} <= codes  # fmt: skip
    for criterion in triage.criteria:
        assert criterion.title["nl"] and criterion.title["en"] and criterion.source
    assert any("NHG-Standaard Overspanning en burn-out" in c.source for c in triage.criteria)
    assert {"other", "acute-risk"} <= {r.code for r in triage.reasons}


def test_the_package_publishes_the_decline_reasons_the_referrer_receives(triage, resources):
    """The referrer's EHR receives these codes in Task.statusReason: the package has their
    CodeSystem (every code, Dutch display, English designation) and its ValueSet."""
    [system] = [
        r for r in resources if r["resourceType"] == "CodeSystem" and r["url"] == triage.system
    ]
    concepts = {c["code"]: c for c in system["concept"]}
    assert set(concepts) == {r.code for r in triage.reasons}
    for reason in triage.reasons:
        assert concepts[reason.code]["display"] == reason.display["nl"]
        assert concepts[reason.code]["designation"] == [
            {"language": "en", "value": reason.display["en"]}
        ]
    [valueset] = [
        r for r in resources if r["resourceType"] == "ValueSet" and r["id"] == system["id"]
    ]
    assert valueset["expansion"]["total"] == len(triage.reasons)


def test_triage_content_without_sources_is_refused(tmp_path, root):
    (tmp_path / "content").mkdir()
    changed = (root / "content" / "triage.yaml").read_text().replace("source:", "origin:")
    (tmp_path / "content" / "triage.yaml").write_text(changed)
    with pytest.raises(ContentError, match="needs its source"):
        load_triage(tmp_path)


def test_referrals_taken_in_before_triage_existed_stay_accepted(database_url):
    engine = create_db_engine(database_url)
    upgrade(engine, "0008")
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO enrolment (key, fhir_base, patient, track, plan_definition, status, "
            "language, period_start, created_at, request_group_key) VALUES ('e1', 'http://e', "
            "'pat-1', 'waiting-list', 'p', 'active', 'nl', '2026-12-01', "
            "'2026-12-01T00:00:00+00:00', 'rg')"
        ))  # fmt: skip
        connection.execute(text(
            "INSERT INTO referral (key, fhir_base, identifier_system, identifier_value, patient,"
            " enrolment_key, seen_by, received_at) VALUES ('r1', 'http://e', 's', 'v', 'pat-1',"
            " 'e1', 'reconciliation', '2026-12-01T00:00:00+00:00')"
        ))  # fmt: skip
    upgrade(engine)
    with Session(engine) as db:
        row = db.get(ReferralRow, "r1")
        assert (row.state, row.enrolment_key) == (ACCEPTED, "e1")
        assert waiting_for_triage(db, fhir_base="http://e", practice=None) == []
    engine.dispose()
