"""Care relationships on a Koppeltaal domain: which clients a care professional may see.

A Koppeltaal domain is the practice, but not every care professional it signs in treats
every client. The domain says who does in its KT2_CareTeams (IG 0.16.3, KT2_CareTeam and its
notes): a CareTeam is about one Patient (``subject``), lists care professionals as
``participant.member``, and counts only while ``status`` is ``active`` and now is within
its ``period`` (the notes' "Validation: CareTeam operations": an application MUST NOT act
for a CareTeam that fails these). A care professional sees:

- the clients of the active CareTeams they are a member of (read with the module's backend
  token: Koppeltaal gives care professionals no user token), and
- the clients whose KT2_Task they launched (:class:`KoppeltaalLaunchRow`, recorded at the
  launch: the portal trusted them with that client).

A CareTeam read that fails raises :class:`CareTeamUnreadableError`: the caller shows nobody,
never everybody.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import requests
from sqlalchemy import select
from sqlalchemy.orm import Session

from fhir_burnout.db import upsert
from fhir_burnout.errors import FhirBurnoutError
from fhir_burnout.fhir import FhirClient
from fhir_burnout.koppeltaal._tables import KoppeltaalLaunchRow


class CareTeamUnreadableError(FhirBurnoutError):
    """The domain's CareTeams could not be read: whose clients are whose is unknown."""

    code = "transient"


def _when(value: object, *, end: bool = False) -> datetime | None:
    """A period's start or end; a date alone covers its whole day (an end: until midnight)."""
    if not isinstance(value, str) or not value:
        return None
    text = value.replace("Z", "+00:00")
    whole_day = len(text) == 10
    try:
        moment = datetime.fromisoformat(text + ("T00:00:00+00:00" if whole_day else ""))
    except ValueError:
        return None
    moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return moment + timedelta(days=1) if whole_day and end else moment


def counts(team: dict[str, object], now: datetime) -> bool:
    """Whether a CareTeam counts now: ``status`` active and now within its ``period``."""
    if team.get("status") != "active":
        return False
    period = team.get("period")
    if isinstance(period, dict):
        start, end = _when(period.get("start")), _when(period.get("end"), end=True)
        if (start is not None and now < start) or (end is not None and now >= end):
            return False
    return True


def _patient_of(team: dict[str, object]) -> str | None:
    subject = team.get("subject")
    reference = subject.get("reference") if isinstance(subject, dict) else None
    if not isinstance(reference, str) or not reference.startswith("Patient/"):
        return None
    return reference.removeprefix("Patient/").split("/", 1)[0] or None


def _has_member(team: dict[str, object], practitioner: str) -> bool:
    participants = team.get("participant")
    return isinstance(participants, list) and any(
        isinstance(p, dict)
        and isinstance(p.get("member"), dict)
        and str(p["member"].get("reference", "")).removesuffix("/") == practitioner
        for p in participants
    )


def care_team_clients(
    client: FhirClient, practitioner: str, *, now: datetime | None = None
) -> frozenset[str]:
    """The ids of the Patients whose active CareTeam on the domain lists ``practitioner``
    (``Practitioner/<id>``) as a member. Each CareTeam is checked here too (subject,
    member, status, period): a server may ignore a search parameter it does not know."""
    now = now or datetime.now(UTC)
    params = {"participant": practitioner, "status": "active"}
    try:
        teams = list(client.search("CareTeam", params))
    except (FhirBurnoutError, requests.RequestException) as error:
        said = f"the domain's CareTeams could not be read ({type(error).__name__})"
        raise CareTeamUnreadableError(said) from None
    return frozenset(
        patient
        for team in teams
        if team.get("resourceType") == "CareTeam"
        and counts(team, now)
        and _has_member(team, practitioner)
        and (patient := _patient_of(team)) is not None
    )


def record_launch(
    db: Session,
    fhir_base: str,
    *,
    practitioner: str,
    task_id: str,
    patient: str,
    now: datetime | None = None,
) -> None:
    """Remember that ``practitioner`` launched the KT2_Task ``task_id`` of ``patient`` (in
    the caller's transaction); a second launch of the same Task only moves the time."""
    row = {
        "fhir_base": fhir_base.rstrip("/"),
        "practitioner": practitioner,
        "task_id": task_id,
        "patient": patient.removeprefix("Patient/"),
        "launched_at": now or datetime.now(UTC),
    }
    upsert(db, KoppeltaalLaunchRow, [row], ("fhir_base", "practitioner", "task_id"))


def launched_clients(db: Session, fhir_base: str, practitioner: str) -> frozenset[str]:
    """The ids of the Patients whose KT2_Task ``practitioner`` launched on this domain."""
    found = db.scalars(
        select(KoppeltaalLaunchRow.patient).where(
            KoppeltaalLaunchRow.fhir_base == fhir_base.rstrip("/"),
            KoppeltaalLaunchRow.practitioner == practitioner,
        )
    )
    return frozenset(found)


def clients_of(
    db: Session, client: FhirClient, fhir_base: str, practitioner: str
) -> frozenset[str]:
    """Every client ``practitioner`` may see on the domain: their CareTeams' and those whose
    Task they launched. :class:`CareTeamUnreadableError` when the CareTeams cannot be read."""
    return care_team_clients(client, practitioner) | launched_clients(db, fhir_base, practitioner)
