"""The scopes the app asks for, per role, in SMART v2 or v1 form, and what a smaller grant
disables.

SMART App Launch 2.2 §"Scopes and Launch Context": v2 permissions are letters (c r u d s);
v1 has ``read``/``write``. The app asks only for what it uses with the person's own token
(everything it writes goes through the outbox, with the worker's authorisation):

- a care professional (EHR launch at ``/launch``): their own record for their name
  (``user/Practitioner.r``), the practice's roles for ``/practice``
  (``user/PractitionerRole.rs``) and the practice's clients by name there and in the banner
  (``user/Patient.rs``);
- a client (patient-portal launch at ``/launch/patient``, standalone at ``/login``): their
  own record for their name (``patient/Patient.r``).

Refresh tokens (§"Scopes for requesting a refresh token"), per role: a client's session
(up to 12 hours, the questionnaire they fill in at home) outlives an access token and is
renewed before each page, so a client asks ``offline_access``; a care professional works
inside the EHR's own session and opens the app again from the chart, so they ask
``online_access`` only where the server offers it (``permission-online``). An EHR's
``offline_access = true/false`` overrides both. ``docs/launch.md`` lists the exact strings.

An EHR that takes writes only with a person's own authorisation (``writes = "user"``, no
Backend Services for the worker) gets, from both roles, the patient-context write scopes
of :data:`WRITE_RESOURCES` and ``offline_access``: the worker delivers what the person did
with their token, possibly after the access token ran out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: Who uses the app after a launch; the launch URL says which (the token only says it after).
Role = Literal["practitioner", "patient"]
ROLES: tuple[Role, ...] = ("practitioner", "patient")

#: (scope context, resource type, v2 permissions, what stops working without it), per role.
ROLE_RESOURCES: dict[Role, tuple[tuple[str, str, str, str], ...]] = {
    "practitioner": (
        ("user", "Practitioner", "r", "showing the care professional's name"),
        ("user", "PractitionerRole", "rs", "the practice overview"),
        ("user", "Patient", "rs", "clients' names on the practice overview and in the banner"),
    ),
    "patient": (("patient", "Patient", "r", "showing the client's own name"),),
}

#: What the sync worker and the referral intake do with the worker's own (Backend Services)
#: token: (resource type, v2 permissions, what stops working without it).
WORKER_RESOURCES: tuple[tuple[str, str, str], ...] = (
    ("QuestionnaireResponse", "cu", "delivering the clients' answers"),
    ("Task", "cru", "delivering progress and homework"),
    ("CarePlan", "cru", "delivering enrolments"),
    ("RequestGroup", "c", "delivering enrolments"),
    ("Provenance", "c", "recording on whose behalf the app wrote"),
    ("Communication", "c", "telling a client about a change of track"),
    ("ServiceRequest", "crus", "taking in referrals"),
    ("Patient", "rs", "matching referred clients"),
    ("Subscription", "crus", "being notified of referrals"),
)

IDENTITY_SCOPES = ("openid", "fhirUser")
#: Scopes the app adds itself, whatever an EHR's scope override says.
_APP_ADDED = frozenset({"launch", "launch/patient", "offline_access", "online_access"})

#: What the sync worker writes with a person's own token when their EHR gives it no
#: Backend Services (``writes = "user"``): enrolment (CarePlan, RequestGroup, Tasks), answers
#: and progress, and safety signals (Communication). Asked in addition to the above.
WRITE_RESOURCES: tuple[tuple[str, str, str], ...] = (
    ("CarePlan", "cru", "delivering the programme's plan to the EHR"),
    ("RequestGroup", "cr", "delivering the programme's plan to the EHR"),
    ("Task", "cru", "recording progress in the EHR"),
    ("QuestionnaireResponse", "cru", "saving answers in the EHR"),
    ("Communication", "cr", "passing on safety signals to the practice"),
)


@dataclass(frozen=True)
class ScopeRequest:
    """The scope string to ask for, and per resource scope what it makes possible."""

    scope: str
    purposes: tuple[tuple[str, str], ...]  # (scope, what it is for)


def _resource_scope(context: str, resource: str, permissions: str, *, v2: bool) -> list[str]:
    if v2:
        return [f"{context}/{resource}.{permissions}"]
    scopes = []
    if set(permissions) & {"r", "s"}:
        scopes.append(f"{context}/{resource}.read")
    if set(permissions) & {"c", "u", "d"}:
        scopes.append(f"{context}/{resource}.write")
    return scopes


def wants_offline(role: Role, offline_access: bool | None) -> bool:
    """Whether a launch in ``role`` asks ``offline_access`` (see the module docstring)."""
    return role == "patient" if offline_access is None else offline_access


def launch_scopes(
    *,
    role: Role,
    v2: bool,
    ehr_launch: bool,
    offline_access: bool | None = None,
    online_access: bool = False,
    override: str | None = None,
    writes: bool = False,
) -> ScopeRequest:
    """Scopes for a launch in ``role``: an EHR launch (``launch``) or a standalone launch
    (``launch/patient``). ``offline_access`` None: the role's default; ``online_access``:
    the server offers it (asked by a role that does not ask ``offline_access``).
    ``override``: the EHR's own list of identity and resource scopes, replacing the
    defaults (the launch context and refresh scopes are still the app's). ``writes``: the
    worker writes with this person's token (``writes = "user"``), so the launch also asks
    what it writes and ``offline_access`` (the worker may deliver after the access token
    ran out), unless the EHR's ``offline_access = false`` says never."""
    scopes = ["launch" if ehr_launch else "launch/patient"]
    purposes: list[tuple[str, str]] = []
    defaults: list[str] = [*IDENTITY_SCOPES]
    for context, resource, permissions, purpose in ROLE_RESOURCES[role]:
        resource_scopes = _resource_scope(context, resource, permissions, v2=v2)
        defaults += resource_scopes
        purposes += [(s, purpose) for s in resource_scopes]
    if override is not None:
        scopes += [s for s in override.split() if s not in _APP_ADDED and s not in scopes]
    else:
        scopes += defaults
    for resource, permissions, purpose in WRITE_RESOURCES if writes else ():
        write_scopes = _resource_scope("patient", resource, permissions, v2=v2)
        scopes += [s for s in write_scopes if s not in scopes]
        purposes += [(s, purpose) for s in write_scopes if (s, purpose) not in purposes]
    if wants_offline(role, True if writes and offline_access is None else offline_access):
        scopes.append("offline_access")
    elif online_access:
        scopes.append("online_access")
    return ScopeRequest(" ".join(scopes), tuple(purposes))


def worker_scopes() -> ScopeRequest:
    """The system/ scopes the worker's token needs, each with what it is for."""
    purposes = tuple((f"system/{r}.{p}", why) for r, p, why in WORKER_RESOURCES)
    return ScopeRequest(" ".join(s for s, _ in purposes), purposes)


def _permissions(scope: str) -> tuple[str, str, set[str]] | None:
    context, _, rest = scope.partition("/")
    resource, _, perms = rest.partition(".")
    if not resource or not perms:
        return None
    perms = perms.split("?", 1)[0]
    letters = {"read": {"r", "s"}, "write": {"c", "u", "d"}, "*": set("cruds")}.get(
        perms, set(perms)
    )
    return context, resource, letters


def covers(granted: str, wanted: str) -> bool:
    """Whether one granted scope covers one wanted scope (wildcards, v1 and v2 alike)."""
    if granted == wanted:
        return True
    g, w = _permissions(granted), _permissions(wanted)
    if g is None or w is None:
        return False
    return g[0] == w[0] and g[1] in ("*", w[1]) and w[2] <= g[2]


def missing_purposes(request: ScopeRequest, granted_scope: str) -> list[str]:
    """What will not work because the server granted fewer scopes than asked (deduplicated)."""
    granted = granted_scope.split()
    missing: list[str] = []
    for scope, purpose in request.purposes:
        if not any(covers(g, scope) for g in granted) and purpose not in missing:
            missing.append(purpose)
    return missing
