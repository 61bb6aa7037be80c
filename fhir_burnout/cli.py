"""The ``fhir-burnout`` command."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import click

from fhir_burnout import __version__
from fhir_burnout._logging import LEVELS, configure_logging
from fhir_burnout._sync_cli import config_option
from fhir_burnout._sync_cli import register as register_sync_commands
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
@click.option(
    "--log-level", type=click.Choice(LEVELS, case_sensitive=False), default="info",
    show_default=True, help="What the app logs (other libraries: warnings only).",
)  # fmt: skip
@click.option("--log-json", is_flag=True, help="Log JSON lines (time, level, logger, message).")
def main(log_level: str, log_json: bool) -> None:
    """fhir_burnout: the burn-out programme as FHIR resources."""
    # One place for every command (fhir_burnout/_logging.py); serve hands it to gunicorn.
    configure_logging(log_level.lower(), json_lines=log_json)


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
    counts = {a: sum(1 for s in steps if s.action == a) for a in ("create", "update", "unchanged")}
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
    import json  # noqa: PLC0415

    from fhir_burnout.fhir import FhirClient  # noqa: PLC0415 - only publish talks HTTP
    from fhir_burnout.koppeltaal._backend import (  # noqa: PLC0415
        koppeltaal_token_source,
        token_endpoint,
    )
    from fhir_burnout.koppeltaal._profiles import (  # noqa: PLC0415
        canonical_base,
        kt2_activity_definitions,
        kt2_endpoint,
    )
    from fhir_burnout.koppeltaal._publish import (  # noqa: PLC0415
        NEW_ENDPOINT,
        KoppeltaalStep,
        publish_koppeltaal,
    )
    from fhir_burnout.koppeltaal._trace import TracedSession, traced  # noqa: PLC0415
    from fhir_burnout.settings import Settings  # noqa: PLC0415

    backend, base_url = None, None
    if config_path is None and os.environ.get("FHIR_BURNOUT_CONFIG"):
        # Read here, not as the option's envvar: smart mode never looks at it.
        config_path = Path(os.environ["FHIR_BURNOUT_CONFIG"])
    if config_path is not None:
        try:
            settings = Settings.from_file(config_path)
        except FhirBurnoutError as exc:
            raise click.ClickException(str(exc)) from None
        base_url = settings.base_url
        kt = [b for b in settings.backends if b.mode == "koppeltaal"]
        if server is None and kt:
            server = kt[0].fhir_base
        backend = next(
            (b for b in settings.backends if server and b.fhir_base == server.rstrip("/")), None
        )
    app_url = app_url or base_url
    client_id = client_id or (backend.client_id if backend else None)
    if not app_url or not client_id:
        raise click.UsageError("--mode koppeltaal needs --app-url and --client-id (or --config)")
    try:
        if server is None:
            if not dry_run:
                raise click.UsageError("--server is required (or --dry-run, or --config)")
            endpoint = kt2_endpoint(app_url, canonical_base(resources), client_id)
            click.echo(f"POST Endpoint  {endpoint['address']}")
            definitions = kt2_activity_definitions(
                resources, endpoint=NEW_ENDPOINT, publisher_id=client_id
            )
            for definition in definitions:
                click.echo(f"POST ActivityDefinition  {definition['url']}")
            click.echo(f"{1 + len(definitions)} resources (unless already on the server)")
            return
        jwk = (
            json.loads(private_key.read_text(encoding="utf-8"))
            if private_key
            else (backend.private_jwk if backend else None)
        )
        if token:
            client = FhirClient(server, token=token, session=TracedSession())
        elif jwk is None:
            raise click.UsageError("--mode koppeltaal needs --private-key (or --config, --token)")
        else:
            source = koppeltaal_token_source(
                token_endpoint(server, session=TracedSession()),
                client_id,
                jwk,
                alg=alg or (backend.alg if backend else None),
                session=TracedSession(),
            )
            client = FhirClient(server, token_source=source, session=TracedSession())

        def show(step: KoppeltaalStep) -> None:
            click.echo(f"{step.action:9} {step.resource_type}/{step.id or '(new)'}  {step.key}")

        with client, traced():
            steps = publish_koppeltaal(
                resources,
                client,
                base_url=app_url,
                publisher_id=client_id,
                dry_run=dry_run,
                progress=show,
            )
    except (FhirBurnoutError, ValueError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    counts = {a: sum(1 for s in steps if s.action == a) for a in ("create", "update", "unchanged")}
    click.echo(", ".join(f"{n} {a}" for a, n in counts.items()))


@main.command()
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


@main.command()
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
    from fhir_burnout.settings import Settings  # noqa: PLC0415

    try:
        settings = Settings.from_file(config_path)
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


@main.command()
@config_option
def doctor(config_path: Path) -> None:
    """Check every [[ehr]] end to end and say, in plain words, what works and what is
    missing (docs/launch.md); exit code 0 only when all is well."""
    import requests  # noqa: PLC0415

    from fhir_burnout._doctor import report  # noqa: PLC0415
    from fhir_burnout.settings import Settings  # noqa: PLC0415

    try:
        settings = Settings.from_file(config_path)
    except FhirBurnoutError as exc:
        raise click.ClickException(str(exc)) from None
    with requests.Session() as session:
        lines, healthy = report(settings, session)
    click.echo("\n".join(lines))
    sys.exit(0 if healthy else 1)


@main.command()
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
    from fhir_burnout.smart_launch._keys import generate_key  # noqa: PLC0415

    kid = generate_key(keys_dir, alg)
    click.echo(
        f"new {alg} key {kid} in {keys_dir}; the app publishes it at /.well-known/jwks.json"
    )


@main.command("safety-doc")
@_root_option
@click.option("--write", is_flag=True, help="Rewrite the table in docs/clinical-safety.md.")
def safety_doc(root: Path | None, write: bool) -> None:
    """Print (or --write) the safety rule table of docs/clinical-safety.md from the rules."""
    from fhir_burnout._safety_doc import document_path, rules_table, with_table  # noqa: PLC0415
    from fhir_burnout.resources import load_safety_rules  # noqa: PLC0415

    root = _resolve_root(root)
    programme = _load_valid(root)
    rules, _ = load_safety_rules(root, programme.canonical)
    if not write:
        click.echo(rules_table(rules), nl=False)
        return
    path = document_path(root)
    path.write_text(with_table(path.read_text(encoding="utf-8"), rules), encoding="utf-8")
    click.echo(f"wrote {path}")


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
@click.option("--port", type=int, default=0, help="Sandbox port (default: a free one).")
@click.option("--app-port", type=int, default=0, help="App port (default: a free one).")
@click.option(
    "--info",
    "info_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the sandbox info plus app_url and app_client_id here.",
)
@click.option("--exit", "exit_after", is_flag=True, help="Stop everything after publishing.")
@click.option(
    "--work-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".demo"),
    show_default=True,
    help="Where the demo keeps the app's config, database and keys.",
)
def demo(  # noqa: PLR0917 - click passes each option
    root: Path | None,
    out: Path,
    lang: str,
    port: int,
    app_port: int,
    info_file: Path | None,
    exit_after: bool,
    work_dir: Path,
) -> None:
    """Build the package, start the sandbox EHR, publish into it and run the app trusting it."""
    from fhir_burnout.demo import run_demo  # noqa: PLC0415

    programme = _load_valid(_resolve_root(root))
    resources = build_resources(programme)
    written = write_package(programme, resources, out)
    click.echo(render_summary(programme, lang))
    click.echo("")
    click.echo(f"The FHIR package ({written.resources} resources) was written to:")
    for path in (written.tgz, written.bundle_json, written.bundle_xml):
        click.echo(f"  {path.resolve()}")
    click.echo("")
    try:
        run_demo(
            resources,
            folder=work_dir,
            echo=click.echo,
            wait=None if exit_after else _wait_for_interrupt,
            sandbox_port=port,
            app_port=app_port,
            info_file=info_file,
        )
    except FhirBurnoutError as exc:
        raise click.ClickException(str(exc)) from None
    if not exit_after:
        click.echo("Stopped.")


def _wait_for_interrupt() -> None:
    import signal  # noqa: PLC0415

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # SIGTERM must unwind too, so the sandbox child is stopped, not orphaned; and SIGINT
    # even when a shell started us in the background with it ignored.
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        while True:
            signal.pause()
    except KeyboardInterrupt:
        return


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


@main.group()
def questionnaire() -> None:
    """The questionnaire engine for authors and integrators (JSON or XML files)."""


def _read_fhir(path: Path) -> dict[str, Any]:
    import json  # noqa: PLC0415

    from fhir_burnout.fhir import FhirXmlError, resource_from_xml  # noqa: PLC0415

    data = path.read_bytes()
    try:
        if data.lstrip().startswith(b"<"):
            return resource_from_xml(data)
        return dict(json.loads(data))
    except (FhirXmlError, ValueError) as exc:
        raise click.ClickException(f"{path}: not a FHIR resource in JSON or XML ({exc})") from None


def _form(path: Path) -> Any:
    from fhir_burnout.questionnaire import QuestionnaireError, load_form  # noqa: PLC0415

    try:
        return load_form(_read_fhir(path))
    except QuestionnaireError as exc:
        for link, text in exc.problems:
            click.echo(f"{path}: {link or '(questionnaire)'}: {text}", err=True)
        sys.exit(1)


@questionnaire.command("check")
@click.argument("questionnaire_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def questionnaire_check(questionnaire_file: Path) -> None:
    """Exit 0 when the engine can render the questionnaire; else print every problem."""
    form = _form(questionnaire_file)
    unsupported = [i for i in form.walk() if i.unsupported or i.options_unavailable]
    for item in unsupported:
        click.echo(f"note: {item.link_id}: {item.unsupported or item.options_unavailable}")
    click.echo(f"ok: {sum(1 for _ in form.walk())} items")


@questionnaire.command("validate")
@click.argument("questionnaire_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("response_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def questionnaire_validate(questionnaire_file: Path, response_file: Path) -> None:
    """Print an OperationOutcome with one issue per problem; exit 1 when there are errors."""
    import json  # noqa: PLC0415

    from fhir_burnout.questionnaire import validate as validate_response  # noqa: PLC0415

    issues = validate_response(_form(questionnaire_file), _read_fhir(response_file))
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [i.issue() for i in issues]
        or [{"severity": "information", "code": "informational", "diagnostics": "no problems"}],
    }
    click.echo(json.dumps(outcome, indent=2, ensure_ascii=False))
    if any(i.severity == "error" for i in issues):
        sys.exit(1)


@questionnaire.command("score")
@click.argument("questionnaire_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("response_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--lang", default="nl", show_default=True)
def questionnaire_score(questionnaire_file: Path, response_file: Path, lang: str) -> None:
    """Print the scores and their bands as JSON."""
    import json  # noqa: PLC0415

    from fhir_burnout.questionnaire import load_form, score  # noqa: PLC0415

    form = load_form(_read_fhir(questionnaire_file), lang=lang)
    scores = score(form, _read_fhir(response_file))
    data = [
        {
            "linkId": s.link_id,
            "value": None if s.value is None else float(s.value),
            "band": s.band,
            "label": s.label,
            # in a repeating group: which occurrence, from the outside in
            **({"instance": [[g, n] for g, n in s.instance]} if s.instance else {}),
        }
        for s in scores
    ]
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


@main.group()
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
    from fhir_burnout.settings import Settings  # noqa: PLC0415
    from fhir_burnout.sync import EhrClients  # noqa: PLC0415

    try:
        settings = Settings.from_file(config_path)
    except FhirBurnoutError as exc:
        raise click.ClickException(str(exc)) from None
    wanted = fhir_base.rstrip("/") if fhir_base else None
    backends = [
        (b.fhir_base, practice)
        for b in settings.backends
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


register_sync_commands(main, _resolve_root)
