"""A referral letter as read: frozen values, one class per part of the letter.

The parts that identify or describe the patient are kept out of ``repr`` so a letter can
be logged (by accident or on purpose) without its patient data.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

#: The XML namespace of version 1 of the referral letter (referral-letter.xsd).
LETTER_NAMESPACE = "https://fhir-burnout.org/ns/referral-letter/1"

# Keys derived from the letter's identifier: the same letter, sent twice, gets the same
# keys, so a conditional create by key does not write it twice.
_KEYS = uuid.uuid5(uuid.NAMESPACE_URL, LETTER_NAMESPACE)

Urgency = Literal["routine", "urgent"]
Gender = Literal["male", "female", "other", "unknown"]


@dataclass(frozen=True)
class LetterIdentifier:
    """An identifier in the letter: a system URI and a value (as FHIR Identifier)."""

    system: str
    value: str


@dataclass(frozen=True)
class Referrer:
    """Who refers: a name, and optionally an AGB code, an organization and a phone."""

    name: str
    agb: str | None = None
    organization: str | None = None
    phone: str | None = None


@dataclass(frozen=True, repr=False)
class ReferredPatient:
    """Who is referred. A BSN or other identifiers (at least one), name, birth date."""

    bsn: str | None
    identifiers: tuple[LetterIdentifier, ...]
    given: tuple[str, ...]
    family: str
    birth_date: date
    gender: Gender | None = None
    phone: str | None = None
    email: str | None = None

    def __repr__(self) -> str:
        return "ReferredPatient(<patient data not shown>)"


@dataclass(frozen=True)
class ReferralLetter:
    """One referral letter for burn-out treatment, read and checked."""

    identifier: LetterIdentifier
    sent: date
    urgency: Urgency
    referrer: Referrer
    patient: ReferredPatient = field(repr=False)
    reason: str = field(repr=False)
    notes: str | None = field(default=None, repr=False)
    #: the practice the letter is addressed to, when the sender named it
    practice: LetterIdentifier | None = None

    def _key(self, kind: str) -> str:
        return str(uuid.uuid5(_KEYS, f"{kind}|{self.identifier.system}|{self.identifier.value}"))

    @property
    def patient_key(self) -> str:
        """The Patient's key: its fullUrl is ``urn:uuid:<key>`` (what ServiceRequest.subject
        references); stable for the same letter identifier."""
        return self._key("Patient")

    @property
    def request_key(self) -> str:
        """The ServiceRequest's key, ``urn:uuid:<key>`` as fullUrl; stable like patient_key."""
        return self._key("ServiceRequest")
