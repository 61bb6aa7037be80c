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
- ``content.attachment``: ``url`` = ``<base_url>/koppeltaal/results/<key>/<version>`` (one
  published version of the document, which the domain's EHR fetches with a token of the
  domain's auth service: web/_koppeltaal_results.py), ``contentType`` text/html, a title,
  ``hash`` (base64 SHA-1 of the bytes served, FHIR R4 Attachment) and ``size``; no ``data``,
  no Binary: the health data stay with the module until the EHR fetches them;
- ``identifier`` ``<base_url>/koppeltaal/results`` | key: one DocumentReference per Task.

Immutable once published (the draft's "Onveranderlijk en self-contained"): the document is
rendered (Dutch, by the ``render`` the worker is given: the web layer's template) when the
entry is delivered, and stored as it is (:class:`ResultsDocumentRow`, with its hash) under a
new random version id; that URL serves those bytes and nothing else. Rendered again (a retry,
the completion queued again), the same bytes keep their version; other bytes become a new
version at a new URL, and the DocumentReference is updated (PUT, ``If-Match``) to point
there, the draft's way ("werkt de module de bestaande DocumentReference bij"): its history
keeps the earlier versions' links. Found already pointing there, nothing is sent; found
nowhere, it is POSTed, conditional on its identifier (``If-None-Exist``), so a retry or two
deliveries make none twice. Retention: ``_retention``.

The key is the KT2_Task's id: the download finds the Task (and so the client) by the
caller's domain and the key, and the version by its id.

"Where the domain supports it": a domain that refuses DocumentReference (403 no scope, 404
no such type, 422 not its profile) gets no second try; the refusal is the entry's event and
the entry counts as delivered, and the version nobody can be sent to is not kept. The Task's
status went on in its own entry, before.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from fhir_burnout.errors import FhirServerError
from fhir_burnout.fhir import FhirClient
from fhir_burnout.koppeltaal._tables import KoppeltaalTaskRow, ResultsDocumentRow
from fhir_burnout.sync import Agent, KoppeltaalResults, enqueue
from fhir_burnout.workflow import partition

log = logging.getLogger(__name__)

#: The op (and outbox kind) of a results DocumentReference for one KT2_Task.
RESULTS_OP = KoppeltaalResults.OP
KT2_DOCUMENT_REFERENCE = "http://koppeltaal.nl/fhir/StructureDefinition/KT2DocumentReference"
RESOURCE_ORIGIN = "http://koppeltaal.nl/fhir/StructureDefinition/resource-origin"
LOINC = "http://loinc.org"
PROGRESS_NOTE = ("11506-3", "Progress note")
#: Answers that mean "this domain takes no DocumentReference from us": not retried.
REFUSED = frozenset({403, 404, 405, 422})
#: The document's title, as the care professional reads it in the portal (Dutch first).
TITLE = "Resultaten burn-outprogramma (Results of the burnout programme)"
#: Draft "Documenten Delen", "Bewaartermijn DocumentReference": 30 days from publication.
RETENTION = timedelta(days=30)

#: Renders the results document of a domain's KT2_Task, as the EHR gets it (Dutch HTML):
#: ``render(fhir_base, task_id)``. The web layer has the templates; the worker is handed one.
RenderResults = Callable[[str, str], str]


@dataclass(frozen=True)
class PublishedVersion:
    """One stored version of a results document, as the DocumentReference names it."""

    version_id: str
    sha1: str
    size: int
    published_at: datetime


def results_path(key: str, version: str) -> str:
    """The path of one version of the document under our base URL."""
    return f"/koppeltaal/results/{key}/{version}"


def results_url(base_url: str, key: str, version: str) -> str:
    """One version of the document: ``<base_url>/koppeltaal/results/<key>/<version>``."""
    return base_url.rstrip("/") + results_path(key, version)


def identifier_system(base_url: str) -> str:
    """The system of our DocumentReference identifiers (the value is the key)."""
    return base_url.rstrip("/") + "/koppeltaal/results"


def sha1_base64(data: bytes) -> str:
    """FHIR R4 ``Attachment.hash``: the base64 of the SHA-1 of the data."""
    return base64.b64encode(hashlib.sha1(data, usedforsecurity=False).digest()).decode("ascii")


def _instant(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="seconds")


def document_reference(
    *, key: str, task_id: str, patient: str, device: str, base_url: str, version: PublishedVersion
) -> dict[str, Any]:
    """The KT2_DocumentReference for ``version`` of the results of KT2_Task ``task_id`` (no
    id, no resource-origin: both are the server's). ``date``: when this version was
    published (the draft's anchor for the retention)."""
    return {
        "resourceType": "DocumentReference",
        "meta": {"profile": [KT2_DOCUMENT_REFERENCE]},
        "identifier": [{"system": identifier_system(base_url), "value": key}],
        "status": "current",
        "type": {
            "coding": [{"system": LOINC, "code": PROGRESS_NOTE[0], "display": PROGRESS_NOTE[1]}]
        },
        "subject": {"reference": patient, "type": "Patient"},
        "date": _instant(version.published_at),
        "author": [{"reference": device, "type": "Device"}],
        "content": [
            {
                "attachment": {
                    "contentType": "text/html",
                    "language": "nl-NL",
                    "url": results_url(base_url, key, version.version_id),
                    "size": version.size,
                    "hash": version.sha1,
                    "title": TITLE,
                    "creation": _instant(version.published_at),
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


def store_version(
    db: Session, fhir_base: str, task_id: str, html: str, now: datetime
) -> PublishedVersion:
    """The version of the document of KT2_Task ``task_id`` whose bytes are ``html``: the
    newest stored one when it has the same bytes and its retention runs, else a new one."""
    data = html.encode("utf-8")
    digest = sha1_base64(data)
    newest = db.scalar(
        select(ResultsDocumentRow)
        .where(
            ResultsDocumentRow.fhir_base == fhir_base,
            ResultsDocumentRow.task_id == task_id,
            ResultsDocumentRow.published_at >= now - RETENTION,
        )
        .order_by(ResultsDocumentRow.published_at.desc())
        .limit(1)
    )
    if newest is None or newest.sha1 != digest or newest.html != data:
        newest = ResultsDocumentRow(
            version_id=uuid.uuid4().hex, fhir_base=fhir_base, task_id=task_id, html=data,
            sha1=digest, size=len(data), published_at=now,
        )  # fmt: skip
        db.add(newest)
    return PublishedVersion(newest.version_id, newest.sha1, newest.size, newest.published_at)


def ours(client: FhirClient, base_url: str, key: str) -> list[dict[str, Any]]:
    """Our DocumentReferences for ``key`` on the domain (one, unless someone else made one)."""
    found = client.search(
        "DocumentReference", {"identifier": f"{identifier_system(base_url)}|{key}"}
    )
    return [d for d in found if d.get("resourceType") == "DocumentReference"]


def _put_or_post(
    client: FhirClient, resource: dict[str, Any], base_url: str, key: str
) -> tuple[dict[str, Any], str]:
    """POST ``resource`` when the domain has none for ``key``; PUT it over the one there when
    that points elsewhere (``If-Match``; its ``resource-origin`` sent back as the server set
    it); nothing when it already points at the same version. The stored resource and what
    was done."""
    found = ours(client, base_url, key)
    if not found:
        query = f"identifier={identifier_system(base_url)}|{key}"
        return client.create(resource, if_none_exist=query), "published"
    current = found[0]
    url = resource["content"][0]["attachment"]["url"]
    there = [c.get("attachment", {}).get("url") for c in current.get("content", []) or []]
    if there == [url]:
        return current, "already points at this version"
    new = {**resource, "id": current["id"]}
    origin = [e for e in current.get("extension", []) or [] if e.get("url") == RESOURCE_ORIGIN]
    if origin:
        new["extension"] = origin
    version = (current.get("meta") or {}).get("versionId")
    return client.update(new, version_id=version), "updated to a new version"


def send_results(
    client: FhirClient,
    op: KoppeltaalResults,
    *,
    engine: Engine,
    fhir_base: str,
    render: RenderResults,
    device: str,
    base_url: str,
    now: datetime | None = None,
) -> str:
    """Publish (or, ``op.removed``, remove) the DocumentReference of ``op``: render and store
    the version, then POST or PUT the DocumentReference that points at it; what became of
    it, for the entry's event. A refusal (:data:`REFUSED`) is said, not raised; any other
    error is raised for the worker (tried again, or a dead letter)."""
    if op.removed:
        return remove_results(client, op, base_url=base_url)
    fhir_base, now = fhir_base.rstrip("/"), now or datetime.now(UTC)
    html = render(fhir_base, op.task_id)
    with Session(engine) as db, db.begin():
        version = store_version(db, fhir_base, op.task_id, html, now)
    resource = document_reference(
        key=op.key, task_id=op.task_id, patient=op.patient, device=device,
        base_url=base_url, version=version,
    )  # fmt: skip
    try:
        stored, done = _put_or_post(client, resource, base_url, op.key)
    except FhirServerError as error:
        if error.status not in REFUSED:
            raise
        with Session(engine) as db, db.begin():  # sent nowhere: not kept either
            row = db.get(ResultsDocumentRow, version.version_id)
            if row is not None and row.document_reference is None:
                db.delete(row)
        log.info("the domain takes no DocumentReference (%s)", error.status)
        return (
            f"DocumentReference for Task/{op.task_id} not taken by the domain "
            f"({error.status}): results stay with us"
        )
    reference = f"DocumentReference/{stored.get('id', '?')}"
    with Session(engine) as db, db.begin():
        row = db.get(ResultsDocumentRow, version.version_id)
        if row is not None and stored.get("id"):
            row.document_reference = reference
    return f"{reference} for Task/{op.task_id}: {done}"


def remove_results(client: FhirClient, op: KoppeltaalResults, *, base_url: str) -> str:
    """DELETE our DocumentReference of ``op`` from the domain: its retention ended (the
    draft: the module that published it removes it; already gone is no error)."""
    try:
        found = ours(client, base_url, op.key)
    except FhirServerError as error:
        if error.status not in REFUSED:
            raise
        found = []
    for document in found:
        client.delete("DocumentReference", str(document["id"]))
    return f"{len(found)} DocumentReference(s) for Task/{op.task_id} removed: retention ended"
