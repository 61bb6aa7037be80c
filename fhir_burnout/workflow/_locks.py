"""Holding a Task for the rest of a transaction: locked (``SELECT … FOR UPDATE``) or read
earlier and changed by compare-and-set (``expect``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session, joinedload

from fhir_burnout.workflow._errors import NotFoundError
from fhir_burnout.workflow._tables import TaskRow


def _held(db: Session) -> dict[str, tuple[TaskRow, str | None]]:
    """The Tasks this transaction holds, by key: each with the status it was read at when
    it is held by compare-and-set (``expect``), None when it is locked."""
    transaction = db.get_transaction()
    if transaction is None:
        raise RuntimeError("a Task is held within a transaction")
    kept: tuple[Any, dict[str, tuple[TaskRow, str | None]]] | None = db.info.get("held_tasks")
    if kept is None or kept[0] is not transaction:  # a later transaction holds its own
        kept = (transaction, {})
        db.info["held_tasks"] = kept
    return kept[1]


def lock_task(db: Session, task_key: str) -> TaskRow | None:
    """The Task with its enrolment, locked for the rest of this transaction (SELECT … FOR
    UPDATE, in one statement), or None. Changes made through this module in the same
    transaction use the lock instead of taking it again."""
    if db.get_transaction() is not None and (found := _held(db).get(task_key)) is not None:
        return found[0]
    task = db.get(
        TaskRow,
        task_key,
        options=[joinedload(TaskRow.enrolment, innerjoin=True)],
        with_for_update={"of": TaskRow},
    )
    if task is not None:
        adopt_lock(db, task)
    return task


def adopt_lock(db: Session, task: TaskRow) -> None:
    """Register a Task the caller locked itself, in the current transaction, together with
    other rows it needed (``SELECT … FOR UPDATE OF task``, its enrolment loaded): changes
    made through this module in the same transaction then use that lock."""
    _held(db)[task.key] = (task, None)


def expect(db: Session, task: TaskRow) -> TaskRow:
    """A Task read earlier (its enrolment loaded, in a session now closed, without a lock),
    to change in this transaction only if its status is still the one read: its change is
    one ``UPDATE … WHERE status = <read>`` instead of a locking read first, and raises
    TaskChangedError when someone changed the Task meanwhile (the caller's transaction
    then keeps nothing). The work between the read and the write (checking a form, say)
    holds no lock: on SQLite the database's one write lock is held for the writes alone.
    Returns the Task as this session's object."""
    merged = db.merge(task, load=False)  # no query: it is as it was read
    _held(db)[merged.key] = (merged, task.status)
    return merged


def _task(db: Session, task_key: str) -> TaskRow:
    task = lock_task(db, task_key)
    if task is None:
        raise NotFoundError(f"there is no Task {task_key}")
    return task
