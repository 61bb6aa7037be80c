"""Referral intake: referrals taken in once (:func:`take_referral`), and the XML referral
letter, read safely and turned into FHIR R4.

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
    WAITING_LIST,
    Intake,
    ReferralError,
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
    Subscribed,
    ehr_id,
    notify_endpoint,
    notify_token,
    notify_token_ok,
    referral_criteria,
    subscribe,
    subscription_criteria,
)
from fhir_burnout.referral._patients import (
    AmbiguousPatientError,
    existing_patient,
    match_or_create_patient,
)
from fhir_burnout.referral._poll import PollResult, reconcile
from fhir_burnout.referral._schedule import PollOutcome, ReferralPoller
from fhir_burnout.referral._tables import PollRow, ReferralRow

__all__ = [
    "LETTER_NAMESPACE",
    "MAX_LETTER_BYTES",
    "WAITING_LIST",
    "AmbiguousPatientError",
    "Intake",
    "LetterIdentifier",
    "LetterProblem",
    "PollOutcome",
    "PollResult",
    "PollRow",
    "ReferralError",
    "ReferralLetter",
    "ReferralLetterError",
    "ReferralPoller",
    "ReferralRow",
    "ReferredPatient",
    "Referrer",
    "Subscribed",
    "ehr_id",
    "existing_patient",
    "letter_to_fhir",
    "match_or_create_patient",
    "notify_endpoint",
    "notify_token",
    "notify_token_ok",
    "read_referral_letter",
    "reconcile",
    "referral_criteria",
    "referral_identifier",
    "referral_key",
    "referral_patient",
    "report_to_referrer",
    "status_key",
    "subscribe",
    "subscription_criteria",
    "take_referral",
    "valid_bsn",
]
