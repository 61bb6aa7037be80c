"""How the workflow's changes reach the EHR: the patient's outbox partition, the entry that
queues the writes, and the pieces of FHIR several writes share.

Every change queues its writes in the caller's transaction, so the local change and the
outbox entry that carries it are committed together (``fhir_burnout.sync``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from fhir_burnout.sync import Agent, Operation, enqueue, key_reference
from fhir_burnout.workflow._apply import SDC_TEMP
from fhir_burnout.workflow._tables import EnrolmentRow


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)


def partition(fhir_base: str, patient: str) -> str:
    """The outbox partition of a patient: their writes reach the EHR in order."""
    return f"{fhir_base.rstrip('/')}#Patient/{patient}"


def _agent(who: str | None, practice: str | None) -> Agent:
    return Agent(who=who, on_behalf_of=practice)


def queue_writes(
    db: Session,
    enrolment: EnrolmentRow,
    kind: str,
    operations: Sequence[Operation],
    who: str | None,
    *,
    now: datetime,
) -> None:
    """Queue writes about an enrolment's patient for the EHR, in the caller's transaction:
    in the patient's partition (in order with their other writes), made by ``who`` (None:
    the app) on behalf of the enrolment's practice."""
    enqueue(
        db,
        fhir_base=enrolment.fhir_base,
        partition=partition(enrolment.fhir_base, enrolment.patient),
        kind=kind,
        operations=operations,
        agent=_agent(who, enrolment.practice),
        now=now,
    )


def _translated(text: str, english: str) -> dict[str, Any]:
    return {
        "text": text,
        "_text": {
            "extension": [
                {
                    "url": "http://hl7.org/fhir/StructureDefinition/translation",
                    "extension": [
                        {"url": "lang", "valueCode": "en"},
                        {"url": "content", "valueString": english},
                    ],
                }
            ]
        },
    }


def _response_output(response_key: str) -> dict[str, Any]:
    """A Task.output naming the QuestionnaireResponse written under ``response_key``."""
    return {
        "type": {"coding": [{"system": SDC_TEMP, "code": "questionnaire-response"}]},
        "valueReference": key_reference(response_key),
    }
