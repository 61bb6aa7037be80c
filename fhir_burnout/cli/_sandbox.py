"""``fhir-burnout sandbox``: the sandbox EHR in the foreground."""

from __future__ import annotations

import os
from pathlib import Path

import click


@click.command()
@click.option("--port", type=int, default=0, help="Port (default: a free one).")
@click.option(
    "--info",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write URLs, clients and seed ids here (JSON).",
)
@click.option(
    "--client-config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSON file with further client registrations.",
)
@click.option("--app-url", default=None, help="Base URL of the app the default client launches.")
@click.option("--consent", is_flag=True, help="Show a consent screen on each authorization.")
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the EHR's records and credentials here across restarts.",
)
@click.option("--token-ttl", type=int, help="Access token lifetime in seconds.")
@click.option("--rate-limit", type=int, help="FHIR requests per second per client (then 429).")
@click.option(
    "--koppeltaal",
    is_flag=True,
    help="Run a Koppeltaal 2.0 domain (KT2 rules, module and portal clients, a portal page).",
)
def sandbox(  # noqa: PLR0917 - click passes each option
    port: int,
    info: Path | None,
    client_config: Path | None,
    app_url: str | None,
    consent: bool,
    data_dir: Path | None,
    token_ttl: int | None,
    rate_limit: int | None,
    koppeltaal: bool,
) -> None:
    """Run the sandbox EHR (FHIR, SMART authorization server, launcher) in the foreground."""
    from fhir_burnout.sandbox import SandboxError, sandbox_command  # noqa: PLC0415

    try:
        command = sandbox_command(
            port=port, info=info, client_config=client_config, app_url=app_url,
            consent=consent, data_dir=data_dir, token_ttl=token_ttl, rate_limit=rate_limit,
            koppeltaal=koppeltaal,
        )  # fmt: skip
    except SandboxError as exc:
        raise click.ClickException(str(exc)) from None
    # Replace this process: Ctrl-C and SIGTERM reach the sandbox directly.
    os.execv(command[0], command)  # noqa: S606 - our own fixed command line
