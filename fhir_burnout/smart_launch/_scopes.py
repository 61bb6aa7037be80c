"""The scopes the app asks for, in SMART v2 or v1 form, and what a smaller grant disables.

SMART App Launch 2.2 §"Scopes and Launch Context": v2 permissions are letters (c r u d s);
v1 has ``read``/``write``. The app asks only for what it uses.
"""

from __future__ import annotations

from dataclasses import dataclass

#: (resource type, v2 permissions, what stops working without it). The app reads the
#: programme's definitions and the patient, and writes answers and progress.
PATIENT_RESOURCES: tuple[tuple[str, str, str], ...] = (
    ("Patient", "r", "showing who the programme is for"),
    ("Questionnaire", "rs", "showing questionnaires from the EHR"),
    ("QuestionnaireResponse", "cru", "saving answers in the EHR"),
    ("Task", "cru", "recording progress in the EHR"),
    ("CarePlan", "rs", "reading the care plan"),
    ("PlanDefinition", "rs", "reading the programme from the EHR"),
    ("ActivityDefinition", "rs", "reading the modules from the EHR"),
)

IDENTITY_SCOPES = ("openid", "fhirUser")

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


def _v1(resource: str, permissions: str) -> list[str]:
    scopes = []
    if set(permissions) & {"r", "s"}:
        scopes.append(f"patient/{resource}.read")
    if set(permissions) & {"c", "u", "d"}:
        scopes.append(f"patient/{resource}.write")
    return scopes


def launch_scopes(
    *, v2: bool, ehr_launch: bool, offline: bool = True, writes: bool = False
) -> ScopeRequest:
    """Scopes for an EHR launch (``launch``) or a standalone launch (``launch/patient``);
    ``writes``: also what the worker writes with this person's token (``writes = "user"``),
    and ``offline_access``, since the worker may deliver after the access token ran out."""
    scopes = ["launch" if ehr_launch else "launch/patient", *IDENTITY_SCOPES]
    if offline or writes:
        scopes.append("offline_access")
    purposes = []
    if ehr_launch:
        # In the EHR the user is usually a care professional: read their own record (fhirUser).
        user_scope = "user/Practitioner.r" if v2 else "user/Practitioner.read"
        scopes.append(user_scope)
        purposes.append((user_scope, "showing the care professional's name"))
        # Their roles: the practice-wide list is for the practice's own care professionals.
        role_scope = "user/PractitionerRole.rs" if v2 else "user/PractitionerRole.read"
        scopes.append(role_scope)
        purposes.append((role_scope, "the practice overview"))
        # The practice's clients by name on that list (the chart's patient alone otherwise).
        names_scope = "user/Patient.rs" if v2 else "user/Patient.read"
        scopes.append(names_scope)
        purposes.append((names_scope, "clients' names on the practice overview"))
    for resource, permissions, purpose in PATIENT_RESOURCES:
        resource_scopes = (
            [f"patient/{resource}.{permissions}"] if v2 else _v1(resource, permissions)
        )
        scopes += resource_scopes
        purposes += [(s, purpose) for s in resource_scopes]
    for resource, permissions, purpose in WRITE_RESOURCES if writes else ():
        resource_scopes = (
            [f"patient/{resource}.{permissions}"] if v2 else _v1(resource, permissions)
        )
        scopes += [s for s in resource_scopes if s not in scopes]
        purposes += [(s, purpose) for s in resource_scopes if (s, purpose) not in purposes]
    return ScopeRequest(" ".join(scopes), tuple(purposes))


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
