"""The referrals we took in (one row per referral, whoever told us about it first); how far
the poll of each EHR got is ``integration.PollRow``."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fhir_burnout.db import Base

#: A referral waits for the practice's care professional: "aangemeld, nog niet beoordeeld".
TRIAGE = "triage"
#: Accepted (by a care professional, or automatically where the practice chose that).
ACCEPTED = "accepted"
#: Declined by a care professional, with a reason for the referrer.
DECLINED = "declined"
#: The EHR has a Patient with the referral's BSN, but under another family name or birth
#: date: a person decides whether it is the same person (never attached silently).
BSN_MISMATCH = "bsn-mismatch"


class ReferralRow(Base):
    """A referral (a FHIR ServiceRequest on an EHR), taken in once: its identifier is unique
    per EHR, so a Subscription notification, the reconciliation poll and a push of the same
    referral find this row instead of enrolling the patient again. It waits for triage
    (``state`` = triage, no enrolment yet) until a care professional accepts or declines it,
    unless the practice switched automatic enrolment on."""

    __tablename__ = "referral"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    fhir_base: Mapped[str] = mapped_column(String(512))
    identifier_system: Mapped[str] = mapped_column(String(512))
    identifier_value: Mapped[str] = mapped_column(String(256))
    service_request: Mapped[str | None] = mapped_column(String(256))  # ServiceRequest/<id>
    patient: Mapped[str] = mapped_column(String(128))  # the Patient's id on that EHR
    #: the enrolment it led to; None while it waits for triage and when it was declined
    enrolment_key: Mapped[str | None] = mapped_column(ForeignKey("enrolment.key"), index=True)
    #: how we first heard of it: subscription | reconciliation | post | letter
    seen_by: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: triage | accepted | declined (referrals from before triage existed were accepted)
    state: Mapped[str] = mapped_column(String(16), server_default=ACCEPTED)
    #: the ServiceRequest as taken in (JSON): what the care professional reads at triage
    request: Mapped[str | None] = mapped_column(Text)
    practice: Mapped[str | None] = mapped_column(String(256))  # Organization/.. it was for
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decided_by: Mapped[str | None] = mapped_column(String(256))  # Practitioner/..; None: app
    decline_reason: Mapped[str | None] = mapped_column(String(64))  # a code from the content
    decline_note: Mapped[str | None] = mapped_column(Text)  # for the referrer
    #: why its patient is not certain (BSN_MISMATCH): it waits for triage whatever the
    #: practice chose, and nothing about it reaches the EHR until a person decided
    identity_issue: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (UniqueConstraint("fhir_base", "identifier_system", "identifier_value"),)
