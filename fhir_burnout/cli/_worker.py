"""``fhir-burnout worker``: deliver the outbox, poll the EHRs and keep the tables tidy.

The command builds the FHIR clients, one delivery thread per ``--threads``, the referral
and Koppeltaal polls, the session purge and the weekly measures' close, and runs them all
until SIGINT or SIGTERM (``--once``: delivers what is due, then stops).
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from fhir_burnout.cli._options import (
    _definitions,
    _ehr_clients,
    _engine,
    _resolve_root,
    _settings,
    config_option,
)
from fhir_burnout.errors import FhirBurnoutError
from fhir_burnout.integration import EhrClients
from fhir_burnout.settings import Settings
from fhir_burnout.sync import Worker

if TYPE_CHECKING:
    from fhir_burnout.integration import Poller

log = logging.getLogger(__name__)


def _poller(settings: Settings, engine: Any, clients: EhrClients) -> Poller | None:
    """One poller for every feed the config has (the referrals of each SMART EHR with a
    practice, the Tasks of each Koppeltaal domain); None when there is none."""
    from fhir_burnout.integration import Poller, watched  # noqa: PLC0415
    from fhir_burnout.koppeltaal import KoppeltaalFeed  # noqa: PLC0415
    from fhir_burnout.referral import ReferralFeed  # noqa: PLC0415

    if not watched(settings):
        return None
    definitions = _definitions(settings.content_root or _resolve_root(None))
    referrals = ReferralFeed.from_settings(definitions, settings)
    tasks = KoppeltaalFeed.from_settings(definitions, settings)
    feeds = [feed for feed in (referrals, tasks) if feed.ehrs]
    return Poller(engine, clients.get, *feeds, interval=settings.referral_poll_seconds)


def _results_renderer(settings: Settings) -> tuple[Any, Any]:
    """Where a Koppeltaal domain takes results: the web app's renderer of the results
    document (rendered when it is published: draft T029) and the engine of that app, to
    dispose of at the end; else (None, None)."""
    if not any(d.results for d in settings.ehrs_in("koppeltaal")):
        return None, None
    from fhir_burnout.web import create_app, results_renderer  # noqa: PLC0415

    app = create_app(settings)
    return results_renderer(app), app.extensions["fhir_burnout"].engine


def _koppeltaal(settings: Settings, engine: Any, clients: EhrClients, render: Any = None) -> Any:
    """The outbox delivery for the Koppeltaal domains, through the shared client pool
    (None: there are none), with ``render`` for the results document."""
    if not settings.ehrs_in("koppeltaal"):
        return None
    from fhir_burnout.koppeltaal import deliver_for  # noqa: PLC0415

    return deliver_for(settings, engine, clients.get, render=render)


def _clients(settings: Settings, engine: Any) -> EhrClients:
    """The worker's FHIR clients: Backend Services, and for EHRs with ``writes = "user"``
    the tokens of the people whose actions caused the writes (their launch sessions)."""
    from fhir_burnout.web import SessionStore, SessionTokens  # noqa: PLC0415

    store = SessionStore(engine, settings.token_key)
    return _ehr_clients(settings, SessionTokens(store, settings.ehrs))


def _map_every_table() -> None:
    """Import every table and let SQLAlchemy configure its mappers, once, before the
    worker's threads start. A thread that imports a table module while another queries
    catches the mappers half-way (a relationship naming a class not defined yet), and
    every query of that process fails the same way from then on."""
    from sqlalchemy.orm import configure_mappers  # noqa: PLC0415

    # Each package's __init__ imports its tables (web's: the sessions).
    import fhir_burnout.integration  # noqa: PLC0415
    import fhir_burnout.koppeltaal  # noqa: PLC0415
    import fhir_burnout.referral  # noqa: PLC0415
    import fhir_burnout.sync  # noqa: PLC0415
    import fhir_burnout.web  # noqa: PLC0415
    import fhir_burnout.workflow  # noqa: F401, PLC0415

    configure_mappers()


#: How often the worker closes the weekly measures of tracks that have run their time.
MEASURES_EVERY = 3600.0


def _close_measures(
    stop: threading.Event, engine: Any, definitions: Any, every: float = MEASURES_EVERY
) -> None:
    """Now and then, close the weekly check-ins of tracks that have run their time and ask
    the care professional to finish or extend them (``workflow.end_measures``)."""
    from fhir_burnout.workflow import end_measures  # noqa: PLC0415 - imported already

    while not stop.is_set():
        try:
            with Session(engine) as db, db.begin():
                closed = end_measures(db, definitions)
            if closed:
                log.info("closed the weekly measures of %d track(s)", len(closed))
        except SQLAlchemyError as exc:
            # The type only: a database error's text can quote a row's values.
            log.warning("closing the weekly measures failed (%s); trying again later",
                        type(exc).__name__)  # fmt: skip
        stop.wait(every)


#: How often the worker deletes ended sessions and pending launches nobody came back for.
PURGE_EVERY = 600.0


def _purge_sessions(stop: threading.Event, engine: Any, every: float = PURGE_EVERY) -> None:
    """Now and then, delete sign-ins that can no longer be used, with their encrypted
    tokens, and results documents whose retention ended (with their DocumentReferences):
    nothing is kept longer than it can serve (``web._sessions.purge``,
    ``koppeltaal.expire_results``)."""
    from fhir_burnout.koppeltaal import expire_results  # noqa: PLC0415 - imported already
    from fhir_burnout.web import purge  # noqa: PLC0415 - imported already

    while not stop.is_set():
        try:
            pending, sessions = purge(engine)
            if pending or sessions:
                log.info("deleted %d ended session(s), %d pending launch(es)", sessions, pending)
            expired = expire_results(engine)
            if expired:
                log.info("deleted %d results document version(s) past retention", expired)
        except SQLAlchemyError as exc:
            log.warning("deleting ended sessions failed (%s)", type(exc).__name__)
        stop.wait(every)


@click.command("worker")
@config_option
@click.option("--once", is_flag=True, help="Deliver what is due now, then stop.")
@click.option("--threads", type=int, default=1, show_default=True)
@click.option("--lease", type=float, default=60.0, show_default=True, help="Seconds.")
@click.option("--batch", type=int, default=10, show_default=True)
@click.option("--idle", type=float, default=1.0, show_default=True, help="Poll interval.")
def worker_command(  # noqa: PLR0917 - click passes each option
    config_path: Path, once: bool, threads: int, lease: float, batch: int, idle: float
) -> None:
    """Deliver the outbox to the EHRs until stopped (SIGINT or SIGTERM)."""
    settings = _settings(config_path)
    try:
        settings.check_safety()  # signals the worker delivers need their owner
    except FhirBurnoutError as exc:
        raise click.ClickException(str(exc)) from None
    engine = _engine(settings)
    clients = _clients(settings, engine)
    render, render_engine = _results_renderer(settings)
    kt = _koppeltaal(settings, engine, clients, render)  # Koppeltaal domains: their own delivery
    workers = [
        Worker(engine, clients.get, lease=lease, batch=batch,
               deliver_for=kt, access_for=clients.access)
        for _ in range(max(1, threads))
    ]  # fmt: skip
    for backend in settings.ehrs:
        if backend.mode == "smart":  # say how each EHR gets its writes (issue 17)
            click.echo(f"worker: {backend.fhir_base} {clients.describe(backend.fhir_base)}",
                       err=True)  # fmt: skip
    if once:
        while sum(w.run_once() for w in workers):
            pass
    else:
        _run_until_stopped(settings, engine, clients, kt, workers, idle=idle)
    clients.close()
    engine.dispose()
    if render_engine is not None:
        render_engine.dispose()


def _run_until_stopped(
    settings: Settings,
    engine: Any,
    clients: EhrClients,
    kt: Any,
    workers: list[Worker],
    *,
    idle: float,
) -> None:
    """Run the delivery threads and the worker's other loops until SIGINT or SIGTERM."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    runners = [
        threading.Thread(target=w.run, args=(stop,), kwargs={"idle": idle}) for w in workers
    ]
    click.echo(f"worker: {len(runners)} thread(s) delivering; stop with Ctrl-C", err=True)
    runners += _poll_threads(settings, engine, clients, stop, idle=idle)
    runners.append(threading.Thread(target=_purge_sessions, args=(stop, engine)))
    runners += _measures_threads(settings, engine, stop)
    _map_every_table()  # before any thread starts (see there)
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join()


def _poll_threads(
    settings: Settings,
    engine: Any,
    clients: EhrClients,
    stop: threading.Event,
    *,
    idle: float,
) -> list[threading.Thread]:
    """The poller's thread, when an EHR has a feed; says what it polls."""
    poller = _poller(settings, engine, clients)
    if poller is None:
        return []
    every = settings.referral_poll_seconds
    for feed in poller.feeds:
        click.echo(
            f"worker: polling the {feed.name} of {len(feed.ehrs)} EHR(s) when notified"
            + (f" and every {every:g} s" if every > 0 else ""),
            err=True,
        )
    return [threading.Thread(target=poller.run, args=(stop,), kwargs={"idle": idle})]


def _measures_threads(
    settings: Settings, engine: Any, stop: threading.Event
) -> list[threading.Thread]:
    """The weekly measures' close, unless the content cannot be read (then a warning: the
    worker still delivers)."""
    try:
        definitions = _definitions(settings.content_root or _resolve_root(None))
    except (click.ClickException, FhirBurnoutError) as exc:
        log.warning("the weekly measures are not closed: %s", exc)
        return []
    return [threading.Thread(target=_close_measures, args=(stop, engine, definitions))]
