"""The XML referral letter: read safely, refused clearly, turned into a Patient and a
ServiceRequest."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from lxml import etree

from fhir_burnout.errors import FhirBurnoutError
from fhir_burnout.fhir import safe_xml_parser
from fhir_burnout.referral import (
    LETTER_NAMESPACE,
    MAX_LETTER_BYTES,
    ReferralLetterError,
    letter_to_fhir,
    read_referral_letter,
    valid_bsn,
)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = (Path(__file__).resolve().parent / "data" / "referral-letter.xml").read_bytes()
SCHEMA = ROOT / "fhir_burnout" / "referral" / "referral-letter.xsd"

#: Patient data in the example letter: none of it may appear in an error.
PATIENT_DATA = (
    "Sanne", "Marije", "van der Berg", "999911120", "1987-09-21", "06 12345678",
    "sanne.vanderberg", "P-004711", "uitputting",
)  # fmt: skip


def replaced(old: str, new: str) -> Callable[[bytes], bytes]:
    def change(letter: bytes) -> bytes:
        assert old.encode() in letter, old
        return letter.replace(old.encode(), new.encode(), 1)

    return change


def with_doctype(doctype: str, reason: str | None = None) -> bytes:
    """The example letter with a DOCTYPE before its root, and optionally another reason."""
    letter = EXAMPLE.replace(b"<referralLetter", doctype.encode() + b"\n<referralLetter", 1)
    if reason is not None:
        letter = re.sub(rb"<reason>.*?</reason>", f"<reason>{reason}</reason>".encode(), letter,
                        flags=re.S)  # fmt: skip
    return letter


def refused(data: bytes) -> ReferralLetterError:
    """The error reading ``data`` raises; fails the test if a letter comes back instead."""
    with pytest.raises(ReferralLetterError) as caught:
        read_referral_letter(data)
    return caught.value


def everything_said(error: ReferralLetterError) -> str:
    return str(error) + json.dumps(error.outcome(), ensure_ascii=False) + repr(error.problems)


@pytest.fixture
def listener() -> Iterator[tuple[str, socket.socket]]:
    """A local TCP port nothing should connect to: (base URL, the listening socket)."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.setblocking(False)
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}", server
    finally:
        server.close()


def assert_nobody_connected(server: socket.socket) -> None:
    # A connection attempt completes in the kernel's backlog even if never accepted.
    with pytest.raises(BlockingIOError):
        server.accept()


# --- the example letter ---------------------------------------------------------------


def test_example_letter_becomes_the_expected_patient():
    letter = read_referral_letter(EXAMPLE)
    patient, _ = letter_to_fhir(letter, practice="Organization/praktijk-1")

    assert patient["resourceType"] == "Patient"
    assert patient["identifier"] == [
        {
            "use": "official",
            "system": "http://fhir.nl/fhir/NamingSystem/bsn",
            "value": "999911120",
        },
        {
            "system": "https://huisartsenpraktijk-delinde.example/patient-number",
            "value": "P-004711",
        },
    ]
    assert patient["name"] == [
        {"use": "official", "family": "van der Berg", "given": ["Sanne", "Marije"]}
    ]
    assert patient["birthDate"] == "1987-09-21"
    assert patient["gender"] == "female"
    assert patient["telecom"] == [
        {"system": "phone", "value": "06 12345678"},
        {"system": "email", "value": "sanne.vanderberg@example.org"},
    ]
    assert "id" not in patient


def test_example_letter_becomes_the_expected_service_request():
    letter = read_referral_letter(EXAMPLE)
    _, request = letter_to_fhir(letter, practice="Organization/praktijk-1")

    assert request["resourceType"] == "ServiceRequest"
    assert request["identifier"] == [
        {"system": "https://verwijsportaal.example/referral", "value": "VW-2025-000123"}
    ]
    assert (request["status"], request["intent"], request["priority"]) == (
        "active", "order", "urgent",
    )  # fmt: skip
    assert request["authoredOn"] == "2025-03-14"
    assert request["subject"]["reference"] == f"urn:uuid:{letter.patient_key}"
    assert request["requester"] == {
        "type": "Practitioner",
        "identifier": {"system": "http://fhir.nl/fhir/NamingSystem/agb-z", "value": "01999999"},
        "display": "Dr. A. de Vries, Huisartsenpraktijk De Linde, tel. +31 30 123 4567",
    }
    assert request["performer"] == [
        {
            "type": "Organization",
            "reference": "Organization/praktijk-1",
            "identifier": {
                "system": "http://fhir.nl/fhir/NamingSystem/agb-z",
                "value": "94999999",
            },
        }
    ]
    assert request["code"]["coding"] == [
        {"system": "http://snomed.info/sct", "code": "306206005", "display": "Referral to service"}
    ]
    assert "burn-out" in request["code"]["text"]
    reason = request["reasonCode"][0]["text"]
    assert reason.startswith("Sinds vier maanden") and reason.endswith("tijdens de wachttijd.")
    assert "\n" in reason  # line breaks in the letter's free text are kept
    assert request["note"] == [{"text": "Patiënte heeft voorkeur voor afspraken in de ochtend."}]


def test_the_same_letter_read_twice_gets_the_same_keys():
    first, second = read_referral_letter(EXAMPLE), read_referral_letter(EXAMPLE)
    assert first == second
    assert first.patient_key == second.patient_key != first.request_key
    other = read_referral_letter(EXAMPLE.replace(b"VW-2025-000123", b"VW-2025-000124"))
    assert other.patient_key != first.patient_key


def test_letter_repr_shows_no_patient_data():
    shown = repr(read_referral_letter(EXAMPLE))
    assert "VW-2025-000123" in shown
    for value in PATIENT_DATA:
        assert value not in shown


def test_example_in_the_docs_is_the_test_letter():
    docs = (ROOT / "docs" / "referral-letter.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```xml\n(.*?)```", docs, flags=re.S)
    assert EXAMPLE.decode("utf-8") in blocks


def test_every_element_of_the_schema_is_documented():
    schema = etree.parse(str(SCHEMA), parser=safe_xml_parser())
    xs = "{http://www.w3.org/2001/XMLSchema}"
    declarations = schema.iter(f"{xs}element", f"{xs}simpleType", f"{xs}complexType")
    for declaration in declarations:
        if declaration.getparent().tag == f"{xs}element":
            continue  # the anonymous type of the root element, documented on the element
        documentation = declaration.find(f"{xs}annotation/{xs}documentation")
        assert documentation is not None and documentation.text.strip(), declaration.get("name")


# --- identifiers, optional parts ------------------------------------------------------


def test_patient_with_only_another_identifier_has_no_bsn():
    letter_bytes = replaced("<bsn>999911120</bsn>", "")(EXAMPLE)
    letter = read_referral_letter(letter_bytes)
    patient, _ = letter_to_fhir(letter, practice=None)
    assert letter.patient.bsn is None
    assert patient["identifier"] == [
        {
            "system": "https://huisartsenpraktijk-delinde.example/patient-number",
            "value": "P-004711",
        }
    ]


def test_bsn_given_as_an_identifier_with_the_bsn_system_is_the_bsn():
    letter_bytes = replaced(
        "<bsn>999911120</bsn>",
        "<identifier><system>http://fhir.nl/fhir/NamingSystem/bsn</system>"
        "<value>999911120</value></identifier>",
    )(EXAMPLE)
    patient, _ = letter_to_fhir(read_referral_letter(letter_bytes), practice=None)
    assert patient["identifier"][0] == {
        "use": "official", "system": "http://fhir.nl/fhir/NamingSystem/bsn", "value": "999911120",
    }  # fmt: skip


def test_smallest_letter_gives_routine_request_without_performer_or_note():
    small = f"""<referralLetter xmlns="{LETTER_NAMESPACE}">
  <identifier><system>urn:oid:2.16.528.1.999</system><value>1</value></identifier>
  <dateSent>2025-01-02</dateSent>
  <referrer><name>J. Jansen</name></referrer>
  <patient>
    <bsn>999911120</bsn>
    <name><family>Pietersen</family><given>P.</given></name>
    <birthDate>1990-01-01</birthDate>
  </patient>
  <reason>Burn-out</reason>
</referralLetter>""".encode()
    letter = read_referral_letter(small)
    patient, request = letter_to_fhir(letter, practice=None)
    assert letter.urgency == "routine" and request["priority"] == "routine"
    assert "performer" not in request and "note" not in request
    assert request["requester"] == {"type": "Practitioner", "display": "J. Jansen"}
    assert "telecom" not in patient and "gender" not in patient


def test_practice_from_the_caller_alone_becomes_the_performer():
    letter = read_referral_letter(re.sub(rb"<practice>.*</practice>", b"", EXAMPLE, flags=re.S))
    _, request = letter_to_fhir(letter, practice="https://ehr.example/fhir/Organization/7")
    assert request["performer"] == [
        {"type": "Organization", "reference": "https://ehr.example/fhir/Organization/7"}
    ]


@pytest.mark.parametrize(
    ("bsn", "valid"),
    [("999911120", True), ("999911121", False), ("000000000", False), ("99991112", False),
     ("99991112a", False), ("９９９９１１１２０", False)],  # noqa: RUF001 (full-width digits)
)  # fmt: skip
def test_bsn_11_test(bsn, valid):
    assert valid_bsn(bsn) is valid


# --- refused: attacks -----------------------------------------------------------------


def test_billion_laughs_is_refused_without_expanding_anything():
    entities = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
        for i in range(1, 10)
    )
    error = refused(with_doctype(f"<!DOCTYPE referralLetter [{entities}]>", "&lol9;"))
    assert "DOCTYPE is not allowed" in str(error)
    assert "lollol" not in everything_said(error)
    assert error.outcome()["issue"][0]["code"] == "structure"


def test_xxe_with_a_local_file_is_refused_and_the_file_is_never_read(tmp_path):
    secret = "SECRET-7f3c9a1e-do-not-leak"
    target = tmp_path / "secret.txt"
    target.write_text(secret, encoding="utf-8")
    letter = with_doctype(
        f'<!DOCTYPE referralLetter [<!ENTITY xxe SYSTEM "{target.as_uri()}">]>', "&xxe;"
    )

    error = refused(letter)

    assert "DOCTYPE is not allowed" in str(error)
    assert secret not in everything_said(error)
    # And the parser itself never reads it, DOCTYPE check or not.
    parsed = etree.fromstring(letter, parser=safe_xml_parser())
    assert secret.encode() not in etree.tostring(parsed)


def test_xxe_with_a_network_url_is_refused_and_nothing_is_fetched(listener):
    url, server = listener
    letter = with_doctype(
        f'<!DOCTYPE referralLetter [<!ENTITY xxe SYSTEM "{url}/secret">]>', "&xxe;"
    )
    error = refused(letter)
    assert "DOCTYPE is not allowed" in str(error)
    assert_nobody_connected(server)


@pytest.mark.parametrize("kind", ["network", "file"])
def test_external_dtd_is_refused_and_never_loaded(listener, tmp_path, kind):
    url, server = listener
    dtd = tmp_path / "letter.dtd"
    dtd.write_text('<!ENTITY secret "SECRET-from-dtd">', encoding="utf-8")
    where = f"{url}/letter.dtd" if kind == "network" else dtd.as_uri()
    error = refused(with_doctype(f'<!DOCTYPE referralLetter SYSTEM "{where}">', "&secret;"))
    assert "DOCTYPE is not allowed" in str(error)
    assert "SECRET-from-dtd" not in everything_said(error)
    assert_nobody_connected(server)


def test_letter_over_the_size_limit_is_refused_before_parsing():
    padding = b" " * (MAX_LETTER_BYTES + 1 - len(EXAMPLE))
    at_limit = EXAMPLE + padding[:-1]
    assert len(at_limit) == MAX_LETTER_BYTES
    assert read_referral_letter(at_limit).identifier.value == "VW-2025-000123"

    # One byte over, and not even XML: refused for its size, never parsed.
    error = refused(b"<" * (MAX_LETTER_BYTES + 1))
    assert error.code == "too-long"
    assert error.issues() == [
        {
            "severity": "error",
            "code": "too-long",
            "diagnostics": f"the letter is {MAX_LETTER_BYTES + 1} bytes; "
            f"at most {MAX_LETTER_BYTES} bytes are accepted",
        }
    ]
    assert isinstance(error, ValueError) and isinstance(error, FhirBurnoutError)


# --- refused: bad letters -------------------------------------------------------------

BAD_LETTERS = [
    # (id, change to the example, what the message says, where, a value that must not show)
    ("not well-formed", replaced("</reason>", "</reasons>"), "not well-formed XML", "", None),
    ("not XML at all", lambda _: b"Sanne van der Berg, BSN 999911120", "not well-formed XML",
     "", None),
    ("empty", lambda _: b"", "not well-formed XML", "", None),
    ("wrong namespace", replaced("referral-letter/1", "referral-letter/2"),
     "root element must be referralLetter in namespace " + LETTER_NAMESPACE,
     "/referralLetter", None),
    ("no namespace", replaced(f' xmlns="{LETTER_NAMESPACE}"', ""), "no namespace",
     "/referralLetter", None),
    ("missing date sent", replaced("<dateSent>2025-03-14</dateSent>", ""),
     "Expected is ( dateSent )", "/referralLetter/urgency", None),
    ("missing family name", replaced("<family>van der Berg</family>", ""),
     "This element is not expected. Expected is ( family )",
     "/referralLetter/patient/name/given[1]", None),
    ("missing given name", replaced("<given>Sanne</given>\n      <given>Marije</given>", ""),
     "Missing child element(s). Expected is ( given )", "/referralLetter/patient/name", None),
    ("missing reason", lambda b: re.sub(rb"<reason>.*</reason>", b"", b, flags=re.S),
     "Expected is ( reason )", "/referralLetter/notes", None),
    ("no patient identifier", lambda b: re.sub(rb"<bsn>.*?</identifier>", b"", b, flags=re.S),
     "Expected is one of ( bsn, identifier )", "/referralLetter/patient/name", None),
    ("BSN too short", replaced("<bsn>999911120</bsn>", "<bsn>12345</bsn>"),
     "not a valid value: expected 9 digits", "/referralLetter/patient/bsn", "12345"),
    ("BSN with a letter", replaced("<bsn>999911120</bsn>", "<bsn>99991112A</bsn>"),
     "not a valid value: expected 9 digits", "/referralLetter/patient/bsn", "99991112A"),
    ("BSN fails the 11-test", replaced("<bsn>999911120</bsn>", "<bsn>999911121</bsn>"),
     "not a valid BSN: it must be 9 digits that pass the 11-test", "/referralLetter/patient/bsn",
     "999911121"),
    ("BSN identifier fails the 11-test", replaced(
        "https://huisartsenpraktijk-delinde.example/patient-number",
        "http://fhir.nl/fhir/NamingSystem/bsn"),
     "not a valid BSN", "/referralLetter/patient/identifier/value", "P-004711"),
    ("reason too long", lambda b: re.sub(rb"<reason>.*</reason>",
                                         b"<reason>" + b"x" * 4001 + b"</reason>", b, flags=re.S),
     "too long: 4001 characters, at most 4000 are allowed", "/referralLetter/reason", "xxxx"),
    ("reason only spaces", lambda b: re.sub(rb"<reason>.*</reason>", b"<reason>  \n </reason>",
                                            b, flags=re.S),
     "text with at least one character that is not a space", "/referralLetter/reason", None),
    ("bad birth date", replaced("1987-09-21", "1987-02-30"),
     "expected a date written YYYY-MM-DD", "/referralLetter/patient/birthDate", "1987-02-30"),
    ("date with a time zone", replaced("2025-03-14", "2025-03-14Z"),
     "without a time zone", "/referralLetter/dateSent", None),
    ("unknown gender", replaced("<gender>female</gender>", "<gender>vrouw</gender>"),
     "must be one of: male, female, other, unknown", "/referralLetter/patient/gender", "vrouw"),
    ("unknown urgency", replaced("<urgency>urgent</urgency>", "<urgency>asap</urgency>"),
     "must be one of: routine, urgent", "/referralLetter/urgency", "asap"),
    ("AGB of 7 digits", replaced("<agb>01999999</agb>", "<agb>0199999</agb>"),
     "expected 8 digits", "/referralLetter/referrer/agb", "0199999"),
    ("bad e-mail", replaced("sanne.vanderberg@example.org", "sanne.vanderberg"),
     "expected an e-mail address", "/referralLetter/patient/email", None),
    ("unknown element", replaced("<gender>female</gender>", "<gender>female</gender><ssn>1</ssn>"),
     "This element is not expected", "/referralLetter/patient/ssn", None),
    ("unknown attribute", replaced("<urgency>", '<urgency hint="Sanne">'),
     "this attribute is not allowed", "/referralLetter/urgency/@hint", None),
    ("second family name", replaced("<given>Marije</given>",
                                    "<family>x</family><given>Marije</given>"),
     "This element is not expected", "/referralLetter/patient/name/family[2]", None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("change", "says", "where", "hidden"),
    [case[1:] for case in BAD_LETTERS],
    ids=[case[0] for case in BAD_LETTERS],
)
def test_bad_letter_is_refused_with_a_clear_error(change, says, where, hidden):
    error = refused(change(EXAMPLE))

    assert isinstance(error, ValueError) and error.code == "invalid"
    assert any(says in problem.message for problem in error.problems), str(error)
    if where:
        assert any(problem.path == where for problem in error.problems), str(error)
    said = everything_said(error)
    for value in (*PATIENT_DATA, *([hidden] if hidden else [])):
        assert value not in said, value
    issues = error.outcome()["issue"]
    assert len(issues) == len(error.problems)
    assert all(issue["severity"] == "error" for issue in issues)


def test_schema_problems_give_their_line_and_one_issue_each():
    letter = replaced("<gender>female</gender>", "<gender>vrouw</gender>")(EXAMPLE)
    letter = replaced("sanne.vanderberg@example.org", "geen")(letter)
    error = refused(letter)
    assert [str(p) for p in error.problems] == [
        "line 27, /referralLetter/patient/gender: the value must be one of: "
        "male, female, other, unknown",
        "line 29, /referralLetter/patient/email: not a valid value: "
        "expected an e-mail address such as name@example.org",
    ]
    assert error.issues() == [
        {
            "severity": "error",
            "code": "invalid",
            "diagnostics": str(problem),
            "location": [problem.path],
        }
        for problem in error.problems
    ]


def test_letter_with_a_namespace_prefix_is_read_and_its_problems_located():
    prefixed = re.sub(rb"<(/?)([a-zA-Z]+)", rb"<\1rl:\2", EXAMPLE).replace(b"xmlns=", b"xmlns:rl=")
    assert read_referral_letter(prefixed) == read_referral_letter(EXAMPLE)

    error = refused(replaced("<rl:gender>female", "<rl:gender>vrouw")(prefixed))
    assert [p.path for p in error.problems] == ["/referralLetter/patient/gender"]

    other = replaced("<rl:gender>", '<rl:gender xmlns:rl="urn:other">')(prefixed)
    error = refused(other)
    assert [p.path for p in error.problems] == ["/referralLetter/patient/{urn:other}gender"]


def test_not_well_formed_letter_says_line_and_column():
    error = refused(replaced("</reason>", "</reasons>")(EXAMPLE))
    (problem,) = error.problems
    assert problem.line == 33 and problem.code == "structure"
    assert "Opening and ending tag mismatch" in problem.message and "column" in problem.message
