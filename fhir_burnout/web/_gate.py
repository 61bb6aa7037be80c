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

There is no "client of this launch" decorator: a client's views find their task inside the
transaction that changes it, and answer 404 for a task that is not theirs; checking first in
a decorator would read it twice, outside that transaction, and could answer before the
CSRF/404 order the pages have today.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Concatenate, ParamSpec, TypeVar, overload

import requests
from flask import Flask, Response, session

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
    practitioner_reference,
)
from fhir_burnout.web._machine import Caller, machine_caller
from fhir_burnout.web._outcomes import outcome_response
from fhir_burnout.web._render import message_page
from fhir_burnout.web._sessions import LaunchSessionRow

__all__ = [
    "GATE",
    "CareProfessional",
    "backend_caller",
    "care_professional",
    "configured_practice",
    "init_app",
    "koppeltaal_domain",
]

#: The attribute a gate decorator sets on its view: ("care_professional", of_practice) or
#: ("backend_caller", resource type, permissions).
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
