"""Where a client is in a module: the screen they were last on, so that reopening the
module returns there (issue 20). Local only: the EHR sees the Task's status, not this."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from fhir_burnout.workflow._tables import TaskRow


def remember_place(db: Session, task_key: str, place: int | None) -> None:
    """Keep ``place`` (a screen, from 1; None: the start) as the module Task's place, in
    one statement; its status, its time of change and the outbox stay as they are."""
    db.execute(
        update(TaskRow)
        .where(TaskRow.key == task_key, TaskRow.kind == "module")
        .values(place=place)
        .execution_options(synchronize_session=False)
    )
