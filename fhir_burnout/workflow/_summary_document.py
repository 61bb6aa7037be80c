"""The session summary in the EHR: one DocumentReference, when the care professional asks
for it ("Samenvatting naar het dossier") and the practice has switched it on
(``summary_to_ehr`` per ``[[ehr]]``).

**DocumentReference, not Composition.** FHIR R4 defines a Composition as the structure of
a *FHIR document*, and says a Composition alone is not one: it must be the first entry of a
Bundle of type ``document`` that also holds every resource it references (R4
``composition.html``, "Scope and Usage"; ``documents.html``). An EHR that stores what an
app sends keeps resources, not document Bundles, and shows a Composition, if at all, as
structure without its narrative's context. A DocumentReference is R4's resource for "a
document of any kind ... clinical notes" with the metadata to find it (subject, type,
author, date, period) and the content itself, inline as base64 ``data`` or by URL (R4
``documentreference.html``); EHRs list such notes in the chart (US Core's clinical notes
are DocumentReferences, as is Koppeltaal's draft "Documenten Delen", which the app already
writes for KT2 domains: ``koppeltaal/_results.py``). So the summary goes as one
DocumentReference with the page's summary as self-contained HTML in its attachment.

- ``type`` LOINC 11506-3 "Progress note" (the same coding as the Koppeltaal results
  document), ``status`` current, ``docStatus`` final: a snapshot, never updated afterwards;
  asking again makes a new one (a new moment, a new snapshot).
- ``subject`` the Patient, ``author`` the care professional who asked, ``custodian`` the
  practice, ``date`` when it was made.
- ``context.period`` the summary's period (since -> until), ``context.related`` the
  CarePlan of the client's programme.
- ``content.attachment``: ``contentType`` text/html, ``language`` the page's, ``data`` the
  HTML (base64), ``hash`` (base64 SHA-1, R4 Attachment) and ``size``, a ``title``.

Queued through the outbox like every write (``queue_writes``: in the patient's partition,
with a Provenance naming the care professional on behalf of the practice), conditional on
its write key: a retry never makes two.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import datetime

from sqlalchemy.orm import Session

from fhir_burnout.sync import Create, key_identifier, key_reference
from fhir_burnout.workflow._errors import NotFoundError
from fhir_burnout.workflow._outbox import _now, queue_writes
from fhir_burnout.workflow._tables import EnrolmentRow

LOINC = "http://loinc.org"
PROGRESS_NOTE = ("11506-3", "Progress note")
#: The outbox kind of the summary's write.
SUMMARY_KIND = "session-summary"


def queue_summary_document(
    db: Session,
    enrolment_key: str,
    *,
    html: str,
    title: str,
    lang: str,
    since: datetime,
    until: datetime,
    by: str,
    now: datetime | None = None,
) -> str:
    """Queue the summary (``html``, a whole document) for the EHR as a DocumentReference
    about the enrolment's client, in the caller's transaction; its write key."""
    now = _now(now)
    enrolment = db.get(EnrolmentRow, enrolment_key)
    if enrolment is None:
        raise NotFoundError(f"there is no enrolment {enrolment_key}")
    key = str(uuid.uuid4())
    body = html.encode("utf-8")
    attachment = {
        "contentType": "text/html",
        "language": lang,
        "data": base64.b64encode(body).decode("ascii"),
        "size": len(body),
        # R4 Attachment.hash: the base64 of the SHA-1 of the data (not for security).
        "hash": base64.b64encode(hashlib.sha1(body, usedforsecurity=False).digest()).decode(),
        "title": title,
        "creation": now.isoformat(timespec="seconds"),
    }
    document = {
        "resourceType": "DocumentReference",
        "identifier": [key_identifier(key)],
        "status": "current",
        "docStatus": "final",
        "type": {
            "coding": [{"system": LOINC, "code": PROGRESS_NOTE[0], "display": PROGRESS_NOTE[1]}],
            "text": title,
        },
        "subject": {"reference": f"Patient/{enrolment.patient}"},
        "date": now.isoformat(timespec="seconds"),
        "description": title,
        "content": [{"attachment": attachment}],
        "context": {
            "period": {
                "start": since.isoformat(timespec="seconds"),
                "end": until.isoformat(timespec="seconds"),
            },
            "related": [key_reference(enrolment.key)],
        },
    }
    if by.startswith(("Practitioner/", "PractitionerRole/")):
        document["author"] = [{"reference": by}]
    if enrolment.practice:
        document["custodian"] = {"reference": enrolment.practice}
    queue_writes(db, enrolment, SUMMARY_KIND, [Create(key, document)], by, now=now)
    return key
