"""The client's results as a DocumentReference in the Koppeltaal domain (draft T029).

Koppeltaal has no results channel (TOP-KT-009: Task.input/output 0..0); the draft extension
"Documenten Delen" (T029, profile ``KT2_DocumentReference``, IG ``input/fsh/profiles/
KT2_DocumentReference.fsh``) lets a module publish a DocumentReference whose content stays
with the module: the domain's store holds only the metadata and a link. Behind the setting
``koppeltaal_results`` per ``[[ehr]]`` (``Ehr.results``, default off), when the outbox
adapter sees a KT2_Task completed on the server, it queues (:func:`queue_results`, in the
patient's partition) one entry that POSTs (:func:`document_reference`):

- ``status`` current, ``subject`` the Patient, ``date`` now, ``type`` LOINC 11506-3
  "Progress note": the IG's binding is still open (its comment: "LOINC of een
  Koppeltaal-specifieke ValueSet"), and 11506-3 is the coding of the IG's own example
  (``documentreference-documenten-delen.fsh``), so a portal built against the draft knows it;
- ``context.related`` the Task (the profile's ``task`` slice, 1..1), ``author`` our Device;
- ``content.attachment``: ``url`` = ``<base_url>/koppeltaal/results/<key>`` (the document,
  which the domain's EHR fetches with a token of the domain's auth service:
  web/_koppeltaal_results.py), ``contentType`` text/html, a title; no ``data``, no Binary: the
  health data stay with the module until the EHR fetches them;
- ``identifier`` ``<base_url>/koppeltaal/results`` | key, and the POST is conditional on it
  (``If-None-Exist``): a retry, or the same completion delivered twice, makes none twice.

The key is the KT2_Task's id: one document per completed Task, and the download finds the
Task (and so the client) by the care professional's domain and the key.

"Where the domain supports it": a domain that refuses DocumentReference (403 no scope, 404
no such type, 422 not its profile) gets no second try; the refusal is the entry's event and
the entry counts as delivered. The Task's status went on in its own entry, before.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from fhir_burnout.errors import FhirServerError
from fhir_burnout.fhir import FhirClient
from fhir_burnout.koppeltaal._tables import KoppeltaalTaskRow
from fhir_burnout.sync import Agent, KoppeltaalResults, enqueue
from fhir_burnout.workflow import partition

log = logging.getLogger(__name__)

#: The op (and outbox kind) of a results DocumentReference for one KT2_Task.
RESULTS_OP = KoppeltaalResults.OP
KT2_DOCUMENT_REFERENCE = "http://koppeltaal.nl/fhir/StructureDefinition/KT2DocumentReference"
LOINC = "http://loinc.org"
PROGRESS_NOTE = ("11506-3", "Progress note")
#: Answers that mean "this domain takes no DocumentReference from us": not retried.
REFUSED = frozenset({403, 404, 405, 422})
#: The document's title, as the care professional reads it in the portal (Dutch first).
TITLE = "Resultaten burn-outprogramma (Results of the burnout programme)"


def results_path(key: str) -> str:
    """The download's path under our base URL."""
    return f"/koppeltaal/results/{key}"


def results_url(base_url: str, key: str) -> str:
    """The download: ``<base_url>/koppeltaal/results/<key>``."""
    return base_url.rstrip("/") + results_path(key)


def identifier_system(base_url: str) -> str:
    """The system of our DocumentReference identifiers (the value is the key)."""
    return base_url.rstrip("/") + "/koppeltaal/results"


def document_reference(
    *, key: str, task_id: str, patient: str, device: str, base_url: str, now: datetime
) -> dict[str, Any]:
    """The KT2_DocumentReference for the results of KT2_Task ``task_id`` (no id, no
    resource-origin: both are the server's)."""
    return {
        "resourceType": "DocumentReference",
        "meta": {"profile": [KT2_DOCUMENT_REFERENCE]},
        "identifier": [{"system": identifier_system(base_url), "value": key}],
        "status": "current",
        "type": {
            "coding": [{"system": LOINC, "code": PROGRESS_NOTE[0], "display": PROGRESS_NOTE[1]}]
        },
        "subject": {"reference": patient, "type": "Patient"},
        "date": now.astimezone(UTC).isoformat(timespec="seconds"),
        "author": [{"reference": device, "type": "Device"}],
        "content": [
            {
                "attachment": {
                    "contentType": "text/html",
                    "language": "nl-NL",
                    "url": results_url(base_url, key),
                    "title": TITLE,
                    "creation": now.astimezone(UTC).isoformat(timespec="seconds"),
                }
            }
        ],
        "context": {"related": [{"reference": f"Task/{task_id}", "type": "Task"}]},
    }


def queue_results(db: Session, row: KoppeltaalTaskRow, *, now: datetime | None = None) -> str:
    """Queue the results DocumentReference for the KT2_Task of ``row`` (in the caller's
    transaction), in the patient's outbox partition; returns the entry's key."""
    return enqueue(
        db,
        fhir_base=row.fhir_base,
        partition=partition(row.fhir_base, row.patient.removeprefix("Patient/")),
        kind=RESULTS_OP,
        operations=[KoppeltaalResults(row.task_id, row.task_id, row.patient)],
        agent=Agent(),
        now=now,
    )


def send_results(
    client: FhirClient,
    op: KoppeltaalResults,
    *,
    device: str,
    base_url: str,
    now: datetime | None = None,
) -> str:
    """POST the DocumentReference of ``op`` (conditional on its identifier); what became of
    it, for the entry's event. A refusal (:data:`REFUSED`) is said, not raised; any other
    error is raised for the worker (tried again, or a dead letter)."""
    key = op.key
    resource = document_reference(
        key=key, task_id=op.task_id, patient=op.patient, device=device,
        base_url=base_url, now=now or datetime.now(UTC),
    )  # fmt: skip
    try:
        created = client.create(
            resource, if_none_exist=f"identifier={identifier_system(base_url)}|{key}"
        )
    except FhirServerError as error:
        if error.status in REFUSED:
            log.info("the domain takes no DocumentReference (%s)", error.status)
            return (
                f"DocumentReference for Task/{op.task_id} not taken by the domain "
                f"({error.status}): results stay with us"
            )
        raise
    return f"DocumentReference/{created.get('id', '?')} for Task/{op.task_id}"
