"""The ``fhir-burnout`` command."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import click

from fhir_burnout import __version__
from fhir_burnout.errors import ContentError, FhirBurnoutError
from fhir_burnout.resources import (
    Programme,
    build_resources,
    load_artifact,
    validate_artifact,
    validate_sources,
    write_package,
)
from fhir_burnout.resources._build import load_questionnaire
from fhir_burnout.resources._publish import PublishStep, plan_request, publish

_DEFAULT_ROOT = Path(__file__).resolve().parent.parent


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


@click.group()
@click.version_option(__version__, prog_name="fhir-burnout")
def main() -> None:
    """fhir_burnout: the burn-out programme as FHIR resources."""


@main.command()
@_root_option
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("dist"))
def build(root: Path | None, out: Path) -> None:
    """Validate the content and write the FHIR package and bundles to --out."""
    programme = _load_valid(_resolve_root(root))
    written = write_package(programme, build_resources(programme), out)
    click.echo(f"{written.resources} resources")
    for path in (written.tgz, written.bundle_json, written.bundle_xml):
        click.echo(f"wrote {path}")


@main.command()
@_root_option
@click.argument(
    "artifacts", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
def validate(root: Path | None, artifacts: tuple[Path, ...]) -> None:
    """Check the content (no ARTIFACTS) or built packages and bundles (.tgz, .json, .xml)."""
    problems: list[Any] = []
    if artifacts:
        for artifact in artifacts:
            problems += validate_artifact(artifact)
        checked = ", ".join(str(a) for a in artifacts)
    else:
        root = _resolve_root(root)
        _, problems = validate_sources(root)
        checked = f"{root / 'content'} and {root / 'questionnaires'}"
    for problem in problems:
        click.echo(str(problem), err=True)
    if problems:
        click.echo(f"{len(problems)} problem(s) in {checked}", err=True)
        sys.exit(1)
    click.echo(f"ok: {checked}")


@main.command("publish")
@_root_option
@click.option("--server", help="FHIR base URL of the EHR (omit with --dry-run to list requests).")
@click.option("--token", envvar="FHIR_BURNOUT_TOKEN", help="Bearer token (or FHIR_BURNOUT_TOKEN).")
@click.option("--package", "package", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Show what would be created or updated.")
def publish_command(
    root: Path | None, server: str | None, token: str | None, package: Path | None, dry_run: bool
) -> None:
    """Load the package into a FHIR server; running it twice changes nothing."""
    if package is not None:
        resources, _, _ = load_artifact(package)
    else:
        resources = build_resources(_load_valid(_resolve_root(root)))
    if server is None:
        if not dry_run:
            raise click.UsageError("--server is required (or use --dry-run to list the requests)")
        for r in resources:
            rtype, params = plan_request(r)
            click.echo(f"POST {rtype}  If-None-Exist: {urlencode(params)}")
        click.echo(f"{len(resources)} resources (unless already on the server)")
        return
    from fhir_burnout.fhir import FhirClient  # noqa: PLC0415 - only publish talks HTTP

    def show(step: PublishStep) -> None:
        click.echo(f"{step.action:9} {step.resource_type} {step.url}|{step.version}")

    try:
        with FhirClient(server, token=token) as client:
            steps = publish(resources, client, dry_run=dry_run, progress=show)
    except FhirBurnoutError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    counts = {a: sum(1 for s in steps if s.action == a) for a in ("create", "update", "unchanged")}
    click.echo(", ".join(f"{n} {a}" for a, n in counts.items()))


@main.command()
@_root_option
@click.option("--lang", default="en", show_default=True, help="Language of the summary.")
def summary(root: Path | None, lang: str) -> None:
    """Print the programme: phases, modules, tracks and questionnaires."""
    click.echo(render_summary(_load_valid(_resolve_root(root)), lang))


@main.command()
@_root_option
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("dist"))
@click.option("--lang", default="en", show_default=True)
def demo(root: Path | None, out: Path, lang: str) -> None:
    """Build the package and show the programme (what `make demo` runs)."""
    programme = _load_valid(_resolve_root(root))
    written = write_package(programme, build_resources(programme), out)
    click.echo(render_summary(programme, lang))
    click.echo("")
    click.echo(f"The FHIR package ({written.resources} resources) was written to:")
    for path in (written.tgz, written.bundle_json, written.bundle_xml):
        click.echo(f"  {path.resolve()}")


def render_summary(programme: Programme, lang: str = "en") -> str:
    """A readable overview of the programme."""

    def t(text: Any) -> str:
        return str(text.get(lang) or text.get(programme.language) or "")

    lines = [f"{t(programme.title)}  ({programme.name} {programme.version})", ""]
    for phase in programme.phases:
        lines.append(t(phase.title))
        for code in phase.modules:
            module = programme.module(code)
            if module is None:
                continue
            extra = f"; homework: {', '.join(module.homework)}" if module.homework else ""
            exercises = ", ".join(e.id for e in module.exercises)
            lines.append(
                f"  - {t(module.title)} [{code}], {module.minutes} min; "
                f"exercises: {exercises}{extra}"
            )
        lines.append("")
    lines.append("Tracks:")
    for track in programme.tracks:
        modules = sum(len(m) for _, m in track.phases)
        measures = ", ".join(m.questionnaire for m in track.measures)
        lines.append(
            f"  - {t(track.title)} [{track.code}]: {modules} modules, unlock {track.unlock}; "
            f"questionnaires: {measures}"
        )
    lines += ["", "Questionnaires:"]
    for qid, _ in programme.questionnaires:
        try:
            q = load_questionnaire(programme, qid)
        except ContentError:
            continue
        title = str(q.get("title", qid))
        from fhir_burnout.resources._fhirjson import translations  # noqa: PLC0415

        if lang != programme.language:
            title = translations(q.get("_title")).get(lang, title)
        items = _count_items(q.get("item", []))
        lines.append(f"  - {title} [{qid}], {items} questions")
    return "\n".join(lines)


def _count_items(items: list[dict[str, Any]]) -> int:
    return sum(
        (0 if i.get("type") in ("group", "display") or i.get("readOnly") else 1)
        + _count_items(i.get("item", []))
        for i in items
    )
