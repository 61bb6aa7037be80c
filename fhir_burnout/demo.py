"""The demo: the sandbox EHR, the programme published into it, and the app trusting it.

What ``make demo`` runs (through ``fhir-burnout demo``). Everything runs on this machine on
127.0.0.1; the app's config, database and keys go to a work folder.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from cryptography.fernet import Fernet
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

from fhir_burnout._demo_history import DAAN, HISTORIES, play
from fhir_burnout.errors import FhirBurnoutError
from fhir_burnout.integration import REFERRALS, EhrClients, Poller, backend_client, watched
from fhir_burnout.referral import (
    TRIAGE,
    ReferralFeed,
    ReferralRow,
    accept_referral,
    subscribe_referrals,
    waiting_for_triage,
)
from fhir_burnout.resources import publish
from fhir_burnout.sandbox import SandboxInfo, start_sandbox
from fhir_burnout.settings import Settings
from fhir_burnout.sync import Worker
from fhir_burnout.web import create_app
from fhir_burnout.workflow import EnrolmentRow, InvitationRow

APP_CLIENT_ID = "fhir-burnout"
DEMO_PRACTICE = "Organization/practice-1"


class _Deferred:
    """A WSGI app that answers 503 until the real app is set (the port is bound first)."""

    def __init__(self) -> None:
        self.app: Callable[..., Iterable[bytes]] | None = None

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        if self.app is None:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"starting"]
        return self.app(environ, start_response)


#: The sandbox's practice (its seeded Organization).
PRACTICE_NAME = "Oefenpraktijk De Zandbak"


def _origin(url: str) -> str:
    """The scheme, host and port of ``url``."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def write_config(folder: Path, app_url: str, info: SandboxInfo) -> Path:
    """A fhir-burnout.toml that trusts the sandbox (public client, PKCE)."""
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "fhir-burnout.toml"
    lines = [
        f"base_url = {json.dumps(app_url)}",
        f"database_url = {json.dumps('sqlite:///' + str((folder / 'demo.db').resolve()))}",
        f"secret_key = {json.dumps(secrets.token_urlsafe(32))}",
        f"token_key = {json.dumps(Fernet.generate_key().decode())}",
        'keys_dir = "keys"',
        f"practice_name = {json.dumps(PRACTICE_NAME)}",
        "",
        # What the demo practice promises about safety signals; the app refuses to start
        # without it and without an owner per [[ehr]].
        "[safety]",
        'promise_nl = "op werkdagen binnen één werkdag"',
        'promise_en = "within one working day, on working days"',
        "",
        "[[ehr]]",
        f"fhir_base = {json.dumps(info.fhir_base)}",
        f"client_id = {json.dumps(APP_CLIENT_ID)}",
        'auth_method = "none"',
        'practice = "Organization/practice-1"',
        # Named to waiting-list clients (whom to call while they wait); as in the sandbox.
        'practice_name = "Oefenpraktijk De Zandbak"',
        'practice_phone = "+31 20 000 0000"',
        # The sandbox's POH-GGZ owns the signals of clients without their own care professional.
        'safety_owner = "PractitionerRole/role-prac-3"',
        # The launcher's chart page may show the app in an iframe (same site over http here,
        # so the session cookie stays Lax; a practice's EHR needs https: docs/embedding.md).
        f"frame_ancestors = [{json.dumps(_origin(info.launcher))}]",
        # The sync worker uses the sandbox's backend-services client and its key.
        'backend_client_id = "fhir-burnout-worker"',
        'backend_private_key = "keys/worker.jwk"',
    ]
    keys = folder / "keys"
    keys.mkdir(exist_ok=True)
    worker_key = keys / "worker.jwk"
    worker_key.write_text(json.dumps(info.client("fhir-burnout-worker")["private_keys"][0]))
    worker_key.chmod(0o600)
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    config.chmod(0o600)
    return config


def publish_into(info: SandboxInfo, resources: list[dict[str, Any]]) -> tuple[int, int]:
    """Publish the package with a backend-services token; (created, already there)."""
    worker = info.client("fhir-burnout-worker")
    key = worker["private_keys"][0]
    with backend_client(info.fhir_base, worker["client_id"], key, "system/*.cruds") as client:
        steps = publish(resources, client)
    created = sum(1 for s in steps if s.action == "create")
    return created, len(steps) - created


#: The client the demo's links open: Daan (pat-04), seven weeks in, in phase 2.
DEMO_CLIENT = DAAN.patient


def enrol_demo_patients(
    engine: Any,
    definitions: Any,
    fhir_base: str,
    names: dict[str, str] | None = None,
    *,
    today: date | None = None,
) -> list[str]:
    """Enrol the demo's clients, each with the weeks of history they have behind them
    (``_demo_history``), counted back from ``today``; one line about each."""
    today = today or date.today()
    lines = []
    for history in HISTORIES:
        with Session(engine) as db, db.begin():
            played = play(db, definitions, history, fhir_base=fhir_base, today=today)
        name = f" ({names[history.patient]})" if names and history.patient in names else ""
        weeks = history.days_ago // 7
        since = f"{weeks} week(s) in" if weeks else f"{history.days_ago} day(s) in"
        lines.append(
            f"{history.patient}{name}: {history.track}, {since}, {played.modules_done} module(s)"
            f" done, {played.answers} questionnaire(s), {played.look_backs} look-back(s)"
        )
    return lines


#: Seeded referrals the demo's care professional accepts at triage; the others wait for
#: triage on /practice, so the demo shows both.
DEMO_ACCEPTED = ("pat-07", "pat-10", "pat-13")


def triage_demo_referrals(engine: Any, definitions: Any, fhir_base: str) -> None:
    """The care professional (prac-1) accepts some of the seeded referrals at triage."""
    with Session(engine) as db, db.begin():
        for row in waiting_for_triage(db, fhir_base=fhir_base, practice=DEMO_PRACTICE):
            if row.patient in DEMO_ACCEPTED:
                accept_referral(
                    db, definitions, row.key, fhir_base=fhir_base, practice=DEMO_PRACTICE,
                    by="Practitioner/prac-1",
                )  # fmt: skip


def waiting_list(engine: Any, app_url: str, names: dict[str, str]) -> list[str]:
    """The referrals taken in: those waiting for triage, and those accepted, each with its
    client's invitation (code and link) and track."""
    with Session(engine) as db:
        rows = db.execute(
            select(ReferralRow.patient, ReferralRow.state, EnrolmentRow.track, InvitationRow.code)
            .outerjoin(EnrolmentRow, ReferralRow.enrolment_key == EnrolmentRow.key)
            .outerjoin(InvitationRow, InvitationRow.enrolment_key == EnrolmentRow.key)
            .order_by(ReferralRow.patient)
        ).all()
    lines = []
    for patient, state, track, code in rows:
        name = f" ({names[patient]})" if patient in names else ""
        if state == TRIAGE:
            lines.append(f"{patient}{name}: waiting for triage (aangemeld, nog niet beoordeeld)")
            continue
        invited = f", invitation {code}: {app_url}/invite/{code}" if code else ""
        lines.append(f"{patient}{name}: {track}{invited}")
    return lines


def _subscribe_referrals(settings: Settings, clients: EhrClients) -> str:
    """Subscribe to each EHR's referrals (what ``fhir-burnout referrals subscribe`` does)."""
    done = []
    for ehr in watched(settings, REFERRALS):
        if not ehr.practice:
            continue
        try:
            subscribed = subscribe_referrals(
                clients.get(ehr.fhir_base), base_url=settings.base_url,
                secret_key=settings.secret_key, practice=ehr.practice,
            )  # fmt: skip
        except FhirBurnoutError as exc:
            done.append(f"could not subscribe ({type(exc).__name__}); polled every 5 minutes")
            continue
        done.append(f"{subscribed.subscription} notifies the app of {subscribed.criteria}")
    return "; ".join(done) or "no practice configured"


def _tell_where_to_go(
    echo: Callable[[str], None],
    info: SandboxInfo,
    app_url: str,
    *,
    config: Path,
    subscribed: str,
    enrolled: list[str],
    waiting: list[str],
    names: dict[str, str],
) -> None:
    """Print the demo's addresses, what it enrolled and referred, and the launches to try."""
    echo(f"  FHIR server:          {info.fhir_base}")
    echo(f"  Authorization server: {info.issuer}")
    echo(f"  EHR launcher:         {info.launcher}")
    echo(f"  The app:              {app_url}  (config: {config})")
    echo("  Sync worker:          delivering the outbox to the sandbox EHR")
    echo(f"  Referrals:            {subscribed}")
    for line in enrolled:
        echo(f"  Enrolled: {line}")
    waits = sum("waiting for triage" in line for line in waiting)
    echo(
        f"  Referrals ({len(waiting)} from the seed, taken in by the poll; {waits} wait"
        " for triage on /practice, the others were accepted onto the waiting list):"
    )
    for line in waiting:
        echo(f"    {line}")
    seed = info.seed
    echo(
        f"  Seed: {len(seed.get('patients', []))} patients, "
        f"{len(seed.get('practitioners', []))} practitioners"
    )
    _tell_how_to_look(echo, info, app_url, name=names.get(DEMO_CLIENT, DEMO_CLIENT))


def _tell_how_to_look(
    echo: Callable[[str], None], info: SandboxInfo, app_url: str, *, name: str
) -> None:
    """The ways in, ending with the one to start with: what the client sees (a newcomer
    opens the address printed last), the care professional's view just above it."""
    launch = f"{info.launcher}?app={APP_CLIENT_ID}&patient={DEMO_CLIENT}"
    echo("")
    echo("Other ways in:")
    echo(
        f"  The EHR's launcher (pick a practitioner and a patient, press Launch): {info.launcher}"
    )
    echo(
        f"  The app inside the EHR's chart page (an iframe): {launch}&practitioner=prac-1&frame=1"
    )
    echo(f"  A client's own login, without the EHR (pick a patient): {app_url}/login")
    echo(f"  A referred client's invitation: {app_url}/invite (or a link above)")
    echo("")
    echo(f"What the care professional sees: {name}'s chart in the EHR, launched by prac-1")
    echo(f"(then {app_url}/practitioner and {app_url}/practice):")
    echo(f"  {launch}&practitioner=prac-1")
    echo("")
    weeks = DAAN.days_ago // 7
    echo(f"Start here, with what the client sees: {name}, {weeks} weeks into the programme,")
    echo("in phase 2, signed in from the patient portal:")
    echo(f"  {launch}&portal=1")


class Echo(Protocol):
    """How the demo prints: a line, or with ``nl=False`` the start of one (``click.echo``,
    which flushes each time, so a newcomer sees the demo working while it starts)."""

    def __call__(self, message: str, *, nl: bool = True) -> None: ...


class _Interrupted(logging.Handler):
    """Notes that a log line was written (to standard error, in the middle of a step's)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = False

    def emit(self, record: logging.LogRecord) -> None:
        self.seen = True


def _one_stream() -> bool:
    """Whether standard output and standard error end up in one place (a terminal, or one
    pipe), so that a log line lands in the middle of a step's line."""
    try:
        return os.path.sameopenfile(sys.stdout.fileno(), sys.stderr.fileno())
    except (AttributeError, OSError, ValueError):  # not a file (a test's runner)
        return False


@contextmanager
def step(echo: Echo, text: str) -> Iterator[None]:
    """Say what starts now ("Starting the app…") and, when it is done, how long it took: on
    the same line, or the whole line again when a log line came in between on the screen."""
    started = f"{text}\N{HORIZONTAL ELLIPSIS} "
    echo(started, nl=False)
    began = time.perf_counter()
    interrupted = _Interrupted()
    logging.getLogger().addHandler(interrupted)
    try:
        yield
    except BaseException:
        echo("failed")
        raise
    finally:
        logging.getLogger().removeHandler(interrupted)
    again = started if interrupted.seen and _one_stream() else ""
    echo(f"{again}done ({time.perf_counter() - began:.1f} s)")


@dataclass(frozen=True)
class _Started:
    """The app as the demo goes on with it: its config, settings, EHR clients, database
    engine and the programme's definitions."""

    config: Path
    settings: Settings
    clients: EhrClients
    engine: Any
    definitions: Any


def _start_app(
    deferred: _Deferred, folder: Path, app_url: str, info: SandboxInfo, stop: threading.Event
) -> _Started:
    """The app trusting the sandbox, on a fresh database, and the sync worker beside it."""
    # The sandbox forgets everything when it stops, so the app's state starts afresh
    # too: sessions and enrolments of an earlier demo point at an EHR that is gone.
    for stale in folder.glob("demo.db*"):
        stale.unlink()
    config = write_config(folder, app_url, info)
    settings = Settings.from_file(config)
    app = deferred.app = create_app(settings)
    # The sync worker, in this process: every write reaches the sandbox EHR.
    engine = app.extensions["fhir_burnout"]["engine"]
    clients = EhrClients(settings)
    worker = threading.Thread(target=Worker(engine, clients.get).run, args=(stop,), daemon=True)
    worker.start()
    return _Started(
        config, settings, clients, engine, app.extensions["fhir_burnout"]["definitions"]
    )


def run_demo(
    resources: list[dict[str, Any]],
    *,
    folder: Path,
    echo: Echo,
    wait: Callable[[], None] | None,
    sandbox_port: int = 0,
    app_port: int = 0,
    info_file: Path | None = None,
) -> None:
    """Start sandbox and app, publish, print where to go; then ``wait()`` (or stop at once).
    Each step says when it starts and how long it took."""
    deferred = _Deferred()
    server = make_server("127.0.0.1", app_port, deferred, threaded=True)
    app_url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stop = threading.Event()
    try:
        with ExitStack() as running:
            with step(echo, "Starting the sandbox EHR"):
                sandbox = start_sandbox(port=sandbox_port, app_url=app_url)
                info = running.enter_context(sandbox)
            with step(echo, "Publishing the programme into it"):
                created, existing = publish_into(info, resources)
            with step(echo, "Starting the app and its sync worker"):
                started = _start_app(deferred, folder, app_url, info, stop)
            config, settings, clients = started.config, started.settings, started.clients
            engine, definitions = started.engine, started.definitions
            names = {str(p["id"]): str(p["name"]) for p in info.seed.get("patients", [])}
            with step(echo, "Enrolling the demo clients, with their weeks of history"):
                enrolled = enrol_demo_patients(engine, definitions, info.fhir_base, names)
            with step(echo, "Taking in the sandbox's referrals"):
                # The sandbox notifies the app (a Subscription), and the poll takes them in
                # (at once for the seeded ones, then when notified or every 5 minutes).
                poller = Poller(
                    engine, clients.get, ReferralFeed.from_settings(definitions, settings),
                    interval=settings.referral_poll_seconds,
                )  # fmt: skip
                subscribed = _subscribe_referrals(settings, clients)
                poller.run_once()  # the seeded referrals, before the list below is printed
                triage_demo_referrals(engine, definitions, info.fhir_base)
            threading.Thread(target=poller.run, args=(stop,), daemon=True).start()
            waiting = waiting_list(engine, app_url, names)
            if info_file is not None:
                data = {**info.raw, "app_url": app_url, "app_client_id": APP_CLIENT_ID}
                info_file.write_text(json.dumps(data, indent=2), encoding="utf-8")
            echo(f"Published into the sandbox EHR: {created} created, {existing} already there.")
            _tell_where_to_go(
                echo, info, app_url, config=config, subscribed=subscribed, enrolled=enrolled,
                waiting=waiting, names=names,
            )  # fmt: skip
            if wait is not None:
                wait()
    finally:
        stop.set()
        server.shutdown()
        thread.join(timeout=10)
