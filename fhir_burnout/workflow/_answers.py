"""The client's answers: a completed QuestionnaireResponse (with its safety signals), a
reflection kept beside a Task, and the draft saved while typing.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, select
from sqlalchemy.orm import Session

from fhir_burnout.questionnaire import Signal
from fhir_burnout.sync import Create, key_identifier, key_reference
from fhir_burnout.workflow._changes import _change
from fhir_burnout.workflow._definitions import Definitions
from fhir_burnout.workflow._errors import NotFoundError
from fhir_burnout.workflow._locks import _task
from fhir_burnout.workflow._outbox import _now, _response_output, queue_writes
from fhir_burnout.workflow._practitioner_tasks import _safety_review, _signal_task
from fhir_burnout.workflow._tables import DraftRow, ResponseRow, TaskRow


def _keep_response(
    db: Session,
    task: TaskRow,
    response: Mapping[str, Any],
    key: str,
    *,
    who: str,
    scores: Sequence[Mapping[str, Any]],
    now: datetime,
) -> dict[str, Any]:
    """Store a response about ``task`` (one INSERT, no object to track) and return the
    resource the EHR gets: with its write key, ``basedOn`` the CarePlan, subject, author and
    time filled in."""
    enrolment = task.enrolment
    resource = dict(response)  # a copy at the top, where the keys below are set
    resource["identifier"] = key_identifier(key)  # QuestionnaireResponse.identifier is 0..1
    resource["basedOn"] = [key_reference(enrolment.key)]
    resource.setdefault("subject", {"reference": f"Patient/{enrolment.patient}"})
    resource.setdefault("author", {"reference": who})
    resource.setdefault("authored", now.isoformat(timespec="seconds"))
    row = {
        "key": key,
        "task_key": task.key,
        "enrolment_key": enrolment.key,
        "questionnaire": str(resource.get("questionnaire", task.definition)),
        "status": str(resource.get("status", "completed")),
        "resource": json.dumps(resource, ensure_ascii=False),
        "scores": json.dumps(list(scores), ensure_ascii=False),
        "authored": now,
    }
    db.execute(_KEEP_RESPONSE, row)
    return resource


_DRAFT_TABLE = DraftRow.metadata.tables[DraftRow.__tablename__]


_DELETE_DRAFT = delete(_DRAFT_TABLE).where(_DRAFT_TABLE.c.task_key == bindparam("task"))


#: Built once (a Core INSERT: a response is written once and read back only as rows).
_KEEP_RESPONSE = insert(ResponseRow.metadata.tables[ResponseRow.__tablename__])


def submit_response(
    db: Session,
    definitions: Definitions,
    task_key: str,
    response: Mapping[str, Any],
    *,
    who: str,
    scores: Sequence[Mapping[str, Any]] = (),
    safety_signal: bool = False,
    signals: Sequence[Signal] = (),
    safety_owner: str | None = None,
    now: datetime | None = None,
) -> str:
    """Keep a completed QuestionnaireResponse and complete its Task: the response, the Task
    and their Provenance reach the EHR together, in one transaction. Each safety signal of
    the response (``signals``, from the safety rules) gives one Task for the client's care
    professional, else ``safety_owner``, with its priority; ``safety_signal`` without
    ``signals`` gives one urgent Task. A response is kept once (its Task completes), so a
    retry or a second submit makes no second Task. Returns the response's key."""
    now = _now(now)
    task = _task(db, task_key)
    key = str(uuid.uuid4())
    resource = _keep_response(db, task, response, key, who=who, scores=scores, now=now)
    # Sent: the draft goes (one statement, whether or not there was one).
    db.execute(_DELETE_DRAFT, {"task": task.key})
    output = [_response_output(key)]
    extra = [Create(key, resource)]
    for signal in signals:
        extra.append(
            _signal_task(db, task, signal, about=key, response=key, owner=safety_owner, now=now)
        )
    if safety_signal and not signals:
        extra.append(
            _safety_review(db, task, action_id=f"safety:{key}", reason=key, now=now,
                           owner=safety_owner)
        )  # fmt: skip
    _change(
        db,
        definitions,
        task.key,
        "completed",
        actor="client" if who.startswith("Patient/") else "practitioner",
        who=who,
        output=output,
        output_key=key,
        extra=extra,
        now=now,
    )
    return key


def add_response(
    db: Session,
    task_key: str,
    response: Mapping[str, Any],
    *,
    who: str,
    key: str | None = None,
    now: datetime | None = None,
) -> str:
    """Keep a QuestionnaireResponse about a Task without changing the Task (the reflection
    after an exercise of a module) and queue it for the EHR with its Provenance; returns
    its key. ``key`` makes it idempotent: a second call with the same key keeps nothing
    new."""
    now = _now(now)
    task = _task(db, task_key)
    key = key or str(uuid.uuid4())
    owner = db.scalar(select(ResponseRow.task_key).where(ResponseRow.key == key))
    if owner is not None:
        if owner != task.key:
            raise NotFoundError(f"response {key} belongs to another Task")
        return key
    resource = _keep_response(db, task, response, key, who=who, scores=(), now=now)
    create = Create(key, resource)
    queue_writes(db, task.enrolment, "response", [create], who, now=now)
    return key


def save_draft(
    db: Session, task_key: str, answers: Mapping[str, Any], *, now: datetime | None = None
) -> None:
    """Keep what the client typed so far; nothing goes to the EHR until they submit."""
    task = _task(db, task_key)
    draft = db.get(DraftRow, task.key)
    if draft is None:
        draft = DraftRow(task_key=task.key)
        db.add(draft)
    draft.answers = json.dumps(dict(answers), ensure_ascii=False)
    draft.updated_at = _now(now)


def load_draft(db: Session, task_key: str) -> dict[str, Any] | None:
    """The answers saved for a Task, if any."""
    draft = db.get(DraftRow, task_key)
    return None if draft is None else dict(json.loads(draft.answers))
