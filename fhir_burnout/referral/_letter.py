"""The XML referral letter: read safely, checked, and turned into FHIR R4 resources.

Reading refuses, in this order and before anything is taken from the letter: more than
:data:`MAX_LETTER_BYTES` (before parsing), any DOCTYPE (so no entity, internal or
external, and no DTD is ever used, let alone expanded or fetched; the parsers have entity
resolution, DTD loading and network access off as well), XML that is not well-formed, a
root element that is not ``referralLetter`` in :data:`LETTER_NAMESPACE`, anything the
schema (``referral-letter.xsd``) refuses, and a BSN that fails the 11-test.

The letter becomes a Patient and a ServiceRequest as FHIR R4 JSON (a pair, not a Bundle):
the ServiceRequest's ``subject`` is ``urn:uuid:<letter.patient_key>``, the fullUrl the
Patient gets in the transaction that writes both (a server resolves references to an
entry's fullUrl: http://hl7.org/fhir/R4/http.html#transaction). Both keys derive from
the letter's identifier, so the outbox (``fhir_burnout.sync``, whose write keys are
referenced the same way) writes a letter sent twice only once.
"""

from __future__ import annotations

import copy
import re
from datetime import date
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from lxml import etree
from pydantic import ValidationError

from fhir_burnout.fhir import safe_xml_parser
from fhir_burnout.referral._bsn import BSN_SYSTEM, valid_bsn
from fhir_burnout.referral._errors import LetterProblem, ReferralLetterError
from fhir_burnout.referral._model import (
    LETTER_NAMESPACE,
    Gender,
    LetterIdentifier,
    ReferralLetter,
    ReferredPatient,
    Referrer,
    Urgency,
)
from fhir_burnout.referral._schema import element_path, letter_schema, limited, schema_problems

#: Letters larger than this (in bytes, as received) are refused before they are parsed.
MAX_LETTER_BYTES = 256 * 1024

#: The NamingSystem of AGB codes of care providers in Dutch FHIR profiles.
AGB_SYSTEM = "http://fhir.nl/fhir/NamingSystem/agb-z"
SNOMED_CT = "http://snomed.info/sct"
TRANSLATION = "http://hl7.org/fhir/StructureDefinition/translation"

# What is asked. SNOMED CT 306206005 |Referral to service (procedure)| is the code the
# FHIR R4 specification itself gives a referral to a mental-health care programme
# (ActivityDefinition/referralPrimaryCareMentalHealth, kind ServiceRequest); the text says
# which service.
_REQUESTED = {
    "coding": [{"system": SNOMED_CT, "code": "306206005", "display": "Referral to service"}],
    "text": "Behandeling bij burn-out met het e-healthprogramma Herstellen van burn-out",
    "_text": {
        "extension": [
            {
                "url": TRANSLATION,
                "extension": [
                    {"url": "lang", "valueCode": "en"},
                    {
                        "url": "content",
                        "valueString": (
                            "Burn-out treatment with the e-health programme"
                            " Recovering from burn-out"
                        ),
                    },
                ],
            }
        ]
    },
}

_GENDERS: dict[str, Gender] = {
    "male": "male",
    "female": "female",
    "other": "other",
    "unknown": "unknown",
}
_LINE_SUFFIX = re.compile(r",? line \d+, column \d+\s*$")
_QUOTED = re.compile(r"'[^']*'")


def _q(name: str) -> str:
    return f"{{{LETTER_NAMESPACE}}}{name}"


def _refuse(problem: LetterProblem) -> ReferralLetterError:
    return ReferralLetterError([problem])


def read_referral_letter(data: bytes) -> ReferralLetter:
    """Read one referral letter (referral-letter.xsd, namespace :data:`LETTER_NAMESPACE`).

    Raises :class:`ReferralLetterError` listing what is wrong, line and element, when the
    letter is refused; nothing of the letter is returned then.
    """
    if len(data) > MAX_LETTER_BYTES:
        raise _refuse(
            LetterProblem(
                None,
                "",
                f"the letter is {len(data)} bytes; at most {MAX_LETTER_BYTES} bytes are accepted",
                "too-long",
            )
        )
    if _declares_doctype(data):
        raise _refuse(_DOCTYPE)
    root = _parse(data)
    info = root.getroottree().docinfo
    if info.doctype or info.internalDTD is not None or info.externalDTD is not None:
        raise _refuse(_DOCTYPE)  # not reached while _declares_doctype holds; kept as a second lock
    if root.tag != _q("referralLetter"):
        found = etree.QName(root)
        namespace = f"namespace {found.namespace}" if found.namespace else "no namespace"
        raise _refuse(
            LetterProblem(
                root.sourceline,
                "/" + found.localname[:100],
                f"the root element must be referralLetter in namespace {LETTER_NAMESPACE};"
                f" this one is {found.localname[:100]} in {namespace[:200]}",
                "structure",
            )
        )
    problems = schema_problems(root, letter_schema())
    if problems:
        raise ReferralLetterError(problems)
    return _letter(root)


_DOCTYPE = LetterProblem(
    None,
    "",
    "a DOCTYPE is not allowed: the letter must not declare a DTD or entities",
    "structure",
)


class _PrologReadError(Exception):
    """Raised by :class:`_Prolog` to end parsing once it knows the answer (not an error)."""


class _Prolog:
    """An lxml parser target that stops at the DOCTYPE or, when there is none, at the root."""

    def doctype(self, name: object, public_id: object, system_url: object) -> None:
        raise _PrologReadError("doctype")

    def start(self, tag: object, attrib: object) -> None:
        raise _PrologReadError("root")

    def comment(self, text: object) -> None:
        return None

    def data(self, data: object) -> None:
        return None

    def end(self, tag: object) -> None:
        return None

    def close(self) -> None:
        return None


def _declares_doctype(data: bytes) -> bool:
    """Whether the letter has a DOCTYPE, read by libxml2 up to the root's start tag only.

    A DOCTYPE comes before the root element, and looking there first means a letter that
    declares entities is refused as such even when libxml2 would stop at them later (it
    refuses a "billion laughs" as "entity amplification" while parsing the content). The
    target interface needs a parser of its own; it has the safe parser's settings.
    """
    parser = etree.XMLParser(
        target=_Prolog(), resolve_entities=False, load_dtd=False, no_network=True
    )
    try:
        etree.fromstring(data, parser=parser)
    except _PrologReadError as seen:
        return str(seen) == "doctype"
    except etree.XMLSyntaxError:
        return False  # not XML up to its root: the full parse says what is wrong
    return False


def _parse(data: bytes) -> Any:
    try:
        return etree.fromstring(data, parser=safe_xml_parser())
    except etree.XMLSyntaxError as exc:
        # libxml2 names tags and entities here, not content, except the bytes it could not
        # decode: those are cut off.
        message = (exc.msg or "cannot be read").split("Bytes:")[0].replace("\n", " ")
        message = _LINE_SUFFIX.sub("", message).strip()[:200]
        line, column = exc.position if exc.position else (exc.lineno, 0)
        where = f" (column {column})" if column else ""
        raise _refuse(
            LetterProblem(line or None, "", f"not well-formed XML: {message}{where}", "structure")
        ) from None


def _text(element: Any, collapse: bool = True) -> str:
    text = "".join(element.itertext())
    return " ".join(text.split()) if collapse else text.strip()


def _optional(parent: Any, name: str) -> str | None:
    element = parent.find(_q(name))
    return None if element is None else _text(element)


def _required(parent: Any, name: str) -> str:
    # The schema has checked that required elements are there.
    return _text(parent.find(_q(name)))


def _identifier(element: Any) -> LetterIdentifier:
    return LetterIdentifier(_required(element, "system"), _required(element, "value"))


def _letter(root: Any) -> ReferralLetter:
    problems: list[LetterProblem] = []
    patient_element = root.find(_q("patient"))
    bsn_elements = list(patient_element.findall(_q("bsn")))
    identifiers = []
    for element in patient_element.findall(_q("identifier")):
        identifier = _identifier(element)
        if identifier.system == BSN_SYSTEM:
            bsn_elements.append(element.find(_q("value")))
        else:
            identifiers.append(identifier)
    bsns = []
    for element in bsn_elements:
        bsn = _text(element)
        if valid_bsn(bsn):
            bsns.append(bsn)
        else:
            problems.append(
                LetterProblem(
                    element.sourceline,
                    element_path(element),
                    "not a valid BSN: it must be 9 digits that pass the 11-test (elfproef)",
                )
            )
    if len(set(bsns)) > 1:
        problems.append(
            LetterProblem(
                patient_element.sourceline,
                element_path(patient_element),
                "the patient has two different BSNs",
            )
        )
    if problems:
        raise ReferralLetterError(limited(problems))
    name = patient_element.find(_q("name"))
    gender = _optional(patient_element, "gender")
    patient = ReferredPatient(
        bsn=bsns[0] if bsns else None,
        identifiers=tuple(identifiers),
        given=tuple(_text(e) for e in name.findall(_q("given"))),
        family=_required(name, "family"),
        birth_date=date.fromisoformat(_required(patient_element, "birthDate")),
        gender=_GENDERS[gender] if gender else None,
        phone=_optional(patient_element, "phone"),
        email=_optional(patient_element, "email"),
    )
    referrer_element = root.find(_q("referrer"))
    referrer = Referrer(
        name=_required(referrer_element, "name"),
        agb=_optional(referrer_element, "agb"),
        organization=_optional(referrer_element, "organization"),
        phone=_optional(referrer_element, "phone"),
    )
    notes = root.find(_q("notes"))
    practice = root.find(_q("practice"))
    urgency: Urgency = "urgent" if _optional(root, "urgency") == "urgent" else "routine"
    return ReferralLetter(
        identifier=_identifier(root.find(_q("identifier"))),
        sent=date.fromisoformat(_required(root, "dateSent")),
        urgency=urgency,
        referrer=referrer,
        patient=patient,
        reason=_text(root.find(_q("reason")), collapse=False),
        notes=None if notes is None else _text(notes, collapse=False),
        practice=None if practice is None else _identifier(practice.find(_q("identifier"))),
    )


def letter_to_fhir(
    letter: ReferralLetter, *, practice: str | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The letter as a FHIR R4 (Patient, ServiceRequest), both as JSON, both validated.

    ``practice`` is a literal reference to the receiving practice's Organization in the
    EHR (``Organization/123`` or an absolute URL); with the letter's practice identifier
    it becomes ServiceRequest.performer. The ServiceRequest
    (http://hl7.org/fhir/R4/servicerequest.html) is an active order whose subject is
    ``urn:uuid:<letter.patient_key>``: write both in one transaction, with that fullUrl
    on the Patient. An empty ``practice`` counts as none.
    """
    patient = _patient(letter.patient)
    request = _service_request(letter, practice.strip() if practice else None)
    _validate(patient)
    _validate(request)
    return patient, request


def _patient(person: ReferredPatient) -> dict[str, Any]:
    identifiers: list[dict[str, Any]] = []
    if person.bsn:
        identifiers.append({"use": "official", "system": BSN_SYSTEM, "value": person.bsn})
    identifiers += [{"system": i.system, "value": i.value} for i in person.identifiers]
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "identifier": identifiers,
        "name": [{"use": "official", "family": person.family, "given": list(person.given)}],
    }
    telecom = []
    if person.phone:
        telecom.append({"system": "phone", "value": person.phone})
    if person.email:
        telecom.append({"system": "email", "value": person.email})
    if telecom:
        patient["telecom"] = telecom
    if person.gender:
        patient["gender"] = person.gender
    patient["birthDate"] = person.birth_date.isoformat()
    return patient


def _service_request(letter: ReferralLetter, practice: str | None) -> dict[str, Any]:
    referrer = letter.referrer
    # A Reference has no room for a phone number; the display is read by a person who may
    # want to call the referrer back, so the number goes there.
    display = ", ".join(
        part
        for part in (
            referrer.name,
            referrer.organization,
            f"tel. {referrer.phone}" if referrer.phone else None,
        )
        if part
    )
    requester: dict[str, Any] = {"type": "Practitioner", "display": display}
    if referrer.agb:
        requester["identifier"] = {"system": AGB_SYSTEM, "value": referrer.agb}
    request: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "identifier": [{"system": letter.identifier.system, "value": letter.identifier.value}],
        "status": "active",
        "intent": "order",
        "priority": letter.urgency,
        "code": copy.deepcopy(_REQUESTED),
        "subject": {"reference": f"urn:uuid:{letter.patient_key}", "type": "Patient"},
        "authoredOn": letter.sent.isoformat(),
        "requester": requester,
    }
    performer: dict[str, Any] = {}
    if practice:
        performer["reference"] = practice
    if letter.practice:
        performer["identifier"] = {
            "system": letter.practice.system,
            "value": letter.practice.value,
        }
    if performer:
        request["performer"] = [{"type": "Organization", **performer}]
    request["reasonCode"] = [{"text": letter.reason}]
    if letter.notes:
        request["note"] = [{"text": letter.notes}]
    return request


def _validate(resource: dict[str, Any]) -> None:
    """Check the resource against the fhir.resources R4B model; a letter we cannot turn
    into valid FHIR is refused, naming the element but not its value."""
    kind = resource["resourceType"]
    try:
        get_fhir_model_class(kind).model_validate(resource)
    except ValidationError as exc:
        raise ReferralLetterError(
            limited(
                [
                    LetterProblem(
                        None,
                        ".".join([kind, *(str(p) for p in error["loc"])]),
                        _QUOTED.sub("'…'", error["msg"]),
                    )
                    for error in exc.errors()
                ]
            )
        ) from None
