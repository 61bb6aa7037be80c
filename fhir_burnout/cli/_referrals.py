"""``fhir-burnout referrals subscribe``: referral intake through Subscriptions."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from fhir_burnout.cli._options import _settings, config_option
from fhir_burnout.errors import FhirBurnoutError


@click.group()
def referrals() -> None:
    """Referral intake: Subscription notifications from the EHRs."""


@referrals.command("subscribe")
@config_option
@click.option("--ehr", "fhir_base", help="Only this EHR (its FHIR base); default: each one.")
def referrals_subscribe(config_path: Path, fhir_base: str | None) -> None:
    """Ask each EHR with a practice to notify the app of its referrals (idempotent)."""
    from fhir_burnout.referral import (  # noqa: PLC0415
        notify_endpoint,
        notify_token,
        referral_criteria,
        subscribe,
    )
    from fhir_burnout.sync import EhrClients  # noqa: PLC0415

    settings = _settings(config_path)
    wanted = fhir_base.rstrip("/") if fhir_base else None
    backends = [
        (b.fhir_base, practice)
        for b in settings.ehrs
        if (practice := b.practice) and wanted in (None, b.fhir_base)
    ]
    if not backends:
        raise click.ClickException(
            "no [[ehr]] with a practice" + (f" and fhir_base = {wanted!r}" if wanted else "")
            + ": the practice names whose referrals to watch"
        )  # fmt: skip
    clients = EhrClients(settings)
    failed = 0
    try:
        for base, practice in backends:
            try:
                done = subscribe(
                    clients.get(base),
                    notify_endpoint(settings.base_url, base),
                    notify_token(settings.secret_key, base),
                    referral_criteria(practice),
                )
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
