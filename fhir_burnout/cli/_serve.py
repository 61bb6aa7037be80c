"""``fhir-burnout serve | keys``: run the web app, and the keys it signs with."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from fhir_burnout.cli._options import _settings, config_option
from fhir_burnout.errors import FhirBurnoutError


@click.command()
@config_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8000, show_default=True)
@click.option(
    "--workers", type=click.IntRange(min=1), default=2, show_default=True,
    help="gunicorn worker processes.",
)  # fmt: skip
def serve(config_path: Path, host: str, port: int, workers: int) -> None:
    """Run the web app under gunicorn (never Flask's development server: it is not made for
    clients' health data on a network)."""
    settings = _settings(config_path)
    try:
        settings.check_safety()
    except FhirBurnoutError as exc:
        raise click.ClickException(str(exc)) from None
    os.environ["FHIR_BURNOUT_CONFIG"] = str(config_path.resolve())
    if workers > 1 and settings.rate_limits.storage.startswith("memory://"):
        # Each worker counts on its own: the limits hold per worker, not per practice.
        click.echo(
            f"note: rate limits are counted per worker ({workers} workers, memory://); set "
            'rate_limit_storage = "redis://..." to count them together',
            err=True,
        )
    # The workers log as this command does: gunicorn takes _logging's config (_gunicorn.py).
    logs = click.get_current_context().find_root().params
    os.environ["FHIR_BURNOUT_LOG_LEVEL"] = str(logs["log_level"]).lower()
    os.environ["FHIR_BURNOUT_LOG_JSON"] = "1" if logs["log_json"] else ""
    gunicorn = Path(sys.executable).with_name("gunicorn")
    command = [str(gunicorn), "--workers", str(workers), "--bind", f"{host}:{port}"]
    command += ["--config", "python:fhir_burnout._gunicorn"]
    command += ["--log-level", os.environ["FHIR_BURNOUT_LOG_LEVEL"]]
    command.append("fhir_burnout.web:create_app()")
    os.execv(command[0], command)  # noqa: S606 - our own fixed command line


@click.command()
@click.option(
    "--dir",
    "keys_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("keys"),
    show_default=True,
)
@click.option(
    "--alg",
    type=click.Choice(["RS384", "ES384", "RS512"]),
    default="RS384",
    show_default=True,
    help="RS384 or ES384 for SMART EHRs; RS512 for a Koppeltaal domain.",
)
def keys(keys_dir: Path, alg: str) -> None:
    """Generate a new signing key (rotation: older keys stay published for a week)."""
    from fhir_burnout.smart_launch import generate_key  # noqa: PLC0415

    kid = generate_key(keys_dir, alg)
    click.echo(
        f"new {alg} key {kid} in {keys_dir}; the app publishes it at /.well-known/jwks.json"
    )
