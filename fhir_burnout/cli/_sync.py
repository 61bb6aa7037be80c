"""``fhir-burnout db | enrol | sync``: the programme's state and its way to the EHR."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from fhir_burnout.cli._options import (
    _definitions,
    _ehr_clients,
    _engine,
    _resolve_root,
    _settings,
    config_option,
)
from fhir_burnout.errors import FhirBurnoutError


@click.group("db")
def db_group() -> None:
    """The app's database."""


@db_group.command("upgrade")
@config_option
def db_upgrade(config_path: Path) -> None:
    """Apply the migrations the database lacks (every process also does this at start)."""
    from fhir_burnout.db import current_revision  # noqa: PLC0415

    engine = _engine(_settings(config_path))
    click.echo(f"database at migration {current_revision(engine)}")
    engine.dispose()


@click.command("enrol")
@config_option
@click.option("--patient", required=True, help="The Patient's id on the EHR.")
@click.option("--track", required=True, help="standard, waiting-list or after-care.")
@click.option("--ehr", "fhir_base", help="The EHR's FHIR base (default: the first).")
@click.option("--author", help="Who enrols, e.g. Practitioner/123 (default: the app).")
@click.option("--language", default="nl", show_default=True)
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=None)
@click.option("--json", "as_json", is_flag=True, help="Print the enrolment as JSON.")
def enrol_command(  # noqa: PLR0917 - click passes each option
    config_path: Path,
    patient: str,
    track: str,
    fhir_base: str | None,
    author: str | None,
    language: str,
    root: Path | None,
    as_json: bool,
) -> None:
    """Enrol a patient in a track; the EHR gets the plan through the outbox."""
    from sqlalchemy.orm import Session  # noqa: PLC0415

    from fhir_burnout.workflow import enrol  # noqa: PLC0415

    settings = _settings(config_path)
    base = fhir_base or settings.default_ehr
    if not base:
        raise click.ClickException("no EHR configured: add an [[ehr]] to the config")
    practice = settings.ehr(base).practice if settings.ehrs else None
    definitions = _definitions(_resolve_root(root))
    engine = _engine(settings)
    try:
        with Session(engine) as db, db.begin():
            enrolment = enrol(
                db, definitions, fhir_base=base, patient=patient, track=track,
                author=author, practice=practice, language=language,
            )  # fmt: skip
            summary: dict[str, Any] = {
                "enrolment": enrolment.key,
                "patient": patient,
                "track": track,
                "ehr": base,
                "phases": {p.code: p.status for p in enrolment.phases},
                "tasks": {t.action_id: t.status for t in enrolment.tasks},
            }
    except FhirBurnoutError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        engine.dispose()
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(f"Enrolled Patient/{patient} in {track}: {summary['enrolment']}")
    ready = [a for a, s in summary["tasks"].items() if s == "ready"]
    click.echo(f"  ready now: {', '.join(ready)}")
    click.echo("  the EHR receives the plan as soon as a worker runs (fhir-burnout worker)")


@click.group("sync")
def sync_group() -> None:
    """The outbox: what is waiting for the EHR, and dead letters."""


@sync_group.command("status")
@config_option
@click.option("--json", "as_json", is_flag=True)
def sync_status(config_path: Path, as_json: bool) -> None:
    """Queue depth, the oldest entry's age, how each EHR gets its writes, what cannot be
    delivered and why, and every dead letter with the EHR's message."""
    from fhir_burnout.sync import WAITING, queue_status  # noqa: PLC0415

    settings = _settings(config_path)
    engine = _engine(settings)
    status = queue_status(engine)
    engine.dispose()
    clients = _ehr_clients(settings)
    ehrs: list[dict[str, Any]] = [
        {
            "fhir_base": b.fhir_base,
            "writes": b.writes,
            "how": clients.describe(b.fhir_base),
            "waiting": [
                {"reason": w.reason, "why": WAITING.get(w.reason, w.reason),
                 "count": w.count, "status": w.status, "error": w.error}
                for w in status.blocked if w.fhir_base == b.fhir_base
            ],
        }
        for b in settings.ehrs_in("smart")
    ]  # fmt: skip
    if as_json:
        click.echo(
            json.dumps(
                {
                    "pending": status.pending,
                    "leased": status.leased,
                    "delivered": status.delivered,
                    "dead": status.dead,
                    "oldest_waiting_seconds": status.oldest_waiting_seconds,
                    "ehrs": ehrs,
                    "dead_letters": [
                        {"id": i, "partition": p, "status": s, "error": e}
                        for i, p, s, e in status.dead_letters
                    ],
                },
                indent=2,
            )
        )
        return
    age = status.oldest_waiting_seconds
    click.echo(
        f"waiting: {status.pending} pending, {status.leased} being delivered; "
        f"delivered: {status.delivered}; dead letters: {status.dead}"
    )
    click.echo(f"oldest waiting entry: {'none' if age is None else f'{age:.0f} s old'}")
    for ehr in ehrs:
        click.echo(f"EHR {ehr['fhir_base']}: {ehr['how']}")
        for w in ehr["waiting"]:
            click.echo(f"  {w['count']} cannot be delivered: {w['why']}")
            click.echo(f"    last error: {w['error']}")
    for entry_id, partition, http, error in status.dead_letters:
        click.echo(f"  dead letter {entry_id} ({partition}): {http}: {error}")
        click.echo(f"    fix the cause, then: fhir-burnout sync retry {entry_id}")


@sync_group.command("retry")
@config_option
@click.argument("entry_id", type=int)
def sync_retry(config_path: Path, entry_id: int) -> None:
    """Send a dead letter again now."""
    import getpass  # noqa: PLC0415

    from sqlalchemy.orm import Session  # noqa: PLC0415

    from fhir_burnout.sync import requeue  # noqa: PLC0415

    engine = _engine(_settings(config_path))
    try:
        with Session(engine) as db, db.begin():
            requeue(db, entry_id, by=f"{getpass.getuser()} (fhir-burnout sync retry)")
    except FhirBurnoutError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        engine.dispose()
    click.echo(f"outbox entry {entry_id} is queued again")
