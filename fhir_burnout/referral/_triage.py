"""Triage: a care professional decides whether self-help suits a referred person.

A referral taken in with triage (the default) waits as "aangemeld, nog niet beoordeeld":
nobody is enrolled and the referrer's Task says ``received``. The care professional reads
the referral beside the programme's exclusion criteria (``content/triage.yaml``, each with
its source) and

- accepts it (:func:`accept_referral`): the patient is enrolled on the waiting list and
  invited, the referrer's Task becomes ``accepted`` with the CarePlan as its output; or
- declines it (:func:`decline_referral`) with a coded reason from the content and their own
  explanation: nothing is enrolled, the referrer's Task becomes ``rejected`` with the reason
  as its ``statusReason``.

A decision is made once: the referral's state moves out of ``triage`` with a conditional
UPDATE, so of two decisions at the same moment (two tabs, two colleagues) one wins and the
other changes nothing and is told so (:class:`ReferralDecidedError`). Each decision runs in
the caller's transaction with its outbox entries.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fhir_burnout.errors import ContentError, FhirBurnoutError
from fhir_burnout.referral._intake import (
    WAITING_LIST,
    WAITING_LIST_STATUS,
    _careplan_output,
    _Writes,
    current_enrolment,
    status_key,
)
from fhir_burnout.referral._tables import ACCEPTED, DECLINED, TRIAGE, ReferralRow
from fhir_burnout.sync import UpdateTask
from fhir_burnout.workflow import Definitions, EnrolmentRow, enrol, invite

#: Where the triage content lives, under the content root.
TRIAGE_FILE = "content/triage.yaml"
#: The longest explanation for the referrer that is kept (characters).
MAX_DECLINE_NOTE = 2000
#: What the referrer's Task says after a decline (Task.businessStatus).
DECLINED_STATUS = "Afgewezen na beoordeling: zelfhulp past nu niet"


class TriageError(FhirBurnoutError, ValueError):
    """A triage decision that cannot be made as asked (an unknown reason, say)."""

    code = "invalid"


class ReferralNotFoundError(FhirBurnoutError, LookupError):
    """No referral with this key for this EHR and practice."""

    code = "not-found"


class ReferralDecidedError(FhirBurnoutError):
    """The referral was decided already (accepted or declined): nothing changed."""

    code = "conflict"

    def __init__(self, referral: ReferralRow) -> None:
        super().__init__(f"the referral was {referral.state} already")
        self.referral = referral


@dataclass(frozen=True)
class Criterion:
    """An exclusion criterion: a reason self-help may not be the right start, with its
    source (a guideline a clinical reviewer can check)."""

    code: str
    title: dict[str, str]
    description: dict[str, str]
    source: str


@dataclass(frozen=True)
class DeclineReason:
    """A coded reason to decline a referral, as the referrer reads it."""

    code: str
    display: dict[str, str]


@dataclass(frozen=True)
class TriageContent:
    """The exclusion criteria, the question asked at triage and the decline reasons."""

    system: str
    criteria: tuple[Criterion, ...]
    question: dict[str, str]
    reasons: tuple[DeclineReason, ...]

    def reason(self, code: str) -> DeclineReason:
        """The decline reason with this code; TriageError for any other."""
        for reason in self.reasons:
            if reason.code == code:
                return reason
        raise TriageError(f"{code!r} is not a reason to decline a referral")


def _texts(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(value.get(lang), str) and value[lang].strip() for lang in ("nl", "en")
    ):
        raise ContentError(TRIAGE_FILE, where, "needs a Dutch (nl) and an English (en) text")
    return {lang: str(value[lang]).strip() for lang in ("nl", "en")}


def load_triage(root: Path) -> TriageContent:
    """The triage content from ``content/triage.yaml`` under ``root``; ContentError says
    what is missing where."""
    path = root / TRIAGE_FILE
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ContentError(TRIAGE_FILE, "", "not found") from None
    except yaml.YAMLError as exc:
        raise ContentError(TRIAGE_FILE, "", f"invalid YAML: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("system"), str):
        raise ContentError(TRIAGE_FILE, "system", "is required (the reasons' CodeSystem URL)")
    criteria = []
    for i, raw in enumerate(data.get("exclusion-criteria") or []):
        where = f"exclusion-criteria[{i}]"
        if not isinstance(raw.get("source"), str) or not raw["source"].strip():
            raise ContentError(TRIAGE_FILE, where, "needs its source")
        criteria.append(
            Criterion(
                code=str(raw["code"]),
                title=_texts(raw.get("title"), f"{where}.title"),
                description=_texts(raw.get("description"), f"{where}.description"),
                source=" ".join(str(raw["source"]).split()),
            )
        )
    reasons = tuple(
        DeclineReason(str(raw["code"]), _texts(raw.get("display"), f"decline-reasons[{i}]"))
        for i, raw in enumerate(data.get("decline-reasons") or [])
    )
    if not criteria or not reasons:
        raise ContentError(TRIAGE_FILE, "", "needs exclusion-criteria and decline-reasons")
    return TriageContent(
        system=data["system"],
        criteria=tuple(criteria),
        question=_texts(data.get("question"), "question"),
        reasons=reasons,
    )


def waiting_for_triage(db: Session, *, fhir_base: str, practice: str | None) -> list[ReferralRow]:
    """The referrals of this practice on this EHR that wait for triage, longest first."""
    return list(
        db.scalars(
            select(ReferralRow)
            .where(
                ReferralRow.fhir_base == fhir_base.rstrip("/"),
                ReferralRow.practice == practice,
                ReferralRow.state == TRIAGE,
            )
            .order_by(ReferralRow.received_at, ReferralRow.key)
        )
    )


def find_referral(db: Session, key: str, *, fhir_base: str, practice: str | None) -> ReferralRow:
    """The referral with this key, if it is for this practice on this EHR."""
    row = db.get(ReferralRow, key)
    if row is None or row.fhir_base != fhir_base.rstrip("/") or row.practice != practice:
        raise ReferralNotFoundError(f"there is no referral {key} for this practice")
    return row


def _decide(
    db: Session, row: ReferralRow, state: str, by: str, now: datetime, **values: Any
) -> None:
    """Move the referral out of triage, or ReferralDecidedError when someone did already."""
    moved = db.execute(
        update(ReferralRow)
        .where(ReferralRow.key == row.key, ReferralRow.state == TRIAGE)
        .values(state=state, decided_at=now, decided_by=by, **values)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        db.refresh(row)
        raise ReferralDecidedError(row)
    db.refresh(row)


def accept_referral(
    db: Session,
    definitions: Definitions,
    key: str,
    *,
    fhir_base: str,
    practice: str | None,
    by: str,
    now: datetime | None = None,
) -> EnrolmentRow:
    """Accept a referral waiting for triage: its patient is enrolled on the waiting list
    (or keeps the plan they are in) and invited, and the referrer's Task becomes
    ``accepted``. In the caller's transaction; once."""
    now = now or datetime.now(UTC)
    row = find_referral(db, key, fhir_base=fhir_base, practice=practice)
    _decide(db, row, ACCEPTED, by, now)
    if row.identity_issue:
        # The care professional looked and says it is this patient: what was held goes now.
        _Writes(row.fhir_base, row.patient, row.practice).first(
            db, row.key, _request(row), enrolment=None, now=now
        )
    enrolment = current_enrolment(db, row.fhir_base, row.patient) or enrol(
        db, definitions, fhir_base=row.fhir_base, patient=row.patient, track=WAITING_LIST,
        author=by, practice=row.practice, now=now,
    )  # fmt: skip
    row.enrolment_key = enrolment.key
    if enrolment.track == WAITING_LIST:
        invite(db, enrolment, now=now)
    change = UpdateTask(
        status_key(row.key), "accepted", output=(_careplan_output(enrolment),),
        business_status=WAITING_LIST_STATUS,
    )  # fmt: skip
    _Writes(row.fhir_base, row.patient, row.practice).queue(
        db, "referral-status", [change], by, now
    )
    db.flush()
    return enrolment


def decline_referral(
    db: Session,
    triage: TriageContent,
    key: str,
    *,
    fhir_base: str,
    practice: str | None,
    reason: str,
    note: str,
    by: str,
    now: datetime | None = None,
) -> ReferralRow:
    """Decline a referral waiting for triage, with a coded reason and an explanation for
    the referrer: nothing is enrolled, the referrer's Task becomes ``rejected`` with the
    reason as its statusReason. In the caller's transaction; once. TriageError for an
    unknown reason, a missing explanation where the reason needs one, or a long one."""
    now = now or datetime.now(UTC)
    chosen = triage.reason(reason)
    note = note.strip()
    if len(note) > MAX_DECLINE_NOTE:
        raise TriageError(f"the explanation is longer than {MAX_DECLINE_NOTE} characters")
    if chosen.code == "other" and not note:
        raise TriageError("another reason needs an explanation for the referrer")
    row = find_referral(db, key, fhir_base=fhir_base, practice=practice)
    _decide(db, row, DECLINED, by, now, decline_reason=chosen.code, decline_note=note or None)
    writes = _Writes(row.fhir_base, row.patient, row.practice)
    if row.identity_issue:
        # Perhaps not this patient: the referrer still hears, by their own identifier, but
        # neither the referral nor its Task lands in the chart of the EHR's Patient.
        focus = {"identifier": {"system": row.identifier_system, "value": row.identifier_value}}
        writes.status(db, row.key, focus=focus, service_request=_request(row), enrolment=None,
                      now=now, subject=False)  # fmt: skip
    display = chosen.display["nl"]
    status_reason = {
        "coding": [{"system": triage.system, "code": chosen.code, "display": display}],
        "text": f"{display}. {note}" if note else display,
    }
    change = UpdateTask(
        status_key(row.key), "rejected", status_reason=status_reason,
        business_status=DECLINED_STATUS,
    )  # fmt: skip
    writes.queue(db, "referral-status", [change], by, now)
    return row


def _request(row: ReferralRow) -> dict[str, Any]:
    """The ServiceRequest as taken in."""
    return dict(json.loads(row.request)) if row.request else {}


@dataclass(frozen=True)
class ReferralSummary:
    """What a referral says, as the care professional reads it at triage."""

    reasons: tuple[str, ...]
    requested: str | None
    referrer: str | None
    authored: str | None
    priority: str | None
    notes: tuple[str, ...]


def _text(concept: Any) -> str | None:
    if not isinstance(concept, dict):
        return None
    if isinstance(concept.get("text"), str):
        return str(concept["text"])
    for coding in concept.get("coding") or []:
        if isinstance(coding, dict) and coding.get("display"):
            return str(coding["display"])
    return None


def summarise(row: ReferralRow) -> ReferralSummary:
    """The referral's reason, referrer, date, priority and notes (a letter's reason and
    notes are there too: the letter became this ServiceRequest)."""
    request: dict[str, Any] = json.loads(row.request) if row.request else {}
    reasons = [_text(c) for c in request.get("reasonCode") or []]
    reasons += [
        str(r.get("display")) for r in request.get("reasonReference") or [] if r.get("display")
    ]
    requester = request.get("requester") or {}
    referrer = requester.get("display") or requester.get("reference")
    notes = [str(n["text"]) for n in request.get("note") or [] if n.get("text")]
    return ReferralSummary(
        reasons=tuple(r for r in reasons if r),
        requested=_text(request.get("code")),
        referrer=str(referrer) if referrer else None,
        authored=str(request["authoredOn"]) if request.get("authoredOn") else None,
        priority=str(request["priority"]) if request.get("priority") else None,
        notes=tuple(notes),
    )
