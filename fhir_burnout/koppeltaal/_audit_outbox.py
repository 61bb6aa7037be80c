"""Queueing a KT2_AuditEvent for a domain: one outbox partition per domain, apart from the
patients' writes, so a refused launch (with no patient known) has a place too, and no
patient waits on an audit.

Delivered by ``_outbox`` as a conditional create on its write key (TOP-KT-011 memo §3.5);
the events themselves are built in ``_audit`` (no I/O there).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from fhir_burnout.koppeltaal._trace import new_id
from fhir_burnout.sync import Agent, Create, enqueue

#: The outbox partition of a domain's AuditEvents.
AUDIT_PARTITION = "{fhir_base}#koppeltaal-audit"


def queue_audit_event(
    db: Session,
    fhir_base: str,
    event: dict[str, Any],
    *,
    kind: str,
    now: datetime | None = None,
) -> str:
    """Queue ``event`` for the domain at ``fhir_base`` in the caller's transaction (the
    caller commits), made by the app itself; ``kind`` names the entry (``koppeltaal-audit``,
    ``-receive``, ``-error``). Returns the entry's key."""
    return enqueue(
        db, fhir_base=fhir_base, partition=AUDIT_PARTITION.format(fhir_base=fhir_base),
        kind=kind, operations=[Create(new_id(), event)], agent=Agent(), now=now,
    )  # fmt: skip
