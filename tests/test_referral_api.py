"""POST /referrals, as a referral system pushes to it: against the sandbox EHR and its
authorization server, on both databases where what is stored matters."""

from __future__ import annotations

import json
import re
import socket
import threading
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fhir_burnout.referral import MAX_LETTER_BYTES, ReferralRow
from fhir_burnout.sandbox import SandboxProcess, start_sandbox
from fhir_burnout.sync import OutboxEntry
from fhir_burnout.web import create_app
from fhir_burnout.workflow import EnrolmentRow

from .conftest import with_ehr
from .referrals import (
    BSN,
    FHIR_JSON,
    PRACTICE,
    bundle,
    patient,
    push,
    random_bsn,
    service_request,
    settings_for,
    token,
)

LETTER = (Path(__file__).resolve().parent / "data" / "referral-letter.xml").read_bytes()


@pytest.fixture
def app(sandbox, tmp_path, database_url):
    """The app on a fresh database of each kind."""
    app = create_app(settings_for(sandbox, tmp_path, database_url))
    yield app
    app.extensions["fhir_burnout"]["engine"].dispose()


@pytest.fixture
def lite(sandbox, tmp_path):
    """The app on SQLite only: for refusals that happen before anything is stored."""
    app = create_app(settings_for(sandbox, tmp_path, f"sqlite:///{tmp_path / 'app.db'}"))
    yield app
    app.extensions["fhir_burnout"]["engine"].dispose()


@pytest.fixture(scope="module")
def stranger():
    """Another EHR's authorization server, one the app does not trust."""
    with start_sandbox() as info:
        yield info


def letter(bsn, number=None):
    """The example letter with an identifier and a BSN of its own."""
    number = number or f"VW-{uuid.uuid4()}"
    return LETTER.replace(b"VW-2025-000123", number.encode()).replace(b"999911120", bsn.encode())


def counts(app):
    """(referrals, enrolments, outbox entries) stored by the app."""
    with Session(app.extensions["fhir_burnout"]["engine"]) as db:
        return tuple(
            db.scalar(select(func.count()).select_from(table))
            for table in (ReferralRow, EnrolmentRow, OutboxEntry)
        )


def on_ehr(fhir, bsn):
    """The ids of the Patients on the EHR with this BSN."""
    return [p["id"] for p in fhir.search("Patient", {"identifier": f"{BSN}|{bsn}"})]


def issue(answer):
    outcome = answer.get_json()
    assert outcome["resourceType"] == "OperationOutcome", outcome
    assert answer.mimetype == FHIR_JSON
    return outcome["issue"][0]


# --- taken in --------------------------------------------------------------------------


def test_a_pushed_service_request_is_taken_in_once(app, sandbox):
    client, bearer = app.test_client(), token(sandbox)
    body = service_request()
    first = push(client, bearer, body)
    assert first.status_code == 201, first.get_data(as_text=True)
    taken = first.get_json()
    assert taken["resourceType"] == "ServiceRequest" and "id" not in taken
    assert taken["subject"] == {"reference": "Patient/pat-10"}
    # What we sent, plus the referral's key: the identifier its copy on the EHR carries.
    assert taken["identifier"][:1] == body["identifier"]
    assert taken["identifier"][1]["system"] == "https://fhir-burnout.org/fhir/write-key"
    after_first = counts(app)
    assert after_first[:2] == (1, 1)

    again = push(client, bearer, body)
    assert again.status_code == 200 and again.get_json() == taken
    assert counts(app) == after_first  # nothing more: no second enrolment, nothing queued
    with Session(app.extensions["fhir_burnout"]["engine"]) as db:
        row = db.scalars(select(ReferralRow)).one()
        enrolment = db.get(EnrolmentRow, row.enrolment_key)
    assert (row.seen_by, row.patient, row.identifier_value) == (
        "post", "pat-10", body["identifier"][0]["value"],
    )  # fmt: skip
    assert (enrolment.track, enrolment.patient, enrolment.practice) == (
        "waiting-list", "pat-10", PRACTICE,
    )  # fmt: skip


def test_a_bundle_with_a_new_patient_creates_them_on_the_ehr_once(app, sandbox, fhir):
    client, bearer, bsn = app.test_client(), token(sandbox), random_bsn()
    body = bundle(bsn)
    assert on_ehr(fhir, bsn) == []
    first = push(client, bearer, body)
    assert first.status_code == 201, first.get_data(as_text=True)
    [created] = on_ehr(fhir, bsn)
    assert first.get_json()["subject"] == {"reference": f"Patient/{created}"}
    assert fhir.read("Patient", created)["name"][0]["family"] == "Proefpersoon"

    again = push(client, bearer, body)
    assert again.status_code == 200
    assert on_ehr(fhir, bsn) == [created]
    assert counts(app)[:2] == (1, 1)
    with Session(app.extensions["fhir_burnout"]["engine"]) as db:
        enrolment = db.scalars(select(EnrolmentRow)).one()
    assert (enrolment.patient, enrolment.track) == (created, "waiting-list")


def test_the_same_bundle_pushed_at_once_makes_one_patient_and_one_enrolment(app, sandbox, fhir):
    bearer, bsn, pushes = token(sandbox), random_bsn(), 6
    body = bundle(bsn)
    # The authorization server's keys are fetched first, so the pushes meet at the EHR.
    assert push(app.test_client(), bearer, b"", "text/plain").status_code == 415
    barrier, answers = threading.Barrier(pushes), []

    def send():
        client = app.test_client()
        barrier.wait()
        answers.append(push(client, bearer, body))

    threads = [threading.Thread(target=send) for _ in range(pushes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] * (pushes - 1) + [201], [a.get_data(as_text=True) for a in answers]
    [created] = on_ehr(fhir, bsn)
    assert {a.get_json()["subject"]["reference"] for a in answers} == {f"Patient/{created}"}
    assert counts(app)[:2] == (1, 1)


def test_a_patient_already_on_the_ehr_is_found_not_created_again(app, sandbox, fhir):
    bsn = random_bsn()
    existing = fhir.create(patient(bsn), if_none_exist=f"identifier={BSN}|{bsn}")["id"]
    answer = push(app.test_client(), token(sandbox), bundle(bsn))
    assert answer.status_code == 201
    assert answer.get_json()["subject"] == {"reference": f"Patient/{existing}"}
    assert on_ehr(fhir, bsn) == [existing]


@pytest.mark.parametrize("kind", ["transaction", "batch", "collection"])
def test_each_bundle_type_is_taken(lite, sandbox, fhir, kind):
    bsn = random_bsn()
    answer = push(lite.test_client(), token(sandbox), bundle(bsn, kind=kind))
    assert answer.status_code == 201, answer.get_data(as_text=True)
    assert len(on_ehr(fhir, bsn)) == 1


def test_a_bundle_whose_request_names_the_patient_by_id_in_the_bundle(lite, sandbox, fhir):
    bsn = random_bsn()
    body = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": patient(bsn, id="p-at-referrer")},
            {"resource": service_request(subject="Patient/p-at-referrer")},
        ],
    }
    answer = push(lite.test_client(), token(sandbox), body)
    assert answer.status_code == 201, answer.get_data(as_text=True)
    [created] = on_ehr(fhir, bsn)
    assert created != "p-at-referrer"  # the referrer's id is theirs, not the EHR's
    assert answer.get_json()["subject"] == {"reference": f"Patient/{created}"}


def test_a_referral_letter_is_taken_in_and_its_patient_created(app, sandbox, fhir):
    client, bearer, bsn = app.test_client(), token(sandbox), random_bsn()
    body = letter(bsn)
    answer = push(client, bearer, body, "application/xml")
    assert answer.status_code == 201, answer.get_data(as_text=True)
    [created] = on_ehr(fhir, bsn)
    taken = answer.get_json()
    assert taken["subject"] == {"reference": f"Patient/{created}", "type": "Patient"}
    assert taken["performer"][0]["reference"] == PRACTICE
    assert fhir.read("Patient", created)["name"][0]["given"] == ["Sanne", "Marije"]
    with Session(app.extensions["fhir_burnout"]["engine"]) as db:
        assert db.scalars(select(ReferralRow)).one().seen_by == "letter"
    # Sent again (as text/xml this time): known, nothing new.
    again = push(client, bearer, body, "text/xml; charset=utf-8")
    assert again.status_code == 200
    assert on_ehr(fhir, bsn) == [created] and counts(app)[:2] == (1, 1)


def test_the_examples_in_the_docs_are_taken_in(lite, sandbox, fhir):
    docs = (Path(__file__).resolve().parent.parent / "docs" / "referral-api.md").read_text()
    examples = [json.loads(b) for b in re.findall(r"```json\n(.*?)```", docs, flags=re.S)]
    assert [e["resourceType"] for e in examples] == ["ServiceRequest", "Bundle"]
    client, bearer, bsn = lite.test_client(), token(sandbox), random_bsn()
    for example in examples:
        # Fresh identifiers: the sandbox is shared by every test of the run.
        text = re.sub(r"VW-2026-\d+", lambda _: f"VW-{uuid.uuid4()}", json.dumps(example))
        answer = push(client, bearer, json.loads(text.replace("999911120", bsn)))
        assert answer.status_code == 201, answer.get_data(as_text=True)
    assert len(on_ehr(fhir, bsn)) == 1 and counts(lite)[0] == 2


# --- malicious letters: refused, nothing stored, nothing fetched ------------------------


@pytest.fixture
def listener():
    """A local port nothing may connect to: (its URL, the listening socket)."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.setblocking(False)
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}", server
    finally:
        server.close()


def with_doctype(body, doctype, reason):
    body = body.replace(b"<referralLetter", doctype.encode() + b"\n<referralLetter", 1)
    return re.sub(rb"<reason>.*?</reason>", f"<reason>{reason}</reason>".encode(), body,
                  flags=re.S)  # fmt: skip


LAUGHS = '<!ENTITY lol "lol">' + "".join(
    f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
    for i in range(1, 10)
)
SECRET = "SECRET-3b1f-must-not-leak"


@pytest.mark.parametrize("attack", ["billion laughs", "xxe file", "xxe url", "external dtd",
                                    "oversize"])  # fmt: skip
def test_a_malicious_letter_is_refused_and_nothing_is_stored(
    app, sandbox, fhir, tmp_path, listener, attack
):
    url, server = listener
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET, encoding="utf-8")
    bsn = random_bsn()
    body = letter(bsn)
    body = {
        "billion laughs": lambda: with_doctype(
            body, f"<!DOCTYPE referralLetter [{LAUGHS}]>", "&lol9;"
        ),
        "xxe file": lambda: with_doctype(
            body, f'<!DOCTYPE referralLetter [<!ENTITY x SYSTEM "{secret.as_uri()}">]>', "&x;"
        ),
        "xxe url": lambda: with_doctype(
            body, f'<!DOCTYPE referralLetter [<!ENTITY x SYSTEM "{url}/x">]>', "&x;"
        ),
        "external dtd": lambda: with_doctype(
            body, f'<!DOCTYPE referralLetter SYSTEM "{url}/letter.dtd">', "&secret;"
        ),
        "oversize": lambda: body.replace(b"</notes>", b" " * MAX_LETTER_BYTES + b"</notes>"),
    }[attack]()
    answer = push(app.test_client(), token(sandbox), body, "application/xml")
    said = issue(answer)
    if attack == "oversize":
        assert answer.status_code == 413 and said["code"] == "too-long"
    else:
        assert answer.status_code == 400 and "DOCTYPE is not allowed" in said["diagnostics"]
    text = answer.get_data(as_text=True)
    assert SECRET not in text and "lollol" not in text
    assert counts(app) == (0, 0, 0)
    assert on_ehr(fhir, bsn) == []
    with pytest.raises(BlockingIOError):  # nobody connected, not even to the backlog
        server.accept()


def test_a_json_body_over_the_limit_is_refused_before_it_is_read(lite, sandbox):
    body = json.dumps(service_request(note=[{"text": "x" * MAX_LETTER_BYTES}])).encode()
    answer = push(lite.test_client(), token(sandbox), body)
    assert answer.status_code == 413 and issue(answer)["code"] == "too-long"
    assert counts(lite) == (0, 0, 0)


# --- refused: who may push ------------------------------------------------------------


def test_no_token_is_refused_with_a_challenge(lite):
    answer = push(lite.test_client(), None, service_request())
    assert answer.status_code == 401 and answer.headers["WWW-Authenticate"] == "Bearer"
    assert "a bearer token is required" in issue(answer)["diagnostics"]


def test_a_token_without_service_request_create_is_forbidden(lite, sandbox):
    narrow = token(sandbox, "system/Patient.rs system/ServiceRequest.rs")
    answer = push(lite.test_client(), narrow, service_request())
    assert answer.status_code == 403
    assert answer.headers["WWW-Authenticate"] == 'Bearer error="insufficient_scope"'
    assert "ServiceRequest.c" in issue(answer)["diagnostics"]
    assert counts(lite) == (0, 0, 0)


def test_a_token_from_an_authorization_server_we_do_not_trust_is_refused(lite, stranger):
    answer = push(lite.test_client(), token(stranger), service_request())
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert "do not trust" in issue(answer)["diagnostics"]


def test_a_forged_token_is_refused(lite, sandbox):
    header, payload, signature = token(sandbox).split(".")
    answer = push(lite.test_client(), f"{header}.{payload}.{signature[::-1]}", service_request())
    assert answer.status_code == 401 and "signature" in issue(answer)["diagnostics"]


# --- refused: what is pushed ----------------------------------------------------------


@pytest.mark.parametrize(
    "content_type", ["application/fhir+xml", "text/plain", "multipart/form-data", ""]
)
def test_a_content_type_we_do_not_take_is_refused(lite, sandbox, content_type):
    answer = push(lite.test_client(), token(sandbox), service_request(), content_type)
    assert answer.status_code == 415
    said = issue(answer)
    assert said["code"] == "not-supported" and "application/fhir+json" in said["diagnostics"]
    assert counts(lite) == (0, 0, 0)


def _two_requests(bsn):
    body = bundle(bsn)
    body["entry"].append({"resource": service_request()})
    return body


def _draft(bsn):
    body = bundle(bsn)  # refused before its Patient is created on the EHR
    body["entry"][1]["resource"]["status"] = "draft"
    return body


def _unlinked(bsn):
    body = bundle(bsn)
    body["entry"][1]["resource"]["subject"] = {"reference": "urn:uuid:someone-else"}
    return body


BAD = [
    # (id, body, status, what the first issue says)
    ("not JSON", b"{nope", 400, "not JSON"),
    ("a Patient", patient, 400, "ServiceRequest or a Bundle"),
    ("a document Bundle", lambda bsn: bundle(bsn, kind="document"), 400,
     "type must be one of batch, collection, transaction"),
    ("two requests", _two_requests, 400, "exactly one ServiceRequest"),
    ("an Observation too", lambda bsn: {**bundle(bsn), "entry": [
        *bundle(bsn)["entry"], {"resource": {"resourceType": "Observation"}}]}, 400,
     "nothing else"),
    ("subject not the Patient", _unlinked, 400, "subject is not the Bundle's Patient"),
    ("not a valid ServiceRequest", lambda _: service_request(status=7), 400,
     "ServiceRequest.status: Input should be a valid string"),
    ("a Group as subject", lambda _: service_request(subject="Group/g-1"), 422,
     "subject must be a Patient on this EHR"),
    ("a draft", _draft, 422, "is 'draft', not active"),
    ("no identifier", lambda _: service_request(identifier=[{"value": "x"}]), 422,
     "no identifier with a system and a value"),
    ("no such patient", lambda _: service_request(subject="Patient/nobody-here"), 422,
     "the EHR has no Patient/nobody-here"),
    ("a BSN failing the 11-test", lambda _: bundle("999911121"), 422, "BSN is not valid"),
    ("a Patient without identifier", lambda bsn: bundle(bsn, identifier=[]), 422,
     "no identifier with a system and a value to find them by"),
    ("a letter that is not one", lambda _: b"<letter/>", 400, "root element must be"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "status", "says"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_what_is_not_a_referral_is_refused_and_nothing_is_kept(
    lite, sandbox, fhir, body, status, says
):
    bsn = random_bsn()
    data = body(bsn) if callable(body) else body
    content_type = "application/xml" if isinstance(data, bytes) and data[:1] == b"<" else FHIR_JSON
    answer = push(lite.test_client(), token(sandbox), data, content_type)
    assert answer.status_code == status, answer.get_data(as_text=True)
    assert says in issue(answer)["diagnostics"]
    assert counts(lite) == (0, 0, 0)
    assert on_ehr(fhir, bsn) == []


def test_invalid_structure_names_the_element_not_its_value(lite, sandbox):
    answer = push(lite.test_client(), token(sandbox), bundle(random_bsn(), birthDate="17-05-1980"))
    assert answer.status_code == 400
    outcome = answer.get_json()
    assert "Bundle.entry[0].resource.birthDate" in outcome["issue"][0]["expression"]
    assert "17-05-1980" not in answer.get_data(as_text=True)


def test_two_patients_with_the_identifier_on_the_ehr_is_for_a_person_to_resolve(
    app, sandbox, fhir
):
    bsn = random_bsn()
    for _ in range(2):  # the EHR has a duplicate: which one is meant, we cannot tell
        fhir.create(patient(bsn))
    answer = push(app.test_client(), token(sandbox), bundle(bsn))
    assert answer.status_code == 409
    said = issue(answer)
    assert said["code"] == "multiple-matches" and "more than one Patient" in said["diagnostics"]
    assert counts(app) == (0, 0, 0)
    assert len(on_ehr(fhir, bsn)) == 2


def test_an_ehr_the_app_cannot_write_to_is_for_the_practice_to_fix(sandbox, tmp_path):
    settings = settings_for(sandbox, tmp_path, f"sqlite:///{tmp_path / 'app.db'}")
    app = create_app(with_ehr(settings, worker_private_jwk=None, triage=True))  # no key
    answer = push(app.test_client(), token(sandbox), bundle(random_bsn()))
    assert answer.status_code == 500
    assert "no key for SMART Backend Services" in issue(answer)["diagnostics"]
    assert counts(app) == (0, 0, 0)
    app.extensions["fhir_burnout"]["engine"].dispose()


# --- the EHR does not answer ----------------------------------------------------------


def test_while_the_ehr_is_down_nothing_is_stored_and_the_caller_retries(tmp_path, database_url):
    with SandboxProcess() as ehr:
        info = ehr.info
        app = create_app(settings_for(info, tmp_path, database_url))
        client, bearer = app.test_client(), token(info)
        known = bundle(random_bsn())
        assert push(client, bearer, known).status_code == 201
        before = counts(app)
        ehr.stop()  # the token and the authorization server's keys were had before

        down = push(client, bearer, bundle(random_bsn()))
        assert down.status_code == 503
        assert int(down.headers["Retry-After"]) >= 1
        said = issue(down)
        assert (
            said["code"] == "transient" and "send the referral again later" in said["diagnostics"]
        )
        letter_down = push(client, bearer, letter(random_bsn()), "application/xml")
        assert letter_down.status_code == 503
        service_request_down = push(client, bearer, service_request(subject="Patient/pat-03"))
        assert service_request_down.status_code == 503
        assert counts(app) == before  # nothing stored: no referral, enrolment or outbox entry
        # A referral we already have needs nothing from the EHR: still answered.
        assert push(client, bearer, known).status_code == 200
        app.extensions["fhir_burnout"]["engine"].dispose()
