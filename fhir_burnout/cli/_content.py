"""``fhir-burnout build | validate | publish | summary``: the programme's content as FHIR."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import click

from fhir_burnout.cli._options import _load_valid, _resolve_root, _root_option
from fhir_burnout.errors import ContentError, FhirBurnoutError
from fhir_burnout.resources import (
    Programme,
    PublishStep,
    build_resources,
    load_artifact,
    load_questionnaire,
    plan_request,
    publish,
    validate_artifact,
    validate_sources,
    write_package,
)

if TYPE_CHECKING:
    from fhir_burnout.fhir import FhirClient
    from fhir_burnout.settings import Ehr


@click.command()
@_root_option
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("dist"))
def build(root: Path | None, out: Path) -> None:
    """Validate the content and write the FHIR package and bundles to --out."""
    programme = _load_valid(_resolve_root(root))
    written = write_package(programme, build_resources(programme), out)
    click.echo(f"{written.resources} resources")
    for path in (written.tgz, written.bundle_json, written.bundle_xml):
        click.echo(f"wrote {path}")


@click.command()
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


@click.command("publish")
@_root_option
@click.option("--server", help="FHIR base URL of the EHR (omit with --dry-run to list requests).")
@click.option("--token", envvar="FHIR_BURNOUT_TOKEN", help="Bearer token (or FHIR_BURNOUT_TOKEN).")
@click.option("--package", "package", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Show what would be created or updated.")
@click.option(
    "--mode",
    type=click.Choice(["smart", "koppeltaal"]),
    default="smart",
    show_default=True,
    help="koppeltaal: publish KT2 ActivityDefinitions and our Endpoint (docs/koppeltaal.md).",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="koppeltaal: the app's config (or FHIR_BURNOUT_CONFIG): base_url, its [[ehr]].",
)
@click.option("--client-id", help="koppeltaal: our client id (Device id, KT2PublisherId).")
@click.option(
    "--private-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="koppeltaal: our private JWK (file) for the backend-services token.",
)
@click.option(
    "--alg",
    type=click.Choice(["RS512", "RS384", "ES384"]),
    help="koppeltaal: client assertion algorithm (default: koppeltaal_alg, the key's, RS512).",
)
@click.option("--app-url", help="koppeltaal: the app's base URL (launch URL below it).")
def publish_command(  # noqa: PLR0917 - click passes each option
    root: Path | None,
    server: str | None,
    token: str | None,
    package: Path | None,
    dry_run: bool,
    mode: str,
    config_path: Path | None,
    client_id: str | None,
    private_key: Path | None,
    alg: str | None,
    app_url: str | None,
) -> None:
    """Load the package into a FHIR server; running it twice changes nothing."""
    if mode == "smart" and (client_id or private_key or alg or app_url):
        raise click.UsageError("--client-id, --private-key, --alg, --app-url: --mode koppeltaal")
    if package is not None:
        resources, _, _ = load_artifact(package)
    else:
        resources = build_resources(_load_valid(_resolve_root(root)))
    if mode == "koppeltaal":
        _publish_koppeltaal(
            resources, server=server, token=token, dry_run=dry_run, config_path=config_path,
            client_id=client_id, private_key=private_key, alg=alg, app_url=app_url,
        )  # fmt: skip
        return
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
    _echo_counts(s.action for s in steps)


def _echo_counts(actions: Iterable[str]) -> None:
    """The last line of ``publish``: how many resources were created, updated, left as is."""
    done = list(actions)
    counts = {a: sum(1 for d in done if d == a) for a in ("create", "update", "unchanged")}
    click.echo(", ".join(f"{n} {a}" for a, n in counts.items()))


def _publish_koppeltaal(
    resources: list[dict[str, Any]],
    *,
    server: str | None,
    token: str | None,
    dry_run: bool,
    config_path: Path | None,
    client_id: str | None,
    private_key: Path | None,
    alg: str | None,
    app_url: str | None,
) -> None:
    """``publish --mode koppeltaal``: options first, then the config's koppeltaal [[ehr]]."""
    from fhir_burnout.koppeltaal import (  # noqa: PLC0415
        KoppeltaalStep,
        publish_koppeltaal,
        traced,
    )

    server, backend, base_url = _koppeltaal_config(config_path, server)
    app_url = app_url or base_url
    client_id = client_id or (backend.worker_client_id if backend else None)
    if not app_url or not client_id:
        raise click.UsageError("--mode koppeltaal needs --app-url and --client-id (or --config)")
    try:
        if server is None:
            if not dry_run:
                raise click.UsageError("--server is required (or --dry-run, or --config)")
            _list_koppeltaal_requests(
                resources, app_url, client_id, results=bool(backend and backend.results)
            )
            return
        client = _koppeltaal_client(
            server, token=token, private_key=private_key, alg=alg, backend=backend,
            client_id=client_id,
        )  # fmt: skip

        def show(step: KoppeltaalStep) -> None:
            click.echo(f"{step.action:9} {step.resource_type}/{step.id or '(new)'}  {step.key}")

        with client, traced():
            steps = publish_koppeltaal(
                resources,
                client,
                base_url=app_url,
                publisher_id=client_id,
                results=bool(backend and backend.results),
                dry_run=dry_run,
                progress=show,
            )
    except (FhirBurnoutError, ValueError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    _echo_counts(s.action for s in steps)


def _koppeltaal_config(
    config_path: Path | None, server: str | None
) -> tuple[str | None, Ehr | None, str | None]:
    """The server (the config's first Koppeltaal domain unless given), the config's
    [[ehr]] of that server and the app's base URL; all None without a config."""
    from fhir_burnout.settings import Settings  # noqa: PLC0415

    if config_path is None and os.environ.get("FHIR_BURNOUT_CONFIG"):
        # Read here, not as the option's envvar: smart mode never looks at it.
        config_path = Path(os.environ["FHIR_BURNOUT_CONFIG"])
    if config_path is None:
        return server, None, None
    try:
        settings = Settings.from_file(config_path)
    except FhirBurnoutError as exc:
        raise click.ClickException(str(exc)) from None
    kt = settings.ehrs_in("koppeltaal")
    if server is None and kt:
        server = kt[0].fhir_base
    backend = next(
        (b for b in settings.ehrs if server and b.fhir_base == server.rstrip("/")), None
    )
    return server, backend, settings.base_url


def _list_koppeltaal_requests(
    resources: list[dict[str, Any]], app_url: str, client_id: str, *, results: bool
) -> None:
    """``--dry-run`` without a server: the Endpoint and ActivityDefinitions it would POST."""
    from fhir_burnout.koppeltaal import (  # noqa: PLC0415
        NEW_ENDPOINT,
        canonical_base,
        kt2_activity_definitions,
        kt2_endpoint,
    )

    endpoint = kt2_endpoint(app_url, canonical_base(resources), client_id)
    click.echo(f"POST Endpoint  {endpoint['address']}")
    definitions = kt2_activity_definitions(
        resources, endpoint=NEW_ENDPOINT, publisher_id=client_id, results=results
    )
    for definition in definitions:
        click.echo(f"POST ActivityDefinition  {definition['url']}")
    click.echo(f"{1 + len(definitions)} resources (unless already on the server)")


def _koppeltaal_client(
    server: str,
    *,
    token: str | None,
    private_key: Path | None,
    alg: str | None,
    backend: Ehr | None,
    client_id: str,
) -> FhirClient:
    """A traced FHIR client of the domain: with --token as given, else with a Backend
    Services token signed by --private-key (or the config's key)."""
    import json  # noqa: PLC0415

    from fhir_burnout.fhir import FhirClient  # noqa: PLC0415 - only publish talks HTTP
    from fhir_burnout.integration import backend_client  # noqa: PLC0415
    from fhir_burnout.koppeltaal import CONNECTION, DEFAULT_SCOPE, TracedSession  # noqa: PLC0415

    jwk = (
        json.loads(private_key.read_text(encoding="utf-8"))
        if private_key
        else (backend.worker_private_jwk if backend else None)
    )
    if token:
        return FhirClient(server, token=token, session=TracedSession())
    if jwk is None:
        raise click.UsageError("--mode koppeltaal needs --private-key (or --config, --token)")
    alg = alg or (backend.assertion_alg if backend else None)
    return backend_client(server, client_id, jwk, DEFAULT_SCOPE, alg, CONNECTION)


@click.command()
@_root_option
@click.option("--lang", default="en", show_default=True, help="Language of the summary.")
def summary(root: Path | None, lang: str) -> None:
    """Print the programme: phases, modules, tracks and questionnaires."""
    click.echo(render_summary(_load_valid(_resolve_root(root)), lang))


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
        from fhir_burnout.resources import translations  # noqa: PLC0415

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
