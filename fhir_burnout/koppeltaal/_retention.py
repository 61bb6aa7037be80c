"""The retention of results documents (draft T029, "Bewaartermijn DocumentReference").

The draft keeps a DocumentReference in the domain's store for 30 days from publication
(``_results.RETENTION``; its ``date``), and makes the module that published it the one that
removes it. What lies behind the link follows the module's own policy; ours keeps nothing
longer than its link: when a version's 30 days are over its stored bytes are deleted, and
when that was the version the DocumentReference points at (no newer one), a
``koppeltaal-results`` entry with ``removed`` is queued in the patient's partition (after
anything still waiting for that patient) which DELETEs the DocumentReference from the domain.
Its URL then answers 404: nothing of it is left to tell "gone" from "never there" (RFC 9110
§15.5.11 keeps 410 for a server that knows).

:func:`expire_results` runs in the worker's periodic round (``fhir-burnout worker``, beside
the session purge), with ``now`` injectable for tests.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from fhir_burnout.koppeltaal._results import RESULTS_OP, RETENTION
from fhir_burnout.koppeltaal._tables import KoppeltaalTaskRow, ResultsDocumentRow
from fhir_burnout.sync import Agent, KoppeltaalResults, enqueue
from fhir_burnout.workflow import partition


def expire_results(engine: Engine, *, now: datetime | None = None) -> int:
    """Delete the results versions whose retention ended and queue the removal of each
    DocumentReference that pointed at the last of them; returns how many versions went."""
    now = now or datetime.now(UTC)
    cutoff = now - RETENTION
    with Session(engine) as db, db.begin():
        expired = list(db.scalars(select(ResultsDocumentRow).where(
            ResultsDocumentRow.published_at < cutoff
        )))  # fmt: skip
        linked = {(r.fhir_base, r.task_id) for r in expired if r.document_reference}
        for fhir_base, task_id in sorted(linked):
            newer = db.scalar(
                select(ResultsDocumentRow.version_id)
                .where(
                    ResultsDocumentRow.fhir_base == fhir_base,
                    ResultsDocumentRow.task_id == task_id,
                    ResultsDocumentRow.published_at >= cutoff,  # the link points there now
                )
                .limit(1)
            )
            task = db.get(KoppeltaalTaskRow, (fhir_base, task_id))
            if newer is None and task is not None:
                enqueue(
                    db, fhir_base=fhir_base,
                    partition=partition(fhir_base, task.patient.removeprefix("Patient/")),
                    kind=RESULTS_OP, agent=Agent(),  # due at once, whatever ``now`` says
                    operations=[KoppeltaalResults(task_id, task_id, task.patient, removed=True)],
                )  # fmt: skip
        db.execute(delete(ResultsDocumentRow).where(ResultsDocumentRow.published_at < cutoff))
    return len(expired)
