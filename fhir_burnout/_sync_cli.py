"""``fhir-burnout db | enrol | worker | sync``: the programme's state and its way to the EHR."""

from __future__ import annotations

import json
import logging
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from fhir_burnout.db import create_db_engine, upgrade
from fhir_burnout.errors import FhirBurnoutError
from fhir_burnout.settings import Settings
from fhir_burnout.sync import EhrClients

if TYPE_CHECKING:
    from fhir_burnout.referral import ReferralPoller

log = logging.getLogger(__name__)

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


def _definitions(root: Path) -> Any:
    """The programme as built from the content (``fhir-burnout validate`` checks it fully)."""
    from fhir_burnout.resources import build_resources, load_programme  # noqa: PLC0415
    from fhir_burnout.workflow import Definitions  # noqa: PLC0415

    programme, problems = load_programme(root)
    if problems or programme is None:
        raise click.ClickException(f"{root}: the content has problems; run fhir-burnout validate")
    return Definitions.from_resources(build_resources(programme))


def _referral_poller(
    settings: Settings, engine: Any, clients: EhrClients, resolve_root: Any
) -> ReferralPoller | None:
    """The referral poll for the EHRs with a practice (None when there are none)."""
    if not any(b.practice for b in settings.backends):
        return None
    from fhir_burnout.referral import ReferralPoller  # noqa: PLC0415

    definitions = _definitions(settings.content_root or resolve_root(None))
    return ReferralPoller.from_settings(engine, clients.get, definitions, settings)


def _koppeltaal(settings: Settings, engine: Any) -> tuple[Any, Any] | None:
    """The outbox delivery and the FHIR clients for the Koppeltaal domains (None: none)."""
    if not any(b.mode == "koppeltaal" for b in settings.backends):
        return None
    from fhir_burnout.koppeltaal._outbox import KoppeltaalClients, deliver_for  # noqa: PLC0415

    clients = KoppeltaalClients(settings)
    return deliver_for(settings, engine, clients.get), clients


def _koppeltaal_poller(settings: Settings, engine: Any, clients: Any, resolve_root: Any) -> Any:
    """The poll of new Tasks on the Koppeltaal domains (when notified, and on the interval)."""
    from fhir_burnout.koppeltaal._notify import KoppeltaalPoller  # noqa: PLC0415

    definitions = _definitions(settings.content_root or resolve_root(None))
    return KoppeltaalPoller.from_settings(engine, clients.get, definitions, settings)


def _clients(settings: Settings, engine: Any) -> EhrClients:
    """The worker's FHIR clients: Backend Services, and for EHRs with ``writes = "user"``
    the tokens of the people whose actions caused the writes (their launch sessions)."""
    from fhir_burnout.web._session_tokens import SessionTokens  # noqa: PLC0415
    from fhir_burnout.web._sessions import SessionStore  # noqa: PLC0415

    store = SessionStore(engine, settings.token_key)
    return EhrClients(settings, SessionTokens(store, settings.ehrs))


def _map_every_table() -> None:
    """Import every table and let SQLAlchemy configure its mappers, once, before the
    worker's threads start. A thread that imports a table module while another queries
    catches the mappers half-way (a relationship naming a class not defined yet), and
    every query of that process fails the same way from then on."""
    from sqlalchemy.orm import configure_mappers  # noqa: PLC0415

    import fhir_burnout.koppeltaal._tables  # noqa: PLC0415
    import fhir_burnout.referral._tables  # noqa: PLC0415
    import fhir_burnout.sync._tables  # noqa: PLC0415
    import fhir_burnout.web._sessions  # noqa: PLC0415
    import fhir_burnout.workflow._tables  # noqa: F401, PLC0415

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
    tokens: nothing is kept longer than it can serve (``web._sessions.purge``)."""
    from fhir_burnout.web._sessions import purge  # noqa: PLC0415 - imported already

    while not stop.is_set():
        try:
            pending, sessions = purge(engine)
            if pending or sessions:
                log.info("deleted %d ended session(s), %d pending launch(es)", sessions, pending)
        except SQLAlchemyError as exc:
            log.warning("deleting ended sessions failed (%s)", type(exc).__name__)
        stop.wait(every)


def register(main: click.Group, resolve_root: Any) -> None:
    """Add the commands to the ``fhir-burnout`` group."""

    @main.group("db")
    def db_group() -> None:
        """The app's database."""

    @db_group.command("upgrade")
    @config_option
    def db_upgrade(config_path: Path) -> None:
        """Apply the migrations the database lacks (every process also does this at start)."""
        from fhir_burnout.db import current_revision  # noqa: PLC0415

        engine = _engine(_settings(config_path))
        click.echo(f"database at migration {current_revision(engine)}")
        engine.dispose()

    @main.command("enrol")
    @config_option
    @click.option("--patient", required=True, help="The Patient's id on the EHR.")
    @click.option("--track", required=True, help="standard, waiting-list or after-care.")
    @click.option("--ehr", "fhir_base", help="The EHR's FHIR base (default: the first).")
    @click.option("--author", help="Who enrols, e.g. Practitioner/123 (default: the app).")
    @click.option("--language", default="nl", show_default=True)
    @click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=None)
    @click.option("--json", "as_json", is_flag=True, help="Print the enrolment as JSON.")
    def enrol_command(  # noqa: PLR0917 - click passes each option
        config_path: Path,
        patient: str,
        track: str,
        fhir_base: str | None,
        author: str | None,
        language: str,
        root: Path | None,
        as_json: bool,
    ) -> None:
        """Enrol a patient in a track; the EHR gets the plan through the outbox."""
        from sqlalchemy.orm import Session  # noqa: PLC0415

        from fhir_burnout.workflow import enrol  # noqa: PLC0415

        settings = _settings(config_path)
        base = fhir_base or settings.default_ehr
        if not base:
            raise click.ClickException("no EHR configured: add an [[ehr]] to the config")
        practice = settings.backend(base).practice if settings.backends else None
        definitions = _definitions(resolve_root(root))
        engine = _engine(settings)
        try:
            with Session(engine) as db, db.begin():
                enrolment = enrol(
                    db, definitions, fhir_base=base, patient=patient, track=track,
                    author=author, practice=practice, language=language,
                )  # fmt: skip
                summary: dict[str, Any] = {
                    "enrolment": enrolment.key,
                    "patient": patient,
                    "track": track,
                    "ehr": base,
                    "phases": {p.code: p.status for p in enrolment.phases},
                    "tasks": {t.action_id: t.status for t in enrolment.tasks},
                }
        except FhirBurnoutError as exc:
            raise click.ClickException(str(exc)) from None
        finally:
            engine.dispose()
        if as_json:
            click.echo(json.dumps(summary, indent=2))
            return
        click.echo(f"Enrolled Patient/{patient} in {track}: {summary['enrolment']}")
        ready = [a for a, s in summary["tasks"].items() if s == "ready"]
        click.echo(f"  ready now: {', '.join(ready)}")
        click.echo("  the EHR receives the plan as soon as a worker runs (fhir-burnout worker)")

    @main.command("worker")
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
        from fhir_burnout.sync import Worker  # noqa: PLC0415

        settings = _settings(config_path)
        try:
            settings.check_safety()  # signals the worker delivers need their owner
        except FhirBurnoutError as exc:
            raise click.ClickException(str(exc)) from None
        engine = _engine(settings)
        clients = _clients(settings, engine)
        kt = _koppeltaal(settings, engine)  # Koppeltaal domains: their own delivery and poll
        workers = [
            Worker(engine, clients.get, lease=lease, batch=batch,
                   deliver_for=kt[0] if kt else None, access_for=clients.access)
            for _ in range(max(1, threads))
        ]  # fmt: skip
        for backend in settings.backends:
            if backend.mode == "smart":  # say how each EHR gets its writes (issue 17)
                click.echo(f"worker: {backend.fhir_base} {clients.describe(backend.fhir_base)}",
                           err=True)  # fmt: skip
        if once:
            while sum(w.run_once() for w in workers):
                pass
            clients.close()
            engine.dispose()
            return
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        runners = [
            threading.Thread(target=w.run, args=(stop,), kwargs={"idle": idle}) for w in workers
        ]
        click.echo(f"worker: {len(runners)} thread(s) delivering; stop with Ctrl-C", err=True)
        poller = _referral_poller(settings, engine, clients, resolve_root)
        if poller is not None:
            runners.append(
                threading.Thread(target=poller.run, args=(stop,), kwargs={"idle": idle})
            )
            every = settings.referral_poll_seconds
            click.echo(
                f"worker: polling the referrals of {len(poller.ehrs)} EHR(s) when notified"
                + (f" and every {every:g} s" if every > 0 else ""),
                err=True,
            )
        runners.append(threading.Thread(target=_purge_sessions, args=(stop, engine)))
        try:
            definitions = _definitions(settings.content_root or resolve_root(None))
        except (click.ClickException, FhirBurnoutError) as exc:
            log.warning("the weekly measures are not closed: %s", exc)
        else:
            runners.append(
                threading.Thread(target=_close_measures, args=(stop, engine, definitions))
            )
        if kt is not None:
            kt_poller = _koppeltaal_poller(settings, engine, kt[1], resolve_root)
            runners.append(
                threading.Thread(target=kt_poller.run, args=(stop,), kwargs={"idle": idle})
            )
            click.echo(f"worker: polling {len(kt_poller.domains)} Koppeltaal domain(s)", err=True)
        _map_every_table()
        for runner in runners:
            runner.start()
        for runner in runners:
            runner.join()
        clients.close()
        engine.dispose()

    @main.group("sync")
    def sync_group() -> None:
        """The outbox: what is waiting for the EHR, and dead letters."""

    @sync_group.command("status")
    @config_option
    @click.option("--json", "as_json", is_flag=True)
    def sync_status(config_path: Path, as_json: bool) -> None:
        """Queue depth, the oldest entry's age, how each EHR gets its writes, what cannot be
        delivered and why, and every dead letter with the EHR's message."""
        from fhir_burnout.sync import WAITING, queue_status  # noqa: PLC0415

        settings = _settings(config_path)
        engine = _engine(settings)
        status = queue_status(engine)
        engine.dispose()
        clients = EhrClients(settings)
        ehrs: list[dict[str, Any]] = [
            {
                "fhir_base": b.fhir_base,
                "writes": b.writes,
                "how": clients.describe(b.fhir_base),
                "waiting": [
                    {"reason": w.reason, "why": WAITING.get(w.reason, w.reason),
                     "count": w.count, "status": w.status, "error": w.error}
                    for w in status.blocked if w.fhir_base == b.fhir_base
                ],
            }
            for b in settings.backends
            if b.mode == "smart"
        ]  # fmt: skip
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "pending": status.pending,
                        "leased": status.leased,
                        "delivered": status.delivered,
                        "dead": status.dead,
                        "oldest_waiting_seconds": status.oldest_waiting_seconds,
                        "ehrs": ehrs,
                        "dead_letters": [
                            {"id": i, "partition": p, "status": s, "error": e}
                            for i, p, s, e in status.dead_letters
                        ],
                    },
                    indent=2,
                )
            )
            return
        age = status.oldest_waiting_seconds
        click.echo(
            f"waiting: {status.pending} pending, {status.leased} being delivered; "
            f"delivered: {status.delivered}; dead letters: {status.dead}"
        )
        click.echo(f"oldest waiting entry: {'none' if age is None else f'{age:.0f} s old'}")
        for ehr in ehrs:
            click.echo(f"EHR {ehr['fhir_base']}: {ehr['how']}")
            for w in ehr["waiting"]:
                click.echo(f"  {w['count']} cannot be delivered: {w['why']}")
                click.echo(f"    last error: {w['error']}")
        for entry_id, partition, http, error in status.dead_letters:
            click.echo(f"  dead letter {entry_id} ({partition}): {http}: {error}")
            click.echo(f"    fix the cause, then: fhir-burnout sync retry {entry_id}")

    @sync_group.command("retry")
    @config_option
    @click.argument("entry_id", type=int)
    def sync_retry(config_path: Path, entry_id: int) -> None:
        """Send a dead letter again now."""
        import getpass  # noqa: PLC0415

        from sqlalchemy.orm import Session  # noqa: PLC0415

        from fhir_burnout.sync import requeue  # noqa: PLC0415

        engine = _engine(_settings(config_path))
        try:
            with Session(engine) as db, db.begin():
                requeue(db, entry_id, by=f"{getpass.getuser()} (fhir-burnout sync retry)")
        except FhirBurnoutError as exc:
            raise click.ClickException(str(exc)) from None
        finally:
            engine.dispose()
        click.echo(f"outbox entry {entry_id} is queued again")
