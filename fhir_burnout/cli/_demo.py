"""``fhir-burnout demo``: the package, the sandbox EHR and the app, running together."""

from __future__ import annotations

from pathlib import Path

import click

from fhir_burnout.cli._content import render_summary
from fhir_burnout.cli._options import _load_valid, _resolve_root, _root_option
from fhir_burnout.errors import FhirBurnoutError
from fhir_burnout.resources import build_resources, write_package


@click.command()
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
    from fhir_burnout.demo import run_demo, step  # noqa: PLC0415

    with step(click.echo, "Building the package"):
        programme = _load_valid(_resolve_root(root))
        resources = build_resources(programme)
        written = write_package(programme, resources, out)
    click.echo("")
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
