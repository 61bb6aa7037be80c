"""The referred patient in the EHR: found by identifier, or created there, exactly once.

A referral that is pushed to us (``POST /referrals``: a Bundle with the ServiceRequest and
its Patient, or an XML referral letter) names the patient by identifier, the BSN where
there is one. Before the referral can be taken in, the patient needs an id on the EHR: the
enrolment, the CarePlan and every Task refer to ``Patient/<id>``. So, against the R4 REST
API (http://hl7.org/fhir/R4/http.html):

- search ``Patient?identifier=<system>|<value>``: exactly one match is the patient;
- none: create the Patient with a conditional create
  (``If-None-Exist: identifier=<system>|<value>``, R4 §3.1.0.8.1), so two pushes of the
  same patient at the same moment make one Patient, not two;
- more than one, or a conditional create the server refuses because several match (412):
  :class:`AmbiguousPatientError`; a person has to look, we do not guess.

A match by BSN is checked against the referral's family name and birth date: a BSN with a
typo, or a wrong one, names somebody else, and a referral attached to the wrong patient is a
clinical risk and a data leak. When they do not agree (or cannot be compared) the match says
so (:data:`~fhir_burnout.referral._tables.BSN_MISMATCH`) and the referral waits for a
person, who decides (``_triage.py``).

Creating the Patient is the one write to the EHR that does not go through the outbox, and
on purpose: everything taken in afterwards (the referral, the enrolment, what the outbox
writes later) needs the Patient's id, which only the EHR can give. Queueing it would leave
an enrolment without a patient. The write is safe to repeat: a conditional create on the
identifier, so a retry after a lost answer finds the Patient the first attempt made. When
the EHR does not answer, nothing has been stored on our side and the caller is told to try
again later.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fhir_burnout.errors import FhirBurnoutError, FhirServerError
from fhir_burnout.fhir import FhirClient
from fhir_burnout.referral._bsn import BSN_SYSTEM, valid_bsn
from fhir_burnout.referral._intake import ReferralError
from fhir_burnout.referral._tables import BSN_MISMATCH


class AmbiguousPatientError(FhirBurnoutError):
    """Several Patients on the EHR carry the referred patient's identifier: a person must
    decide which one is meant (R4 issue-type ``multiple-matches``)."""

    code = "multiple-matches"


def patient_identifier(patient: Mapping[str, Any]) -> tuple[str, str]:
    """The identifier a Patient is matched by: its BSN when it has one, else its first
    identifier with a system and a value. ReferralError when it has none, or a BSN that
    fails the 11-test."""
    usable = [
        (str(i["system"]), str(i["value"]))
        for i in patient.get("identifier", []) or []
        if isinstance(i, Mapping) and i.get("system") and i.get("value")
    ]
    for system, value in usable:
        if system == BSN_SYSTEM:
            if not valid_bsn(value):
                raise ReferralError(
                    "the Patient's BSN is not valid: it must be 9 digits that pass the"
                    " 11-test (elfproef)"
                )
            return system, value
    if not usable:
        raise ReferralError(
            "the Patient has no identifier with a system and a value to find them by"
        )
    return usable[0]


def search_token(system: str, value: str) -> str:
    """``system|value`` for a token search, with FHIR's escapes (R4 §3.1.1.5.7)."""

    def escape(text: str) -> str:
        return "".join("\\" + c if c in "\\|,$" else c for c in text)

    return f"{escape(system)}|{escape(value)}"


@dataclass(frozen=True)
class PatientMatch:
    """The referred patient's id on the EHR, and why it is not certain (None: it is)."""

    id: str
    identity_issue: str | None = None


def match_or_create_patient(client: FhirClient, patient: Mapping[str, Any]) -> PatientMatch:
    """The Patient on the EHR with ``patient``'s identifier (see :func:`patient_identifier`),
    creating ``patient`` there (conditionally) when there is none; a BSN match whose name
    or birth date differs is marked :data:`BSN_MISMATCH`. Raises
    :class:`AmbiguousPatientError` when several match, ReferralError when the Patient has
    no usable identifier, and the client's errors when the EHR refuses or does not answer."""
    if patient.get("resourceType") != "Patient":
        raise ReferralError("the referred patient must be a FHIR Patient")
    system, value = patient_identifier(patient)
    token = search_token(system, value)
    found = _search(client, token)
    if len(found) > 1:
        raise _ambiguous()
    if not found:
        body = {k: v for k, v in patient.items() if k not in ("id", "meta")}
        try:
            created = client.create(body, if_none_exist=urlencode({"identifier": token}))
        except FhirServerError as error:
            if error.status == 412:  # several match: R4 §3.1.0.8.1 answers a conditional create
                raise _ambiguous() from None
            raise
        # A conditional create may answer with a Patient someone else made meanwhile (200),
        # so it is checked like a match; without the resource (return=minimal): look it up.
        found = [created] if created.get("id") else _search(client, token)
        if len(found) != 1:
            raise _ambiguous()
    match = found[0]
    same = system != BSN_SYSTEM or same_person(patient, match)
    return PatientMatch(str(match["id"]), None if same else BSN_MISMATCH)


def same_person(sent: Mapping[str, Any], on_ehr: Mapping[str, Any]) -> bool:
    """Whether the EHR's Patient has the sent Patient's birth date and one of its family
    names (compared without case and extra spaces); False when either is missing."""
    born = sent.get("birthDate")
    if not born or born != on_ehr.get("birthDate"):
        return False
    return bool(_families(sent) & _families(on_ehr))


def _families(patient: Mapping[str, Any]) -> set[str]:
    names = patient.get("name") or []
    return {
        " ".join(str(n["family"]).split()).casefold()
        for n in names
        if isinstance(n, Mapping) and isinstance(n.get("family"), str) and n["family"].strip()
    }


def existing_patient(client: FhirClient, patient_id: str) -> str:
    """``patient_id`` once the EHR shows ``Patient/<patient_id>``; ReferralError when it
    has no such Patient, the client's errors when it does not answer."""
    try:
        found = client.read("Patient", patient_id)
    except FhirServerError as error:
        if error.status in (404, 410):
            raise ReferralError(f"no such patient: the EHR has no Patient/{patient_id}") from None
        raise
    return str(found.get("id") or patient_id)


def _search(client: FhirClient, token: str) -> list[dict[str, Any]]:
    # Two are enough to know the answer is not exactly one.
    matches = client.search("Patient", {"identifier": token, "_count": "2"})
    return [dict(p) for p in itertools.islice(matches, 2)]


def _ambiguous() -> AmbiguousPatientError:
    return AmbiguousPatientError(
        "more than one Patient on the EHR has the referred patient's identifier; the"
        " practice has to decide who is meant before this referral can be taken in"
    )
