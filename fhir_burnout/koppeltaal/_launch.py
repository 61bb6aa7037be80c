"""The Koppeltaal launch (TOP-KT-007): an HTI 2.0 token as the ``launch`` of a SMART App Launch.

A portal form-POSTs ``launch`` (the HTI token) and ``iss`` (the domain's FHIR base) to our
Endpoint address. A module cannot check the HTI token itself (apps never get each other's
keys), and one that handles personal data may not take the introspection shortcut either:
it runs the SMART App Launch with the token as ``launch`` (``scope=launch openid fhirUser``,
PKCE S256, ``aud`` = iss), so the domain's authorization service checks the token and signs
the person in. The token response carries an ``access_token`` of ``NOOP`` (worthless: it is
never used) and the launch context ``resource`` (the Task), ``definition``, ``patient`` and
``sub``. The Task, Patient and ActivityDefinition are then read with the module's own
backend-services token, and the launch is refused when they do not fit together
(KT2_Task notes: the ``view`` subtask rule; a definition that is not ours).

Errors (all :class:`~fhir_burnout.smart_launch.LaunchError`, so the web layer treats them
as any refused launch)::

    LaunchError
    └── KoppeltaalLaunchError            outcome 4 (expected) or 8 (unexpected)
        ├── LaunchContextError           the token response lacks the launch context
        ├── RelatedPersonLaunchError     a RelatedPerson (a naaste) launched: not supported
        ├── ReplayedLaunchError          the HTI token's jti was used before (_replay.py)
        ├── ForeignTaskError             the Task is not the launch patient's
        └── ForeignDefinitionError       the ActivityDefinition is not one we published

The id_token's ``nonce`` is not compared on a Koppeltaal domain by default: the reference
auth service puts a fresh one of its own in every id_token (``settings.Ehr.nonce_echoed``,
``id_token_nonce``). A replayed launch is stopped by ``state`` (one-time, bound to the
browser), PKCE, and the HTI token's ``jti``, which the module takes once (``_replay.py``).

This module knows no web framework and stores nothing; the web layer keeps the
:class:`~fhir_burnout.smart_launch.PendingLaunch` bound to the browser.
"""

from __future__ import annotations

import json
import re
from base64 import urlsafe_b64decode
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from fhir_burnout.koppeltaal._backend import DEFAULT_ALGORITHM
from fhir_burnout.koppeltaal._enrol import (
    KoppeltaalTaskError,
    check_view_rule,
    instantiates,
    is_view,
    publisher_id,
)
from fhir_burnout.settings import Ehr
from fhir_burnout.smart_launch import (
    CodeExchange,
    DiscoveryError,
    LaunchError,
    PendingLaunch,
    Signing,
    SmartConfiguration,
    UntrustedIssuerError,
    authorization_request,
    exchange_code,
    trusted_ehr,
)

#: TOP-KT-007: the module asks for exactly this; Koppeltaal grants no user-level FHIR access.
SCOPE = "launch openid fhirUser"
#: Set by the domain's FHIR server on every resource: the Device that created it (IG
#: extensions/KT2_ResourceOrigin.fsh).
RESOURCE_ORIGIN = "http://koppeltaal.nl/fhir/StructureDefinition/resource-origin"
#: A FHIR ``id`` (the AuditEvent's trace-id extension is a valueId).
_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")

Role = Literal["patient", "practitioner"]


class KoppeltaalLaunchError(LaunchError):
    """A Koppeltaal launch refused after the authorization service let it through.

    ``audit_outcome`` is the AuditEvent outcome of TOP-KT-012b/c: 4 for what the launcher or the
    data caused (expected), 8 for what should not happen (unexpected). The message is for
    the audit trail and logs; it holds ids, never tokens or health data."""

    audit_outcome = "4"

    def __init__(self, message: str, *, task: str | None = None) -> None:
        super().__init__(message)
        #: the launch's Task (``Task/<id>``) when known: the refusal's AuditEvent names it
        self.task = task


class LaunchContextError(KoppeltaalLaunchError):
    """The token response does not carry a usable Koppeltaal launch context."""

    audit_outcome = "8"  # the authorization service should never answer so


class RelatedPersonLaunchError(KoppeltaalLaunchError):
    """A RelatedPerson (TOP-KT-007, TOP-KT-026: a client's naaste) launched: the programme is
    for the client and their care professional only, so the launch is refused, readably."""


class ReplayedLaunchError(KoppeltaalLaunchError):
    """The HTI token's ``jti`` was taken by an earlier launch while the token is still valid."""


class ForeignTaskError(KoppeltaalLaunchError):
    """The Task is not for the launch patient, or a ``view`` subtask is not part of a Task of
    the same patient (KT2_Task notes)."""


class ForeignDefinitionError(KoppeltaalLaunchError):
    """The Task's ActivityDefinition is not one we published (KT2PublisherId, origin)."""


class FhirReader(Protocol):
    """What the launch needs of a FHIR client: one read (``FhirClient`` has it)."""

    def read(self, resource_type: str, resource_id: str) -> dict[str, Any]: ...


def koppeltaal_ehr(iss: str, ehrs: Sequence[Ehr]) -> Ehr:
    """The configured Koppeltaal domain whose FHIR base is exactly ``iss``; a SMART-mode EHR
    or an unknown one is refused (:class:`UntrustedIssuerError`)."""
    ehr = trusted_ehr(iss, ehrs)
    if ehr.mode != "koppeltaal":
        raise UntrustedIssuerError("this EHR is not connected to the programme by Koppeltaal")
    return ehr


@dataclass(frozen=True)
class HtiToken:
    """What the module reads of an HTI token, WITHOUT checking its signature (apps never get
    each other's keys): its ``jti``, ``exp`` and ``iss``, None where absent or of the wrong
    type. They are believed only after the code exchange, once the authorization service has
    checked the token we handed it as ``launch`` (``_replay.take_launch_token``)."""

    jti: str | None = None
    exp: float | None = None
    iss: str | None = None

    @classmethod
    def read(cls, launch: str) -> HtiToken:
        """The claims of the HTI token ``launch``; all None when it is no JWT."""
        try:
            segment = launch.split(".")[1]
            claims = json.loads(urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
        except (IndexError, ValueError):
            claims = None
        if not isinstance(claims, dict):
            return cls()
        jti, exp, iss = claims.get("jti"), claims.get("exp"), claims.get("iss")
        return cls(
            jti=jti if isinstance(jti, str) and jti else None,
            exp=float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None,
            iss=iss if isinstance(iss, str) else None,
        )


def hti_trace_id(launch: str) -> str | None:
    """The ``jti`` of an HTI token (read unchecked): TOP-KT-012c makes it the trace id of the
    launch's AuditEvents. None when there is none that is a FHIR id."""
    jti = HtiToken.read(launch).jti
    return jti if jti is not None and _FHIR_ID.fullmatch(jti) else None


def hti_launcher(launch: str) -> str | None:
    """The launching app's client id (the HTI token's ``iss``, its Device id; HTI 2.0), read
    WITHOUT checking the signature: the launch AuditEvent's second agent, the Application
    Launcher, and nothing else. None when there is no usable one."""
    iss = HtiToken.read(launch).iss
    return iss if iss is not None and _FHIR_ID.fullmatch(iss) else None


def begin_hti_launch(
    ehr: Ehr,
    config: SmartConfiguration,
    redirect_uri: str,
    launch: str,
    *,
    now: float | None = None,
) -> tuple[str, PendingLaunch]:
    """The authorization URL for a Koppeltaal launch and what to keep until the callback
    (SMART App Launch 2.2 EHR launch with the HTI token as ``launch``; TOP-KT-007, T016)."""
    if not config.supports_pkce_s256:
        raise DiscoveryError("the authorization service does not offer PKCE with S256")
    if not launch:
        raise LaunchContextError("the launch carries no HTI token")
    return authorization_request(ehr, config, redirect_uri, SCOPE, launch=launch, now=now)


@dataclass(frozen=True)
class HtiLaunch:
    """The launch context from the token response, as relative references (``Task/<id>``),
    and the verified id_token's claims. There is deliberately no access token here."""

    task: str
    definition: str
    patient: str
    sub: str
    intent: str | None
    id_token_claims: dict[str, Any] = field(repr=False)

    @property
    def role(self) -> Role:
        """Who launched: the client themself or a care professional."""
        return "practitioner" if self.sub.startswith("Practitioner/") else "patient"


def relative_reference(value: object, *types: str) -> str | None:
    """``Type/<id>`` from a relative or absolute literal reference (any ``_history`` part
    dropped), if its type is one of ``types``; else None."""
    if not isinstance(value, str):
        return None
    parts = value.strip().rstrip("/").split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    if len(parts) < 2 or parts[-2] not in types or not _FHIR_ID.fullmatch(parts[-1]):
        return None
    return f"{parts[-2]}/{parts[-1]}"


def complete_hti_launch(exchange: CodeExchange, *, alg: str | None = None) -> HtiLaunch:
    """Check the callback, exchange the code (``private_key_jwt`` signed with ``alg``, default
    RS512, ``kid`` in the header, and the PKCE verifier), verify the id_token
    (``smart_launch.exchange_code``) and take the launch context from the token response."""
    signing = Signing("private_key_jwt", alg, DEFAULT_ALGORITHM)
    return _context(*exchange_code(exchange, signing=signing))


def _context(body: dict[str, Any], claims: dict[str, Any]) -> HtiLaunch:
    task = relative_reference(body.get("resource"), "Task")
    definition = relative_reference(body.get("definition"), "ActivityDefinition")
    patient = relative_reference(body.get("patient"), "Patient")
    user_ref = body.get("sub") or claims.get("fhirUser")
    if relative_reference(user_ref, "RelatedPerson") is not None:
        raise RelatedPersonLaunchError("a RelatedPerson launched: not supported", task=task)
    sub = relative_reference(user_ref, "Patient", "Practitioner")
    for name, value in (("resource", task), ("definition", definition), ("sub", sub)):
        if value is None:
            raise LaunchContextError(f"the token response has no usable {name}")
    assert task is not None and definition is not None and sub is not None  # checked above
    if patient is None:
        if not sub.startswith("Patient/"):
            raise LaunchContextError("the token response names no patient")
        patient = sub
    if sub.startswith("Patient/") and sub != patient:
        raise ForeignTaskError("a client launched a Task for another patient")
    # The id_token says who signed in; it must be the one the context is about.
    user = relative_reference(claims.get("fhirUser"), "Patient", "Practitioner")
    if user is not None and user != sub:
        raise LaunchContextError("the id_token's fhirUser is not the launch's sub")
    intent = body.get("intent")
    return HtiLaunch(
        task=task,
        definition=definition,
        patient=patient,
        sub=sub,
        intent=str(intent) if isinstance(intent, str) else None,
        id_token_claims=claims,
    )


@dataclass(frozen=True)
class LaunchedTask:
    """What a launch is about, read with the backend token and checked: the Task the
    enrolment follows (for a ``view`` subtask: its parent), the subtask if any, the
    ActivityDefinition, the Patient, and the signed-in person's own resource."""

    task: dict[str, Any] = field(repr=False)
    activity_definition: dict[str, Any] = field(repr=False)
    patient: dict[str, Any] = field(repr=False)
    user: dict[str, Any] = field(repr=False)
    view: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def launched(self) -> dict[str, Any]:
        """The Task the portal launched (the ``view`` subtask when it was one)."""
        return self.view or self.task


def _split(reference: str) -> tuple[str, str]:
    resource_type, resource_id = reference.split("/")
    return resource_type, resource_id


def _for(task: dict[str, Any]) -> str | None:
    return relative_reference((task.get("for") or {}).get("reference"), "Patient")


def is_ours(activity_definition: dict[str, Any], client_id: str) -> bool:
    """Whether we published this ActivityDefinition: our KT2PublisherId, and (where the
    server records it, as a Koppeltaal server always does) created by our own Device."""
    if publisher_id(activity_definition) != client_id:
        return False
    for ext in activity_definition.get("extension") or []:
        if ext.get("url") == RESOURCE_ORIGIN:
            origin = (ext.get("valueReference") or {}).get("reference")
            return relative_reference(origin, "Device") == f"Device/{client_id}"
    return True


def resolve_launch(fhir: FhirReader, launch: HtiLaunch, *, client_id: str) -> LaunchedTask:
    """Read the launch's Task, ActivityDefinition, Patient and user with the backend token,
    and refuse what does not fit (TOP-KT-007; KT2_Task notes on ``view``). The checks of a
    Task as an assignment (owner, status, the track it maps to) are ``take_task``'s."""
    task = fhir.read(*_split(launch.task))
    if _for(task) != launch.patient:
        raise ForeignTaskError(f"{launch.task} is not for the launch patient")
    view = None
    if is_view(task):
        parents = [
            relative_reference((p or {}).get("reference"), "Task")
            for p in task.get("partOf") or []
        ]
        if len(parents) != 1 or parents[0] is None:
            raise ForeignTaskError(f"the view subtask {launch.task} is not part of one Task")
        parent = fhir.read(*_split(parents[0]))
        try:
            check_view_rule(task, parent)
        except KoppeltaalTaskError:
            raise ForeignTaskError(
                f"the view subtask {launch.task} breaks the view rule"
            ) from None
        view, task = task, parent
    activity_definition = fhir.read(*_split(launch.definition))
    if not is_ours(activity_definition, client_id):
        raise ForeignDefinitionError(f"{launch.definition} is not one of ours")
    if instantiates(task) != launch.definition:
        raise ForeignDefinitionError(f"Task/{task.get('id')} instantiates another definition")
    patient = fhir.read(*_split(launch.patient))
    if patient.get("active") is False:
        raise ForeignTaskError(f"{launch.patient} is not active")
    user = patient if launch.sub == launch.patient else fhir.read(*_split(launch.sub))
    return LaunchedTask(
        task=task, activity_definition=activity_definition, patient=patient, user=user, view=view
    )


def task_version(task: dict[str, Any]) -> str:
    """``Task/<id>/_history/<version>``: how a launch AuditEvent names its Task (TOP-KT-012c)."""
    version = (task.get("meta") or {}).get("versionId")
    base = f"Task/{task.get('id')}"
    return f"{base}/_history/{version}" if version else base
