"""The demo: the sandbox EHR, the programme published into it, and the app trusting it.

What ``make demo`` runs (through ``fhir-burnout demo``). Everything runs on this machine on
127.0.0.1; the app's config, database and keys go to a work folder.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from cryptography.fernet import Fernet
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

from fhir_burnout.errors import FhirBurnoutError
from fhir_burnout.fhir import FhirClient
from fhir_burnout.questionnaire import FormModel, build_response, load_form, score
from fhir_burnout.referral import (
    TRIAGE,
    ReferralPoller,
    ReferralRow,
    accept_referral,
    notify_endpoint,
    notify_token,
    referral_criteria,
    subscribe,
    waiting_for_triage,
)
from fhir_burnout.resources import publish
from fhir_burnout.sandbox import SandboxInfo, start_sandbox
from fhir_burnout.settings import Settings
from fhir_burnout.smart_launch import backend_token
from fhir_burnout.sync import EhrClients, Worker
from fhir_burnout.web import create_app
from fhir_burnout.workflow import (
    EnrolmentRow,
    InvitationRow,
    change_task,
    enrol,
    submit_response,
    unlock_phase,
)

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
    smart = requests.get(f"{info.fhir_base}/.well-known/smart-configuration", timeout=30).json()
    worker = info.client("fhir-burnout-worker")
    token = backend_token(
        smart["token_endpoint"], worker["client_id"], worker["private_keys"][0], "system/*.cruds"
    )
    with FhirClient(info.fhir_base, token=token.access_token) as client:
        steps = publish(resources, client)
    created = sum(1 for s in steps if s.action == "create")
    return created, len(steps) - created


#: Seeded patients, already on their way: (patient, track, modules finished, phases opened).
DEMO_ENROLMENTS = (
    ("pat-01", "standard", 1, ()),
    ("pat-02", "waiting-list", 0, ()),
    ("pat-03", "after-care", 2, ()),
    ("pat-04", "standard", 5, ("insight",)),
)


#: Diary days for the demo's energy-diary trend: (date, [(day part, activity, mark)], day).
DEMO_DIARY = (
    ("2026-11-30", [("morning", "Werkmail lezen", -4), ("evening", "Wandelen met de hond", 3)], 3),
    ("2026-12-01", [("morning", "Boodschappen", -2), ("afternoon", "Rusten op de bank", 1)], 5),
    ("2026-12-02", [("morning", "Wandelen met de hond", 4), ("afternoon", "Telefoontje", -1)], 6),
)


def _answered(form: FormModel, answers: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
    response = build_response(form, answers, status="completed")
    scores = [s.stored() for s in score(form, response, current=True) if s.value is not None]
    return response, scores


def _demo_answers(db: Session, definitions: Any, enrolment: Any, patient: str) -> int:
    """Answers a client on their way would have given: the WHO-5 at the start, and a few
    energy-diary days, so the progress page has something to show. Returns how many."""
    who = f"Patient/{patient}"
    sent = 0
    for task in list(enrolment.tasks):
        if task.status == "ready" and task.action_id == "who-5.start":
            form = load_form(dict(definitions.by_canonical[task.definition]))
            choices = {
                item.link_id: [{"valueCoding": item.options[3].value}]
                for item in form.walk()
                if item.options and not item.calculated_expression
            }
            response, scores = _answered(form, choices)
            submit_response(db, definitions, task.key, response, who=who, scores=scores)
            sent += 1
    for date, parts, day in DEMO_DIARY:
        diary = next(
            (t for t in enrolment.tasks if t.action_id.endswith(".energy-diary")
             and t.status == "ready"),
            None,
        )  # fmt: skip
        if diary is None:
            break
        form = load_form(dict(definitions.by_canonical[diary.definition]))
        daypart = {o.value["code"]: o.value for o in form.index["energy-daypart"].options}
        entries = [
            {
                "energy-daypart": [{"valueCoding": daypart[part]}],
                "energy-activity": [{"valueString": activity}],
                "energy-level": [{"valueInteger": mark}],
            }
            for part, activity, mark in parts
        ]
        answers = {
            "energy-date": [{"valueDate": date}],
            "energy-part": entries,
            "energy-overall": [{"valueInteger": day}],
        }
        response, scores = _answered(form, answers)
        submit_response(db, definitions, diary.key, response, who=who, scores=scores)
        sent += 1
    return sent


def enrol_demo_patients(
    engine: Any, definitions: Any, fhir_base: str, names: dict[str, str] | None = None
) -> list[str]:
    """Enrol the demo's patients in different tracks with different progress."""
    lines = []
    for patient, track, finished, opened in DEMO_ENROLMENTS:
        with Session(engine) as db, db.begin():
            enrolment = enrol(
                db, definitions, fhir_base=fhir_base, patient=patient, track=track,
                author="Practitioner/prac-1", practice="Organization/practice-1",
            )  # fmt: skip
            modules = [t for t in enrolment.tasks if t.kind == "module"]
            for _ in range(finished):
                ready = next((t for t in modules if t.status == "ready"), None)
                if ready is None:
                    break
                change_task(
                    db, definitions, ready.key, "completed", actor="client",
                    who=f"Patient/{patient}",
                )  # fmt: skip
            for phase in opened:
                unlock_phase(db, definitions, enrolment.key, phase, by="Practitioner/prac-1")
            answered = _demo_answers(db, definitions, enrolment, patient)
            done = sum(t.status == "completed" for t in modules)
            name = f" ({names[patient]})" if names and patient in names else ""
            lines.append(
                f"{patient}{name}: {track}, {done} module(s) done, {answered} questionnaire(s)"
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
    for ehr in settings.ehrs:
        if not ehr.practice:
            continue
        try:
            subscribed = subscribe(
                clients.get(ehr.fhir_base),
                notify_endpoint(settings.base_url, ehr.fhir_base),
                notify_token(settings.secret_key, ehr.fhir_base),
                referral_criteria(ehr.practice),
            )
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
    first, *_ = DEMO_ENROLMENTS[-1]
    echo("")
    echo(f"Open {info.launcher}, pick a practitioner and one of the enrolled patients")
    echo("above, and press Launch. Or go straight to a client on their way:")
    echo(f"  {info.launcher}?app={APP_CLIENT_ID}&patient={first}&practitioner=prac-1")
    echo("As a care professional you see the client's overview and the practice's list:")
    echo(f"  {app_url}/practitioner and {app_url}/practice (after a launch)")
    echo("The same client from the patient portal (the patient is the user):")
    echo(f"  {info.launcher}?app={APP_CLIENT_ID}&patient={first}&portal=1")
    echo("The app inside the EHR's chart page (an iframe):")
    framed = f"app={APP_CLIENT_ID}&patient={first}&practitioner=prac-1&frame=1"
    echo(f"  {info.launcher}?{framed}")
    echo(f"A client's own login (without the EHR): {app_url}/login")
    echo(f"A referred client's invitation: {app_url}/invite (or the link above)")


def run_demo(
    resources: list[dict[str, Any]],
    *,
    folder: Path,
    echo: Callable[[str], None],
    wait: Callable[[], None] | None,
    sandbox_port: int = 0,
    app_port: int = 0,
    info_file: Path | None = None,
) -> None:
    """Start sandbox and app, publish, print where to go; then ``wait()`` (or stop at once)."""
    deferred = _Deferred()
    server = make_server("127.0.0.1", app_port, deferred, threaded=True)
    app_url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stop = threading.Event()
    try:
        with start_sandbox(port=sandbox_port, app_url=app_url) as info:
            created, existing = publish_into(info, resources)
            # The sandbox forgets everything when it stops, so the app's state starts afresh
            # too: sessions and enrolments of an earlier demo point at an EHR that is gone.
            for stale in folder.glob("demo.db*"):
                stale.unlink()
            config = write_config(folder, app_url, info)
            settings = Settings.from_file(config)
            deferred.app = create_app(settings)
            # The sync worker, in this process: every write reaches the sandbox EHR.
            engine = deferred.app.extensions["fhir_burnout"]["engine"]
            clients = EhrClients(settings)
            worker = threading.Thread(
                target=Worker(engine, clients.get).run, args=(stop,), daemon=True
            )
            worker.start()
            definitions = deferred.app.extensions["fhir_burnout"]["definitions"]
            # Referrals: the sandbox notifies the app (a Subscription), and the poll takes
            # them in (at once for the seeded ones, then when notified or every 5 minutes).
            poller = ReferralPoller.from_settings(engine, clients.get, definitions, settings)
            subscribed = _subscribe_referrals(settings, clients)
            names = {str(p["id"]): str(p["name"]) for p in info.seed.get("patients", [])}
            enrolled = enrol_demo_patients(engine, definitions, info.fhir_base, names)
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
                waiting=waiting,
            )  # fmt: skip
            if wait is not None:
                wait()
    finally:
        stop.set()
        server.shutdown()
        thread.join(timeout=10)
