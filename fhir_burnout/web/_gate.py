"""The web gate: what every page of the app answers the same way, in one place instead of
in each view (docs/architecture.md, "web").

A launch session that ended (its authorisation refused, or older than ``SESSION_MAX``) and a
form that names another client than its launch's are signals raised anywhere below a view
(``web._launch``); their pages are the handlers here, so a view only says what it does.
A view that answers them otherwise (a draft kept when the session ended) still catches them.

Who may call a view is said by its decorator, and the decorator hands the view who that is:
:func:`care_professional` (a care professional's launch, optionally of the practice) and
:func:`backend_caller` (a machine with a ``system/`` scope). Each sets :data:`GATE` on the
view, so a test walks the URL map and finds any page that forgot its gate.

A client's own records are reached through :func:`client_of_launch`: the view gets
:class:`ClientRecords`, the one way to a Task of the launch's client. The decorator does not
read anything before the view: a view finds its Task with ``records.task(db, key)`` inside
the transaction that changes it (with its session, in one statement, locked when it
changes it), and answers 404 for a Task that is not the client's; checking first would
read it twice, outside that transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import wraps
from typing import Any, Concatenate, NamedTuple, ParamSpec, TypeVar, overload

import requests
from flask import Flask, Response, g, session
from sqlalchemy import Connection, bindparam, select
from sqlalchemy.orm import Session, contains_eager, joinedload

from fhir_burnout.errors import ContentError, FhirServerError
from fhir_burnout.fhir import FhirClient
from fhir_burnout.smart_launch import AccessTokenError, InsufficientScopeError
from fhir_burnout.web._bearer import UnknownCallerError, challenge
from fhir_burnout.web._context import app_context
from fhir_burnout.web._launch import (
    EhrUnavailable,
    SessionExpired,
    WrongClient,
    check_acting_for,
    current_launch,
    current_session,
    current_sid,
    practitioner_reference,
)
from fhir_burnout.web._machine import Caller, machine_caller
from fhir_burnout.web._outcomes import outcome_response
from fhir_burnout.web._render import message_page
from fhir_burnout.web._sessions import LaunchSessionRow
from fhir_burnout.workflow import EnrolmentRow, TaskRow, adopt_lock, lock_task

__all__ = [
    "GATE",
    "CareProfessional",
    "ClientRecords",
    "EnrolmentSeen",
    "OwnTask",
    "SeenTask",
    "TaskSeen",
    "backend_caller",
    "care_professional",
    "client_of_launch",
    "configured_practice",
    "init_app",
    "koppeltaal_domain",
]

#: The attribute a gate decorator sets on its view: ("care_professional", of_practice),
#: ("client_of_launch",) or ("backend_caller", resource type, permissions).
GATE = "fhir_burnout_gate"

P = ParamSpec("P")
R = TypeVar("R")
#: A readable refusal page and its status.
Page = tuple[str, int]


def _session_expired(_exc: SessionExpired) -> Page:
    return message_page("error_expired", 401)


def _wrong_client(_exc: WrongClient) -> Page:
    return message_page("error_wrong_client", 409)


def init_app(app: Flask) -> None:
    """The pages for the web layer's signals on ``app``."""
    app.register_error_handler(SessionExpired, _session_expired)
    app.register_error_handler(WrongClient, _wrong_client)


# --- a care professional (of the practice) ---------------------------------------------


@dataclass(frozen=True)
class CareProfessional:
    """The signed-in care professional, the chart they launched from, and the practice
    configured for its EHR (checked to be theirs only behind ``of_practice=True``)."""

    session: LaunchSessionRow
    by: str  # Practitioner/<id>: who decides, for the Provenance
    practice: str | None


def configured_practice(fhir_base: str) -> str | None:
    """The practice (Organization reference) configured for this EHR, if any."""
    try:
        return app_context().settings.ehr(fhir_base).practice
    except ContentError:
        return None


def koppeltaal_domain(fhir_base: str) -> bool:
    """Whether this EHR is a Koppeltaal domain (``mode = "koppeltaal"``)."""
    wanted = fhir_base.rstrip("/")
    return any(
        e.fhir_base == wanted and e.mode == "koppeltaal" for e in app_context().settings.ehrs
    )


def _signed_in() -> CareProfessional | Page:
    """The signed-in care professional, or the readable page that says why not."""
    row = current_session()  # an ended session: the handler above
    if row is None:
        return message_page("error_signed_out", 401)
    by = practitioner_reference(row.fhir_user)
    if row.role != "practitioner" or by is None:
        return message_page("error_practitioners_only", 403)
    check_acting_for(row)
    return CareProfessional(row, by, configured_practice(row.fhir_base))


def _member_of(found: CareProfessional, practice: str) -> bool:
    """Whether the EHR has an active PractitionerRole of this care professional at the
    practice: asked once per session, with their own access token."""
    row = found.session
    kept = session.get("practice_member")
    if isinstance(kept, list) and kept[:2] == [row.id, practice]:
        return bool(kept[2])
    fresh = current_launch()
    if fresh is None:
        return False
    params = {"practitioner": found.by, "organization": practice, "active": "true"}
    with FhirClient(row.fhir_base, token=fresh[1], session=requests.Session()) as client:
        roles = list(client.search("PractitionerRole", params))
    # Checked here too: a server may ignore a search parameter it does not know.
    member = any(
        role.get("active", True) is True
        and practitioner_reference(role.get("practitioner", {}).get("reference")) == found.by
        and str(role.get("organization", {}).get("reference", "")).endswith(practice)
        for role in roles
    )
    session["practice_member"] = [row.id, practice, member]
    return member


def _not_of_practice(found: CareProfessional) -> Page | None:
    """The readable page that keeps someone out of the practice's pages, or None."""
    if not koppeltaal_domain(found.session.fhir_base):
        return _not_a_member(found)
    # A Koppeltaal domain is the practice: its auth service signed this care professional
    # in (the id_token was verified at the launch), and there is no user token to read
    # their roles with (the domain gives "NOOP").
    if found.by.startswith("Practitioner/"):
        return None
    return message_page("error_not_this_practice", 403)


def _not_a_member(found: CareProfessional) -> Page | None:
    """The page for someone the EHR does not list at the configured practice, or None."""
    if found.practice is None:
        return message_page("error_not_this_practice", 403)
    try:
        member = _member_of(found, found.practice)
    except FhirServerError as exc:
        if exc.status in (401, 403):  # the EHR lets this person not even see their roles
            return message_page("error_not_this_practice", 403)
        return message_page("error_practice_unchecked", 503)
    except EhrUnavailable:
        return message_page("error_practice_unchecked", 503)
    return None if member else message_page("error_not_this_practice", 403)


ProView = Callable[Concatenate[CareProfessional, P], R]


@overload
def care_professional(view: ProView[P, R], /) -> Callable[P, R | Page]: ...


@overload
def care_professional(
    *, of_practice: bool = False
) -> Callable[[ProView[P, R]], Callable[P, R | Page]]: ...


def care_professional(
    view: ProView[P, R] | None = None, /, *, of_practice: bool = False
) -> Callable[P, R | Page] | Callable[[ProView[P, R]], Callable[P, R | Page]]:
    """Only for a session a care professional launched (``role == "practitioner"``), and
    with ``of_practice`` only for the practice's own (an active PractitionerRole there, or
    a Koppeltaal domain's); the view gets them first, anyone else a readable 401/403/503."""

    def decorate(view: ProView[P, R]) -> Callable[P, R | Page]:
        @wraps(view)
        def gated(*args: P.args, **kwargs: P.kwargs) -> R | Page:
            found = _signed_in()
            if not isinstance(found, CareProfessional):
                return found
            refused = _not_of_practice(found) if of_practice else None
            return refused if refused is not None else view(found, *args, **kwargs)

        setattr(gated, GATE, ("care_professional", of_practice))
        return gated

    return decorate if view is None else decorate(view)


# --- a backend caller with a scope -------------------------------------------------------


def backend_caller(
    resource_type: str, permissions: str, *, no_store: bool = False
) -> Callable[[Callable[Concatenate[Caller, P], Response]], Callable[P, Response]]:
    """Only for a machine caller the practice named, with a ``system/`` token for us that
    allows ``permissions`` (c, r, u, d, s) on ``resource_type`` (web/_machine.py); the view
    gets the caller first, anyone else an OperationOutcome with the RFC 6750 §3 challenge
    (``no_store``: with ``Cache-Control: no-store``, as the endpoint's other answers)."""

    def decorate(view: Callable[Concatenate[Caller, P], Response]) -> Callable[P, Response]:
        @wraps(view)
        def gated(*args: P.args, **kwargs: P.kwargs) -> Response:
            try:
                caller = machine_caller(app_context(), resource_type, permissions)
            except (AccessTokenError, InsufficientScopeError, UnknownCallerError) as error:
                response = outcome_response(error, *challenge(error))
                if no_store:
                    response.headers["Cache-Control"] = "no-store"
                return response
            return view(caller, *args, **kwargs)

        setattr(gated, GATE, ("backend_caller", resource_type, permissions))
        return gated

    return decorate


# --- a client of this launch -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EnrolmentSeen:
    """What a page that only shows a Task reads of its enrolment (:meth:`ClientRecords.read`)."""

    key: str
    fhir_base: str
    patient: str
    track: str
    status: str


@dataclass(frozen=True, slots=True)
class TaskSeen:
    """What a page that only shows a Task reads of it: plain values, read without the ORM
    (for the pages a client opens most, a module's screens, that was a sixth of the page's
    cost). A page that changes the Task reads it with :meth:`ClientRecords.task`."""

    key: str
    enrolment_key: str
    kind: str
    definition: str
    status: str
    place: int | None
    enrolment: EnrolmentSeen


class SeenTask(NamedTuple):
    """A Task of the launch's client as a page shows it, and who looks (see :class:`OwnTask`)."""

    task: TaskSeen
    who: str


class OwnTask(NamedTuple):
    """A Task of the launch's client and who acts on it: ``Patient/..`` (the client), or
    the ``Practitioner/..`` who launched from the client's chart (who fills in a
    questionnaire *with* the client, and is recorded as its author)."""

    task: TaskRow
    who: str


#: The session and the Task with its enrolment in one statement, built once with the Task's
#: key and the session id as parameters: building it anew for each request cost more than
#: running it.
_SESSION_AND_TASK = (
    select(LaunchSessionRow, TaskRow)
    .select_from(LaunchSessionRow)
    .join(TaskRow, TaskRow.key == bindparam("key"))  # one row each: joined on their keys
    .join(TaskRow.enrolment)
    .options(contains_eager(TaskRow.enrolment))
    .where(LaunchSessionRow.id == bindparam("sid"))
)
_SESSION_AND_TASK_LOCKED = _SESSION_AND_TASK.with_for_update(of=TaskRow)


_SEEN_COLUMNS = (
    TaskRow.key,
    TaskRow.enrolment_key,
    TaskRow.kind,
    TaskRow.definition,
    TaskRow.status,
    TaskRow.place,
    EnrolmentRow.fhir_base,
    EnrolmentRow.patient,
    EnrolmentRow.track,
    EnrolmentRow.status.label("enrolment_status"),
)
#: A Task as a page shows it, with its enrolment; and with the session, in one statement.
_TASK_SEEN = (
    select(*_SEEN_COLUMNS)
    .join(EnrolmentRow, EnrolmentRow.key == TaskRow.enrolment_key)
    .where(TaskRow.key == bindparam("key"))
)
_SESSION_COLUMNS = tuple(LaunchSessionRow.__table__.c)
_SESSION_AND_TASK_SEEN = (
    select(*_SESSION_COLUMNS, *_SEEN_COLUMNS)
    .select_from(LaunchSessionRow)
    .join(TaskRow, TaskRow.key == bindparam("key"))
    .join(EnrolmentRow, EnrolmentRow.key == TaskRow.enrolment_key)
    .where(LaunchSessionRow.id == bindparam("sid"))
)


def _seen(values: Sequence[Any]) -> TaskSeen:
    """A :class:`TaskSeen` from the values of ``_SEEN_COLUMNS``, in their order."""
    key, enrolment_key, kind, definition, status, place, *enrolment = values
    fhir_base, patient, track, enrolment_status = enrolment
    seen = EnrolmentSeen(enrolment_key, fhir_base, patient, track, enrolment_status)
    return TaskSeen(key, enrolment_key, kind, definition, status, place, seen)


def _session_and_task_seen(connection: Connection, key: str) -> TaskSeen | None:
    """As :func:`_session_and_task`, for a page that only shows the Task: the session is kept
    for ``current_session`` (a LaunchSessionRow of its values, in no database session)."""
    sid = current_sid()
    if not sid:
        return None
    if "launch_session" in g:
        found = connection.execute(_TASK_SEEN, {"key": key}).first()
        return _seen(found) if found is not None else None
    found = connection.execute(_SESSION_AND_TASK_SEEN, {"key": key, "sid": sid}).first()
    if found is None:
        return None  # either is missing: current_session finds out which
    values = zip(_SESSION_COLUMNS, found[: len(_SESSION_COLUMNS)], strict=True)
    g.launch_session = LaunchSessionRow(**{column.key: value for column, value in values})
    return _seen(found[len(_SESSION_COLUMNS) :])


def _session_and_task(db: Session, key: str, *, lock: bool) -> TaskRow | None:
    """The signed-in session (kept for ``current_session``) and the Task, in one statement
    when the session was not read yet this request; ``lock``: the Task is locked for the
    rest of the transaction, as ``workflow.lock_task`` would."""
    sid = current_sid()
    if not sid or "launch_session" in g:
        return None
    query = _SESSION_AND_TASK_LOCKED if lock else _SESSION_AND_TASK
    found = db.execute(query, {"key": key, "sid": sid}).first()
    if found is None:
        return None  # either is missing: current_session finds out which
    row, task = found
    db.expunge(row)  # readable after the transaction, like SessionStore.get's
    g.launch_session = row
    if lock:
        adopt_lock(db, task)
    return task


class ClientRecords:
    """What a view behind :func:`client_of_launch` reaches the client's records with."""

    def task(
        self,
        db: Session,
        key: str,
        *,
        kinds: tuple[str, ...] | None = None,
        lock: bool = False,
        allow_ended: bool = False,
    ) -> OwnTask | None:
        """Task ``key`` if it belongs to the launch's client (and is one of ``kinds``),
        read in ``db``'s transaction (``lock``: locked for it); None for anyone else's,
        so the view answers "not found" (never "forbidden", which would say it exists).
        ``allow_ended``: also for a session that just ended (a draft kept after it)."""
        task = _session_and_task(db, key, lock=lock)
        row = current_session(allow_ended=allow_ended, db=db)
        if row is None:
            return None
        if task is None and lock:
            task = lock_task(db, key)  # the Task with its enrolment, locked, in one statement
        elif task is None:
            task = db.get(TaskRow, key, options=[joinedload(TaskRow.enrolment)])
        if task is None:
            return None
        who = _whose(row, task.kind, task.enrolment.fhir_base, task.enrolment.patient, kinds)
        return OwnTask(task, who) if who else None

    def read(self, connection: Connection, key: str, *, kinds: tuple[str, ...]) -> SeenTask | None:
        """Task ``key`` as :meth:`task` finds it, for a page that only shows it: its values
        (:class:`TaskSeen`), not a row to change; on a plain ``connection`` (no ORM
        session: a page that only shows needs none)."""
        task = _session_and_task_seen(connection, key)
        row = current_session()  # read with the Task above (else on its own: not found)
        if row is None or task is None:
            return None
        who = _whose(row, task.kind, task.enrolment.fhir_base, task.enrolment.patient, kinds)
        return SeenTask(task, who) if who else None

    def client(self) -> LaunchSessionRow | None:
        """The launch's session if it has a client (a client's own, or a care
        professional's from the client's chart); None: nobody's records to show."""
        row = current_session()  # an ended session: the handler above
        return row if row is not None and row.patient else None


def _whose(
    row: LaunchSessionRow,
    kind: str,
    fhir_base: str,
    patient: str,
    kinds: tuple[str, ...] | None,
) -> str | None:
    """Who acts on a Task (of ``kind``, for ``patient`` at ``fhir_base``) in the launch of
    ``row``: the client, or the care professional who launched from their chart; None when
    it is not the launch's client's (or not one of ``kinds``)."""
    if not row.patient or (kinds is not None and kind not in kinds):
        return None
    if fhir_base != row.fhir_base.rstrip("/") or patient != row.patient:
        return None
    check_acting_for(row)
    if row.role == "practitioner":
        return practitioner_reference(row.fhir_user)
    return f"Patient/{row.patient}"


_RECORDS = ClientRecords()


def client_of_launch(view: Callable[Concatenate[ClientRecords, P], R]) -> Callable[P, R]:
    """Views of the launch's client's own records (``/task/..``, ``/progress``): the view
    gets :class:`ClientRecords` first, the one way to a Task of that client."""

    @wraps(view)
    def gated(*args: P.args, **kwargs: P.kwargs) -> R:
        return view(_RECORDS, *args, **kwargs)

    setattr(gated, GATE, ("client_of_launch",))
    return gated
