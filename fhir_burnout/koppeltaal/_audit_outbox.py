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

from fhir_burnout.koppeltaal._audit import CORRELATION_ID_EXTENSION as _CORRELATION
from fhir_burnout.koppeltaal._audit import REQUEST_ID_EXTENSION, TRACE_ID_EXTENSION
from fhir_burnout.koppeltaal._trace import Trace, new_id, trace_context
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
    ``-receive``, ``-error``). Returns the entry's key.

    The event is built once and stored: every attempt POSTs it as it is, conditional on its
    write key (one event per fact, however often it is retried), in the trace it records
    (its ``trace-id``, caused by the request it is about: its ``request-id``)."""
    return enqueue(
        db, fhir_base=fhir_base, partition=AUDIT_PARTITION.format(fhir_base=fhir_base),
        kind=kind, operations=[Create(new_id(), event)], agent=Agent(), now=now,
        context=trace_context(_trace_of(event)),
    )  # fmt: skip


def _trace_of(event: dict[str, Any]) -> Trace | None:
    ids = {
        e.get("url"): e.get("valueId")
        for e in event.get("extension", []) or []
        if isinstance(e, dict) and isinstance(e.get("valueId"), str)
    }
    trace_id = ids.get(TRACE_ID_EXTENSION)
    if not trace_id:
        return None
    return Trace(trace_id, ids.get(REQUEST_ID_EXTENSION) or ids.get(_CORRELATION))
