"""Referral intake: referrals taken in once (:func:`take_referral`), triage by a care
professional (:func:`accept_referral`, :func:`decline_referral`, with the exclusion
criteria of :func:`load_triage`), and the XML referral letter, read safely and turned into
FHIR R4.

:func:`read_referral_letter` reads a letter (``referral-letter.xsd``, described in
``docs/referral-letter.md``) into a :class:`ReferralLetter` or refuses it with a
:class:`ReferralLetterError` that lists every problem; :func:`letter_to_fhir` turns a
letter into a FHIR R4 Patient and ServiceRequest (JSON), the ServiceRequest's subject
being ``urn:uuid:<letter.patient_key>``. :func:`match_or_create_patient` finds a pushed
referral's patient on the EHR by identifier, or creates them there, once.
"""

from __future__ import annotations

from fhir_burnout.referral._bsn import valid_bsn
from fhir_burnout.referral._errors import LetterProblem, ReferralLetterError
from fhir_burnout.referral._intake import (
    TRIAGE_STATUS,
    WAITING_LIST,
    WAITING_LIST_STATUS,
    Intake,
    ReferralError,
    current_enrolment,
    referral_identifier,
    referral_key,
    referral_patient,
    report_to_referrer,
    status_key,
    take_referral,
)
from fhir_burnout.referral._letter import MAX_LETTER_BYTES, letter_to_fhir, read_referral_letter
from fhir_burnout.referral._model import (
    LETTER_NAMESPACE,
    LetterIdentifier,
    ReferralLetter,
    ReferredPatient,
    Referrer,
)
from fhir_burnout.referral._notify import (
    REFERRAL_CHANNEL,
    REFERRAL_REASON,
    referral_criteria,
    subscribe_referrals,
    subscription_criteria,
)
from fhir_burnout.referral._patients import (
    AmbiguousPatientError,
    PatientMatch,
    existing_patient,
    match_or_create_patient,
    search_token,
)
from fhir_burnout.referral._poll import ReferralFeed, reconcile
from fhir_burnout.referral._tables import (
    ACCEPTED,
    BSN_MISMATCH,
    DECLINED,
    TRIAGE,
    ReferralRow,
)
from fhir_burnout.referral._triage import (
    DECLINED_STATUS,
    MAX_DECLINE_NOTE,
    Criterion,
    DeclineReason,
    ReferralDecidedError,
    ReferralNotFoundError,
    ReferralSummary,
    TriageContent,
    TriageError,
    accept_referral,
    decline_referral,
    find_referral,
    load_triage,
    summarise,
    waiting_for_triage,
)

__all__ = [
    "ACCEPTED",
    "BSN_MISMATCH",
    "DECLINED",
    "DECLINED_STATUS",
    "LETTER_NAMESPACE",
    "MAX_DECLINE_NOTE",
    "MAX_LETTER_BYTES",
    "REFERRAL_CHANNEL",
    "REFERRAL_REASON",
    "TRIAGE",
    "TRIAGE_STATUS",
    "WAITING_LIST",
    "WAITING_LIST_STATUS",
    "AmbiguousPatientError",
    "Criterion",
    "DeclineReason",
    "Intake",
    "LetterIdentifier",
    "LetterProblem",
    "PatientMatch",
    "ReferralDecidedError",
    "ReferralError",
    "ReferralFeed",
    "ReferralLetter",
    "ReferralLetterError",
    "ReferralNotFoundError",
    "ReferralRow",
    "ReferralSummary",
    "ReferredPatient",
    "Referrer",
    "TriageContent",
    "TriageError",
    "accept_referral",
    "current_enrolment",
    "decline_referral",
    "existing_patient",
    "find_referral",
    "letter_to_fhir",
    "load_triage",
    "match_or_create_patient",
    "read_referral_letter",
    "reconcile",
    "referral_criteria",
    "referral_identifier",
    "referral_key",
    "referral_patient",
    "report_to_referrer",
    "search_token",
    "status_key",
    "subscribe_referrals",
    "subscription_criteria",
    "summarise",
    "take_referral",
    "valid_bsn",
    "waiting_for_triage",
]
