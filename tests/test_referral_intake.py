"""Taking in a referral: once per referral, whichever way it arrives, on both databases.

These tests are about the automatic path (a practice with ``referral_triage = false``):
enrolment and invitation at intake. Triage is in test_referral_triage.py."""

from __future__ import annotations

import json
import re
import threading
import uuid

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fhir_burnout.integration import REFERRALS, PollRow
from fhir_burnout.referral import (
    WAITING_LIST,
    ReferralError,
    ReferralRow,
    reconcile,
    report_to_referrer,
    status_key,
)
from fhir_burnout.referral import take_referral as _take_referral
from fhir_burnout.sync import KEY_SYSTEM, OutboxEntry, Worker, queue_status
from fhir_burnout.workflow import (
    Definitions,
    EnrolmentRow,
    InvitationRow,
    NotFoundError,
    accept_invitation,
    enrol,
    switch_track,
)

EHR = "http://ehr.example/fhir"


def take_referral(*args, **options):
    """Intake at a practice that enrols referrals at once (``referral_triage = false``)."""
    return _take_referral(*args, triage=False, **options)


@pytest.fixture(scope="module")
def definitions(resources):
    return Definitions.from_resources(resources)


def referral(number="VW-2026-0042", patient="Patient/pat-20", **changes):
    return {
        "resourceType": "ServiceRequest",
        "id": f"sr-{number}",
        "identifier": [{"system": "https://verwijs.example/referral", "value": number}],
        "status": "active",
        "intent": "order",
        "subject": {"reference": patient},
        **changes,
    }


def counts(engine):
    with Session(engine) as db:
        return tuple(
            db.scalar(select(func.count()).select_from(table))
            for table in (ReferralRow, EnrolmentRow, OutboxEntry)
        )


def kinds(engine):
    with Session(engine) as db:
        return list(db.scalars(select(OutboxEntry.kind).order_by(OutboxEntry.id)))


def operations(engine, kind):
    with Session(engine) as db:
        entries = db.scalars(select(OutboxEntry).where(OutboxEntry.kind == kind))
        return [op for entry in entries for op in json.loads(entry.payload)["operations"]]


def test_the_same_referral_seen_three_ways_enrols_the_patient_once(engine, definitions):
    seen = []
    for way in ("subscription", "reconciliation", "post"):
        with Session(engine) as db, db.begin():
            intake = take_referral(
                db, definitions, fhir_base=EHR, service_request=referral(), seen_by=way
            )
            seen.append((intake.new, intake.referral.seen_by, intake.referral.enrolment_key))
    assert [new for new, _, _ in seen] == [True, False, False]
    assert {by for _, by, _ in seen} == {"subscription"}  # the first way is remembered
    # One referral, one enrolment; for the EHR: the plan, the invitation, the referrer's Task.
    assert counts(engine) == (1, 1, 3)
    assert kinds(engine) == ["enrolment", "invitation", "referral-status"]
    with Session(engine) as db:
        enrolment = db.get(EnrolmentRow, seen[0][2])
        assert (enrolment.track, enrolment.patient) == (WAITING_LIST, "pat-20")


def test_a_referral_seen_two_ways_at_the_same_moment_is_taken_in_once(engine, definitions):
    barrier, intakes = threading.Barrier(2), []

    def take(way):
        with Session(engine) as db, db.begin():
            barrier.wait()
            intakes.append(
                take_referral(
                    db, definitions, fhir_base=EHR, service_request=referral(), seen_by=way
                ).new
            )

    threads = [threading.Thread(target=take, args=(w,)) for w in ("subscription", "post")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(intakes) == [False, True] and counts(engine)[:2] == (1, 1)


def test_a_second_referral_of_a_patient_on_the_waiting_list_keeps_their_place(engine, definitions):
    with Session(engine) as db, db.begin():
        first = take_referral(
            db, definitions, fhir_base=EHR, service_request=referral("A-1"), seen_by="post"
        )
        second = take_referral(
            db, definitions, fhir_base=f"{EHR}/", service_request=referral("A-2"),
            seen_by="subscription",
        )  # fmt: skip
        assert second.new and second.referral.enrolment_key == first.referral.enrolment_key
    assert counts(engine)[:2] == (2, 1)


def test_an_absolute_subject_on_the_same_ehr_is_the_patient(engine, definitions):
    with Session(engine) as db, db.begin():
        intake = take_referral(
            db, definitions, fhir_base=EHR,
            service_request=referral(patient=f"{EHR}/Patient/pat-21"), seen_by="post",
        )  # fmt: skip
        assert intake.referral.patient == "pat-21"
        assert intake.referral.service_request == "ServiceRequest/sr-VW-2026-0042"


@pytest.mark.parametrize(
    ("service_request", "says"),
    [
        ({"resourceType": "Patient"}, "a referral is a FHIR ServiceRequest"),
        (referral(identifier=[{"value": "no-system"}]), "no identifier with a system"),
        (referral(status="draft"), "is 'draft', not active"),
        (referral(status="revoked"), "is 'revoked', not active"),
        (referral(patient="Group/g-1"), "subject must be a Patient on this EHR"),
        (referral(patient="http://other.example/fhir/Patient/p"), "a Patient on this EHR"),
        (referral(subject=None), "a Patient on this EHR"),
    ],
)
def test_what_is_not_an_active_referral_of_a_patient_is_refused_and_nothing_kept(
    engine, definitions, service_request, says
):
    with pytest.raises(ReferralError, match=says), Session(engine) as db, db.begin():
        take_referral(db, definitions, fhir_base=EHR, service_request=service_request,
                      seen_by="post")  # fmt: skip
    assert counts(engine) == (0, 0, 0)


# --- the reconciliation poll, against the sandbox EHR --------------------------------------


def _refer(fhir, practice, number, patient="pat-22"):
    return fhir.create(
        {
            **referral(number, f"Patient/{patient}"),
            "performer": [{"reference": practice}],
        }
    )


def test_the_poll_takes_in_referrals_whose_notification_was_lost_and_then_only_new_ones(
    engine, sandbox, fhir, definitions
):
    practice = f"Organization/practice-{uuid.uuid4()}"  # this test's referrals only
    criteria = {"performer": practice, "status": "active"}
    for n in range(3):
        _refer(fhir, practice, f"POLL-{practice[-6:]}-{n}", patient=f"pat-1{n}")
    first = reconcile(engine, fhir, definitions, criteria=criteria)
    assert (first.seen, first.new, first.refused) == (3, 3, [])
    # Nothing changed: the search from where the last poll got to finds (at most) the
    # referrals of that very instant again, none of them new.
    again = reconcile(engine, fhir, definitions, criteria=criteria)
    assert again.new == 0 and again.seen <= 1
    # Two more: the next poll sees those, not the three before.
    for n in range(3, 5):
        _refer(fhir, practice, f"POLL-{practice[-6:]}-{n}", patient=f"pat-1{n}")
    later = reconcile(engine, fhir, definitions, criteria=criteria)
    assert later.new == 2 and later.seen <= 3
    with Session(engine) as db:
        rows = db.scalars(select(ReferralRow)).all()
        assert len(rows) == 5 and {r.seen_by for r in rows} == {"reconciliation"}
        assert db.get(PollRow, (sandbox.fhir_base.rstrip("/"), REFERRALS)).seen_until is not None


def test_a_referral_the_poll_cannot_take_in_is_reported_and_the_others_go_on(
    engine, sandbox, fhir, definitions
):
    practice = f"Organization/practice-{uuid.uuid4()}"
    _refer(fhir, practice, f"BAD-{practice[-6:]}", patient="pat-15")
    fhir.create(  # still a draft at the referrer's: nothing to take in yet
        {
            **referral(f"DRAFT-{practice[-6:]}", "Patient/pat-16", status="draft"),
            "performer": [{"reference": practice}],
        }
    )
    result = reconcile(engine, fhir, definitions, criteria={"performer": practice})
    assert result.seen == 2 and result.new == 1
    [why] = result.refused
    assert "is 'draft', not active" in why


def test_a_new_referral_invites_the_client_and_tells_the_referrer(engine, definitions):
    with Session(engine) as db, db.begin():
        take_referral(
            db, definitions, fhir_base=EHR, seen_by="subscription", practice="Organization/p1",
            service_request=referral("VW-7", requester={"reference": "Practitioner/gp-1"}),
        )  # fmt: skip
    with Session(engine) as db, db.begin():  # a second referral: the same invitation
        take_referral(db, definitions, fhir_base=EHR, seen_by="post",
                      service_request=referral("VW-8", id=None))  # fmt: skip
    with Session(engine) as db:
        [invitation] = db.scalars(select(InvitationRow)).all()
        assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}", invitation.code)
    [task] = [op["resource"] for op in operations(engine, "invitation")]
    assert task["for"] == task["owner"] == {"reference": "Patient/pat-20"}
    assert task["status"] == "requested"
    assert task["input"][0]["valueString"] == invitation.code
    first, second = [op["resource"] for op in operations(engine, "referral-status")]
    assert first["focus"] == {"reference": "ServiceRequest/sr-VW-7"}
    assert first["status"] == "accepted" and first["requester"]["reference"] == "Practitioner/gp-1"
    assert first["owner"] == {"reference": "Organization/p1"}
    # The pushed one was not on the EHR: it goes there, under the referrer's identifier first.
    [pushed] = operations(engine, "referral")
    assert pushed["resource"]["identifier"][0]["value"] == "VW-8"
    assert second["focus"] == {"reference": f"urn:uuid:{pushed['key']}"}


def test_only_the_invited_client_can_take_up_the_invitation(engine, definitions):
    with Session(engine) as db, db.begin():
        intake = take_referral(db, definitions, fhir_base=EHR, seen_by="post",
                               service_request=referral("VW-9"))  # fmt: skip
        code = db.scalar(
            select(InvitationRow.code).where(
                InvitationRow.enrolment_key == intake.referral.enrolment_key
            )
        )
    typed = code.lower().replace("-", " ")
    for patient, base in (("pat-21", EHR), ("pat-20", "http://other.example/fhir")):
        with pytest.raises(NotFoundError), Session(engine) as db, db.begin():
            accept_invitation(db, typed, fhir_base=base, patient=patient)
    for _ in range(2):  # taking it up twice completes its Task once
        with Session(engine) as db, db.begin():
            row = accept_invitation(db, typed, fhir_base=EHR, patient="pat-20")
            assert row.accepted_at is not None
    [done] = operations(engine, "invitation-accepted")
    assert done["status"] == "completed"


def test_the_referrer_and_the_client_see_it_in_the_ehr(engine, definitions, sandbox, fhir):
    [request] = fhir.search("ServiceRequest", {"_id": "ref-02"})
    with Session(engine) as db, db.begin():
        intake = take_referral(db, definitions, fhir_base=sandbox.fhir_base,
                               seen_by="reconciliation", service_request=request,
                               practice="Organization/practice-1")  # fmt: skip
        invitation = db.scalar(
            select(InvitationRow).where(
                InvitationRow.enrolment_key == intake.referral.enrolment_key
            )
        )
        accept_invitation(db, invitation.code, fhir_base=sandbox.fhir_base,
                          patient=request["subject"]["reference"].split("/")[1])  # fmt: skip
        code, task_key = invitation.code, invitation.task_key
    worker = Worker(engine, lambda base: fhir, owner="test-intake")
    while worker.run_once():
        pass
    assert queue_status(engine).dead == 0
    tasks = list(fhir.search("Task", {"focus": "ServiceRequest/ref-02"}))
    status = [t for t in tasks if t.get("businessStatus")]
    assert status and status[-1]["status"] == "accepted"
    assert status[-1]["focus"] == {"reference": "ServiceRequest/ref-02"}
    assert status[-1]["owner"] == {"reference": "Organization/practice-1"}
    [invited] = fhir.search("Task", {"identifier": f"{KEY_SYSTEM}|{task_key}"})
    assert invited["status"] == "completed"
    assert invited["input"][0]["valueString"] == code


def test_the_referrer_hears_when_treatment_starts_and_when_the_programme_ends(engine, definitions):
    with Session(engine) as db, db.begin():
        intake = take_referral(db, definitions, fhir_base=EHR, seen_by="subscription",
                               service_request=referral("VW-10"))  # fmt: skip
        waiting = db.get(EnrolmentRow, intake.referral.enrolment_key)
        treatment = switch_track(db, definitions, waiting.key, "standard", by="Practitioner/p")
        assert report_to_referrer(db, waiting, "in-progress", by="Practitioner/p") == 1
        assert report_to_referrer(db, treatment, "completed", by="Practitioner/p") == 1
        chart = enrol(db, definitions, fhir_base=EHR, patient="pat-19", track="standard")
        assert report_to_referrer(db, chart, "completed") == 0  # no referral: nobody to tell
        key = intake.referral.key
    started, ended = operations(engine, "referral-status")[1:]
    assert started["key"] == ended["key"] == status_key(key)
    assert (started["status"], started["statusReason"]) == ("in-progress", "Behandeling gestart")
    assert ended["status"] == "completed"


def test_a_referral_of_a_client_in_treatment_already_is_recorded_with_their_plan(
    engine, definitions
):
    with Session(engine) as db, db.begin():
        chart = enrol(db, definitions, fhir_base=EHR, patient="pat-18", track="standard")
        request = referral("VW-11", patient="Patient/pat-18")
        intake = take_referral(
            db, definitions, fhir_base=EHR, seen_by="reconciliation", service_request=request
        )
        assert intake.new and intake.referral.enrolment_key == chart.key
    with Session(engine) as db:
        tracks = db.scalars(select(EnrolmentRow.track).where(EnrolmentRow.patient == "pat-18"))
        assert list(tracks) == ["standard"]  # no waiting list for a client in treatment
        assert db.scalar(select(func.count()).select_from(InvitationRow)) == 0
    assert kinds(engine) == ["enrolment", "referral-status"]
