"""What the commands share: the content root, the config file, its settings and database,
the FHIR client pool."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from fhir_burnout.db import create_db_engine, upgrade
from fhir_burnout.errors import FhirBurnoutError
from fhir_burnout.integration import Connection, EhrClients, SessionTokens
from fhir_burnout.resources import Programme, validate_sources
from fhir_burnout.settings import Settings

#: The checkout this package sits in (fhir_burnout/cli/ is two folders below it).
_DEFAULT_ROOT = Path(__file__).resolve().parent.parent.parent


def _root_option(func: Any) -> Any:
    return click.option(
        "--root",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Project root holding content/ and questionnaires/ (default: this checkout).",
    )(func)


def _resolve_root(root: Path | None) -> Path:
    if root is not None:
        return root
    cwd = Path.cwd()
    return cwd if (cwd / "content" / "programme.yaml").exists() else _DEFAULT_ROOT


def _load_valid(root: Path) -> Programme:
    programme, problems = validate_sources(root)
    if problems or programme is None:
        for problem in problems:
            click.echo(str(problem), err=True)
        click.echo(f"{len(problems)} problem(s); nothing was built.", err=True)
        sys.exit(1)
    return programme


config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    envvar="FHIR_BURNOUT_CONFIG",
    required=True,
    help="fhir-burnout.toml (or FHIR_BURNOUT_CONFIG).",
)


def _settings(config_path: Path) -> Settings:
    try:
        return Settings.from_file(config_path)
    except FhirBurnoutError as exc:
        raise click.ClickException(str(exc)) from None


def _engine(settings: Settings) -> Any:
    engine = create_db_engine(settings.database_url)
    upgrade(engine)
    return engine


def _ehr_clients(settings: Settings, session_tokens: SessionTokens | None = None) -> EhrClients:
    """The FHIR client pool, each mode's adapter composed in (docs/architecture.md, "The
    seam where an EHR connects"): Koppeltaal's connection only where a domain is configured,
    so a SMART-only command never loads the Koppeltaal package."""
    connections: dict[str, Connection] = {}
    if settings.ehrs_in("koppeltaal"):
        from fhir_burnout.koppeltaal import CONNECTION  # noqa: PLC0415 - Koppeltaal only

        connections["koppeltaal"] = CONNECTION
    return EhrClients(settings, session_tokens, connections=connections)


def _definitions(root: Path) -> Any:
    """The programme as built from the content (``fhir-burnout validate`` checks it fully)."""
    from fhir_burnout.resources import build_resources, load_programme  # noqa: PLC0415
    from fhir_burnout.workflow import Definitions  # noqa: PLC0415

    programme, problems = load_programme(root)
    if problems or programme is None:
        raise click.ClickException(f"{root}: the content has problems; run fhir-burnout validate")
    return Definitions.from_resources(build_resources(programme))
