"""``fhir-burnout referrals subscribe``: referral intake through Subscriptions."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from fhir_burnout.cli._options import _ehr_clients, _settings, config_option
from fhir_burnout.errors import FhirBurnoutError


@click.group()
def referrals() -> None:
    """Referral intake: Subscription notifications from the EHRs."""


@referrals.command("subscribe")
@config_option
@click.option("--ehr", "fhir_base", help="Only this EHR (its FHIR base); default: each one.")
def referrals_subscribe(config_path: Path, fhir_base: str | None) -> None:
    """Ask each EHR with a practice to notify the app of its referrals (idempotent)."""
    from fhir_burnout.integration import REFERRALS, watched  # noqa: PLC0415
    from fhir_burnout.referral import subscribe_referrals  # noqa: PLC0415

    settings = _settings(config_path)
    wanted = fhir_base.rstrip("/") if fhir_base else None
    backends = [
        (w.fhir_base, practice)
        for w in watched(settings, REFERRALS)
        if (practice := w.practice) and wanted in (None, w.fhir_base)
    ]
    if not backends:
        raise click.ClickException(
            "no [[ehr]] with a practice" + (f" and fhir_base = {wanted!r}" if wanted else "")
            + ": the practice names whose referrals to watch"
        )  # fmt: skip
    clients = _ehr_clients(settings)
    failed = 0
    try:
        for base, practice in backends:
            try:
                done = subscribe_referrals(
                    clients.get(base), base_url=settings.base_url,
                    secret_key=settings.secret_key, practice=practice,
                )  # fmt: skip
            except FhirBurnoutError as exc:
                click.echo(f"{base}: could not subscribe: {exc}", err=True)
                failed += 1
                continue
            was = f", was {done.was}" if done.was and done.was != done.status else ""
            click.echo(
                f"{base}: {done.action} {done.subscription} ({done.status}{was}): "
                f"{done.criteria} -> {done.endpoint}"
            )
    finally:
        clients.close()
    if failed:
        sys.exit(1)
