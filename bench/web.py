"""The web app under load: a module page, a 40-item homework page and a homework submit,
each against a bare Flask route on the same server setup, in the same run.

The app runs as at a practice, `fhir-burnout serve --workers 2` (gunicorn, sync workers) on
loopback, on a fresh database (PostgreSQL when it answers at 127.0.0.1:5432, else SQLite in
WAL mode; ``--database`` chooses), with a sandbox EHR for the sign-in. Its content is the
shipped programme plus a questionnaire of our own with 40 questions (choices of five radio
buttons, integers with a range, booleans, short and long text; four required; in four plain
groups), as a second homework of body-signals. The baseline: a bare Flask app, one route
returning a short HTML string (``bench/_bare_app.py``), under the same gunicorn command line,
running beside the app.

Each of N concurrent clients (threads) is a seeded sandbox patient, enrolled in the
waiting-list track with body-signals started, who signs in through the app's standalone
login (/login, the sandbox's authorization server, /callback) in a requests.Session. The
measured requests carry that session's cookies on a plain HTTPConnection: requests costs
about 1 ms of CPU per request, more than the bare route itself, on the two cores that the
servers need too (``--client requests`` measures with it anyway).

The four are measured in ``--rounds`` interleaved rounds (bare route, module page, homework
page, submit; again), each a warm-up, then every client sending requests back to back for a
share of ``--seconds``. This machine is a shared VM whose speed drifts between runs and
within one (the same module page took 1.2 ms CPU in one run, 2.0 in the next), so a baseline
measured once, minutes away from what it is compared with, moved the ratios by a third;
interleaved, a slow spell falls on all four. All four are timed alike: a fixed number of
submits a client left a tail in which the last clients finished alone, and the rate looked
lower than it was. The module page is GET /task/<module>; the homework page GET
/task/<homework>/form; the submit a POST of all 40 answers, which must answer 303 to /.
A second submit of a Task stores nothing, so the bench adds open copies of the homework Task
to each enrolment (a fixture, straight into the database; a homework submit reads only its
own Task, so the copies do not make it dearer) and checks at the end that each Task it
submitted is completed with its QuestionnaireResponse.

Printed: requests per second, p50 and p95 latency, the rate as a ratio of the bare route's
(over all rounds, and the lowest and highest of the rounds' own ratios), and CPU
milliseconds per request of the clients, the app's workers and the database's
processes serving them, with how busy the machine was and how much of it went elsewhere
(other processes: above 15 % the run says its figures are disturbed). Targets: the module
page at least 0.3 of the bare route, the submit at least 0.15. ``--profile DIR`` then runs
each request in-process under cProfile and lists the costliest calls.

Last line: one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.client import HTTPConnection
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, event, func, select, text
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fhir_burnout.db import create_db_engine, upgrade  # noqa: E402
from fhir_burnout.resources import Programme, build_resources, validate_sources  # noqa: E402
from fhir_burnout.sandbox import SandboxInfo, start_sandbox  # noqa: E402
from fhir_burnout.settings import Settings  # noqa: E402
from fhir_burnout.web import create_app  # noqa: E402
from fhir_burnout.workflow import (  # noqa: E402
    Definitions,
    ResponseRow,
    TaskRow,
    change_task,
    enrol,
)
from tests.outbox_load import POSTGRES, postgres_schema  # noqa: E402
from tests.smart_flow import follow_to_redirect_uri  # noqa: E402

TARGETS = {"module": 0.3, "submit": 0.15}
WORKERS = 2
TRACK = "waiting-list"
FIRST, MODULE = "understanding-burnout", "body-signals"  # body-signals opens after the first
QUESTIONNAIRE = "week-reflection"
PATIENTS = 24  # the sandbox seeds pat-01 ... pat-24

# --- the 40-item homework questionnaire ------------------------------------------------

TRANSLATION = "http://hl7.org/fhir/StructureDefinition/translation"
SCALES = {
    "frequency": (
        ("never", "Nooit", "Never"),
        ("rarely", "Zelden", "Rarely"),
        ("sometimes", "Soms", "Sometimes"),
        ("often", "Vaak", "Often"),
        ("always", "Altijd", "Always"),
    ),
    "agreement": (
        ("strongly-disagree", "Helemaal oneens", "Strongly disagree"),
        ("disagree", "Oneens", "Disagree"),
        ("neutral", "Niet eens, niet oneens", "Neither agree nor disagree"),
        ("agree", "Eens", "Agree"),
        ("strongly-agree", "Helemaal eens", "Strongly agree"),
    ),
}
#: Four sections of ten questions: (kind, Dutch, English). Kinds: a scale name (a choice of
#: five radio buttons), "integer MIN-MAX", "boolean", "string", "text"; a trailing "!" makes
#: it required; "text?N" shows only when question N (a boolean) is answered yes.
SECTIONS: tuple[tuple[str, str, tuple[tuple[str, str, str], ...]], ...] = (
    ("Energie en lichaam", "Energy and body", (
        ("frequency!", "Hoe vaak voelde je je deze week uitgeput?",
         "How often did you feel exhausted this week?"),
        ("frequency", "Hoe vaak sliep je goed?", "How often did you sleep well?"),
        ("frequency", "Hoe vaak had je hoofdpijn of spierpijn?",
         "How often did you have a headache or aching muscles?"),
        ("frequency", "Hoe vaak nam je een pauze voordat je moe werd?",
         "How often did you take a break before you got tired?"),
        ("integer 0-10!", "Hoeveel energie had je gemiddeld? (0 = geen, 10 = heel veel)",
         "How much energy did you have on average? (0 = none, 10 = a lot)"),
        ("integer 0-24", "Hoeveel uur sliep je gemiddeld per nacht?",
         "How many hours did you sleep per night on average?"),
        ("integer 0-600", "Hoeveel minuten heb je deze week gewandeld of bewogen?",
         "How many minutes did you walk or move this week?"),
        ("boolean!", "Heb je deze week de bodyscan gedaan?",
         "Did you do the body scan this week?"),
        ("boolean", "Merkte je spanning in je lichaam op voordat het te veel werd?",
         "Did you notice tension in your body before it became too much?"),
        ("string", "Waar in je lichaam voelde je de spanning het meest?",
         "Where in your body did you feel the tension most?"),
    )),
    ("Werk en grenzen", "Work and limits", (
        ("agreement", "Ik kon deze week nee zeggen als iets te veel was.",
         "This week I could say no when something was too much."),
        ("agreement", "Ik deed dingen omdat ik vond dat het moest.",
         "I did things because I felt I had to."),
        ("agreement", "Ik heb hulp gevraagd als ik die nodig had.",
         "I asked for help when I needed it."),
        ("frequency", "Hoe vaak werkte je langer dan je van plan was?",
         "How often did you work longer than you planned?"),
        ("integer 0-7", "Op hoeveel dagen heb je gewerkt?", "On how many days did you work?"),
        ("integer 0-80", "Hoeveel uur heb je in totaal gewerkt?",
         "How many hours did you work in total?"),
        ("boolean", "Heb je met iemand over je grenzen gepraat?",
         "Did you talk to someone about your limits?"),
        ("text?17", "Met wie, en hoe ging dat?", "With whom, and how did it go?"),
        ("string", "Welke taak kostte je de meeste energie?",
         "Which task took the most energy?"),
        ("string", "Welke taak gaf je energie?", "Which task gave you energy?"),
    )),
    ("Gedachten en gevoelens", "Thoughts and feelings", (
        ("frequency", "Hoe vaak piekerde je 's avonds?",
         "How often did you worry in the evening?"),
        ("frequency", "Hoe vaak voelde je je prikkelbaar?", "How often did you feel irritable?"),
        ("frequency", "Hoe vaak kon je genieten van iets kleins?",
         "How often could you enjoy something small?"),
        ("agreement", "Ik was mild voor mezelf als iets niet lukte.",
         "I was kind to myself when something did not work out."),
        ("agreement", "Ik had het gevoel dat ik tekortschoot.", "I felt I was falling short."),
        ("integer 0-10", "Hoe somber voelde je je? (0 = helemaal niet, 10 = heel erg)",
         "How low did you feel? (0 = not at all, 10 = very)"),
        ("integer 0-10", "Hoe onrustig voelde je je? (0 = helemaal niet, 10 = heel erg)",
         "How restless did you feel? (0 = not at all, 10 = very)"),
        ("boolean", "Was er een moment waarop je je echt ontspannen voelde?",
         "Was there a moment when you felt really relaxed?"),
        ("text?28", "Beschrijf dat moment.", "Describe that moment."),
        ("text!", "Wat viel je deze week op aan jezelf?",
         "What did you notice about yourself this week?"),
    )),
    ("Vooruitblik", "Looking ahead", (
        ("agreement", "Ik weet wat ik volgende week anders wil doen.",
         "I know what I want to do differently next week."),
        ("agreement", "Ik heb genoeg rust ingepland.", "I have planned enough rest."),
        ("frequency", "Hoe vaak lukte het je om op vaste tijden op te staan en te gaan slapen?",
         "How often did you manage to get up and go to bed at regular times?"),
        ("frequency", "Hoe vaak at je op vaste tijden?",
         "How often did you eat at regular times?"),
        ("agreement", "Ik heb vertrouwen in mijn herstel.", "I have confidence in my recovery."),
        ("integer 0-7", "Op hoeveel dagen wil je volgende week iets ontspannends doen?",
         "On how many days next week do you want to do something relaxing?"),
        ("integer 0-10", "Hoe haalbaar voelt je plan? (0 = niet, 10 = heel goed)",
         "How feasible does your plan feel? (0 = not at all, 10 = very)"),
        ("boolean", "Wil je dit bespreken met je behandelaar?",
         "Do you want to discuss this with your care professional?"),
        ("string", "Eén kleine stap voor volgende week:", "One small step for next week:"),
        ("text", "Wat wil je verder nog kwijt?", "Anything else you want to say?"),
    )),
)  # fmt: skip


def _en(text: str) -> dict[str, Any]:
    """The English translation extension of a Dutch text."""
    parts = [{"url": "lang", "valueCode": "en"}, {"url": "content", "valueString": text}]
    return {"extension": [{"url": TRANSLATION, "extension": parts}]}


def _link(number: int) -> str:
    return f"reflection-{number:02d}"


def _question(number: int, kind: str, nl: str, en: str) -> dict[str, Any]:
    required = kind.endswith("!")
    kind, _, condition = kind.rstrip("!").partition("?")
    kind, _, bounds = kind.partition(" ")
    item: dict[str, Any] = {"linkId": _link(number), "text": nl, "_text": _en(en)}
    if kind in SCALES:
        control = {"system": "http://hl7.org/fhir/questionnaire-item-control"}
        item["extension"] = [
            {
                "url": "http://hl7.org/fhir/StructureDefinition/questionnaire-itemControl",
                "valueCodeableConcept": {"coding": [control | {"code": "radio-button"}]},
            }
        ]
        item["type"] = "choice"
        system = f"{{canonical}}/CodeSystem/reflection-{kind}"
        item["answerOption"] = [
            {"valueCoding": {"system": system, "code": code, "display": d, "_display": _en(e)}}
            for code, d, e in SCALES[kind]
        ]
    else:
        item["type"] = kind
    if bounds:
        low, high = (int(x) for x in bounds.split("-"))
        item["extension"] = [
            {"url": "http://hl7.org/fhir/StructureDefinition/minValue", "valueInteger": low},
            {"url": "http://hl7.org/fhir/StructureDefinition/maxValue", "valueInteger": high},
        ]
    if condition:
        item["enableWhen"] = [
            {"question": _link(int(condition)), "operator": "=", "answerBoolean": True}
        ]
    item["required"] = required
    return item


def questionnaire() -> dict[str, Any]:
    """Our own 40-question homework: four sections (plain groups, not repeating)."""
    groups, number = [], 0
    for n, (nl, en, questions) in enumerate(SECTIONS, 1):
        items = []
        for kind, q_nl, q_en in questions:
            number += 1
            items.append(_question(number, kind, q_nl, q_en))
        groups.append(
            {"linkId": f"section-{n}", "text": nl, "_text": _en(en), "type": "group",
             "item": items}
        )  # fmt: skip
    description = "Kijk terug op je week: je energie, je grenzen, je gedachten en je plannen."
    return {
        "resourceType": "Questionnaire",
        "id": QUESTIONNAIRE,
        "language": "nl",
        "name": "WeekReflection",
        "title": "Terugblik op je week",
        "_title": _en("Looking back on your week"),
        "subjectType": ["Patient"],
        "description": description,
        "_description": _en(
            "Look back on your week: your energy, your limits, your thoughts and your plans."
        ),
        "copyright": "CC BY-SA 4.0, fhir_burnout contributors",
        "item": groups,
    }


def questions(q: dict[str, Any]) -> list[dict[str, Any]]:
    return [item for group in q["item"] for item in group["item"]]


def answers(q: dict[str, Any]) -> dict[str, str]:
    """A complete, valid answer to every question, as the form posts it (a.<linkId>)."""
    posted = {}
    for n, item in enumerate(questions(q)):
        if item["type"] == "choice":
            value = str(n % 5)  # the option's index
        elif item["type"] == "integer":
            low, high = (e["valueInteger"] for e in item["extension"])
            value = str((low + high) // 2)
        elif item["type"] == "boolean":
            value = "true"
        elif item["type"] == "string":
            value = "Mijn schouders en mijn nek"
        else:
            value = "Ik merkte dat ik eerder rust nam dan vorige week, en dat hielp me."
        posted[f"a.{item['linkId']}"] = value
    return posted


def content_root(folder: Path) -> tuple[Path, Programme]:
    """The shipped programme with our questionnaire as body-signals' second homework."""
    root = folder / "programme"
    shutil.copytree(ROOT / "content", root / "content")
    shutil.copytree(ROOT / "questionnaires", root / "questionnaires")
    path = root / "questionnaires" / f"{QUESTIONNAIRE}.json"
    path.write_text(json.dumps(questionnaire(), ensure_ascii=False, indent=2), encoding="utf-8")
    for lang in ("nl", "en"):
        module = root / "content" / lang / f"{MODULE}.md"
        text = module.read_text(encoding="utf-8")
        wired = re.sub(
            r"^homework: \[(.*)\]$", rf"homework: [\1, {QUESTIONNAIRE}]", text, count=1, flags=re.M
        )
        if wired == text:
            raise RuntimeError(f"{module} has no 'homework: [...]' line to add to")
        module.write_text(wired, encoding="utf-8")
    programme, problems = validate_sources(root)
    if programme is None or problems:
        raise RuntimeError(
            "the bench content does not validate:\n" + "\n".join(map(str, problems))
        )
    return root, programme


# --- database, state and config ----------------------------------------------------------


def postgres_available() -> bool:
    try:
        engine = create_engine(POSTGRES)
        with engine.connect():
            pass
        engine.dispose()
    except Exception:
        return False
    return True


@dataclass(frozen=True)
class Database:
    """The app's database, and on PostgreSQL a way to find the app's server processes."""

    kind: str
    url: str
    admin: Any = None  # an engine on PostgreSQL, to read pg_stat_activity

    @property
    def for_app(self) -> str:
        """The URL for the app: on PostgreSQL its connections carry a name of their own."""
        return f"{self.url}&application_name={APP_NAME}" if self.admin else self.url

    def backends(self) -> list[int]:
        """The PostgreSQL processes serving the app's connections (none on SQLite)."""
        if self.admin is None:
            return []
        query = text("SELECT pid FROM pg_stat_activity WHERE application_name = :name")
        with self.admin.connect() as connection:
            return list(connection.scalars(query, {"name": APP_NAME}))


APP_NAME = f"bench-web-{os.getpid()}"


@contextmanager
def database(kind: str, folder: Path) -> Iterator[Database]:
    """A fresh database: an SQLite file, or a schema of its own in PostgreSQL."""
    if kind == "sqlite":
        yield Database(kind, f"sqlite:///{folder / 'app.db'}")
        return
    with postgres_schema() as url:
        admin = create_engine(POSTGRES)
        try:
            yield Database(kind, url, admin)
        finally:
            admin.dispose()


@dataclass
class Client:
    """One concurrent client: a patient, their Tasks and their browser. It signs in with
    ``http`` (a requests.Session); the measured requests go through :meth:`send`."""

    patient: str
    module: str
    homework: list[str]  # the real homework Task first, then the bench's open copies
    http: requests.Session = field(default_factory=requests.Session)
    csrf: str = ""
    lean: bool = True
    cookies: dict[str, str] = field(default_factory=dict)
    submitted: int = 0  # copies of the homework Task submitted so far

    def send(self, url: str, status: int, form: str | None = None) -> str:
        """GET ``url`` (POST ``form``, urlencoded); checks the status, returns Location."""
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if form else {}
        if not self.lean:
            method = self.http.post if form else self.http.get
            answer = method(url, data=form, headers=headers, allow_redirects=False, timeout=60)
            if answer.status_code != status:
                raise RuntimeError(f"{url}: {answer.status_code}: {answer.text[:300]}")
            return str(answer.headers.get("Location", ""))
        # The session's cookies on a new connection (gunicorn's sync workers close each one).
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        parts = urlsplit(url)
        connection = HTTPConnection(parts.hostname or "", parts.port, timeout=60)
        try:
            connection.request("POST" if form else "GET", parts.path, form, headers)
            response = connection.getresponse()
            body = response.read()
        finally:
            connection.close()
        for cookie in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = cookie.partition("=")
            self.cookies[name] = rest.partition(";")[0]
        if response.status != status:
            raise RuntimeError(f"{url}: {response.status}: {body[:300]!r}")
        return str(response.headers.get("Location", ""))


def seed(
    engine: Any, definitions: Definitions, fhir_base: str, patients: range, copies: int
) -> list[Client]:
    """Enrol each patient (pat-NN) with body-signals open and its 40-item homework ready,
    plus ``copies`` open copies of that homework Task."""
    clients = []
    for n in patients:
        patient = f"pat-{n:02d}"
        with Session(engine) as db, db.begin():
            enrolment = enrol(
                db, definitions, fhir_base=fhir_base, patient=patient, track=TRACK,
                author="Practitioner/prac-1", practice="Organization/practice-1",
            )  # fmt: skip
            tasks = {t.action_id: t for t in enrolment.tasks}
            who = f"Patient/{patient}"
            for action, status in ((FIRST, "completed"), (MODULE, "in-progress")):
                change_task(db, definitions, tasks[action].key, status, actor="client", who=who)
            homework = next(
                t for t in enrolment.tasks
                if t.kind == "homework" and f"/Questionnaire/{QUESTIONNAIRE}|" in t.definition
            )  # fmt: skip
            if homework.status != "ready":
                raise RuntimeError(f"the homework is {homework.status}, not ready")
            keys = [homework.key, *open_copies(homework, copies)]
            clients.append(Client(patient, tasks[MODULE].key, keys))
    return clients


def open_copies(homework: TaskRow, count: int) -> list[str]:
    """``count`` open copies of a homework Task in its enrolment; their keys. A bench
    fixture, straight into the database: each submit needs a Task that is still open (a
    second submit of one stores nothing), and the plan makes one per module. The copies make
    the enrolment bigger than a real one, which a homework submit does not notice: it reads
    and writes its own Task only (2.9 ms CPU in-process at 12 Tasks a client and at 102)."""
    enrolment = homework.enrolment
    start = max(t.position for t in enrolment.tasks) + 1
    copies = []
    for n in range(count):
        copies.append(
            TaskRow(
                key=str(uuid.uuid4()), position=start + n, action_id=homework.action_id,
                kind="homework", phase=homework.phase, definition=homework.definition,
                title=homework.title, status="ready", owner=homework.owner,
                updated_at=homework.updated_at,
            )
        )  # fmt: skip
    enrolment.tasks.extend(copies)
    return [c.key for c in copies]


def write_config(
    folder: Path, app_url: str, database_url: str, info: SandboxInfo, root: Path
) -> Path:
    """The app's config file (fhir-burnout.toml), trusting the sandbox EHR."""
    config = folder / "fhir-burnout.toml"
    lines = [
        f"base_url = {json.dumps(app_url)}",
        f"database_url = {json.dumps(database_url)}",
        f'secret_key = "bench-{uuid.uuid4().hex}"',
        f"token_key = {json.dumps(Fernet.generate_key().decode())}",
        f"keys_dir = {json.dumps(str(folder / 'keys'))}",
        f"content_root = {json.dumps(str(root))}",
        "[safety]",
        'promise_nl = "op werkdagen binnen één werkdag"',
        'promise_en = "within one working day, on working days"',
        "[[ehr]]",
        f"fhir_base = {json.dumps(info.fhir_base)}",
        'client_id = "fhir-burnout"',
        'safety_owner = "PractitionerRole/role-prac-3"',
    ]
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config


# --- servers -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(command: list[str], url: str, log: Path) -> Iterator[list[int]]:
    """Run a gunicorn in a process group of its own until the block ends; yields its
    workers once it answers and all of them are there."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{command} did not start {WORKERS} workers:\n{tail}")
            workers = workers_of(process.pid)
            try:
                if len(workers) == WORKERS and requests.get(url, timeout=5).status_code:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.1)  # only while the workers start
        yield workers
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def workers_of(master: int) -> list[int]:
    """The gunicorn workers: the master's children (field 4 of /proc/<pid>/stat)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue  # it ended meanwhile
            if int(fields[1]) == master:
                found.append(int(entry.name))
    return found


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (0 once it has ended)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Watch:
    """The processes a measurement counts the CPU time of, besides this one."""

    workers: list[int]
    database: Database


@dataclass(frozen=True)
class Usage:
    """CPU seconds so far: this process (the clients), the server's workers, the database's
    processes serving the app, and the machine (busy and in all)."""

    at: float
    client: float
    server: float
    database: dict[int, float]
    busy: float
    total: float

    @classmethod
    def now(cls, watch: Watch) -> Usage:
        database = {pid: cpu_seconds(pid) for pid in watch.database.backends()}
        tick = os.sysconf("SC_CLK_TCK")
        cpu = [int(x) / tick for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        own = resource.getrusage(resource.RUSAGE_SELF)
        return cls(
            at=time.perf_counter(), client=own.ru_utime + own.ru_stime,
            server=sum(cpu_seconds(pid) for pid in watch.workers), database=database,
            busy=sum(cpu) - cpu[3] - cpu[4], total=sum(cpu),  # all but idle and iowait
        )  # fmt: skip


# --- load ----------------------------------------------------------------------------------


@dataclass
class Figures:
    """Measurements of one kind of request: latencies, and the seconds spent meanwhile
    (elapsed, and CPU: the clients, the server's workers, the database, the machine busy
    and in all). Rounds of the same kind add up."""

    latencies: list[float]
    elapsed: float
    cpu: dict[str, float]  # client, server, database: CPU seconds
    busy_s: float
    total_s: float
    ratios: list[float] = field(default_factory=list)  # each round's, against its bare round

    @classmethod
    def between(cls, latencies: list[float], start: Usage, end: Usage) -> Figures:
        database = sum(
            seconds - start.database.get(pid, 0.0) for pid, seconds in end.database.items()
        )
        cpu = {
            "client": end.client - start.client,
            "server": end.server - start.server,
            "database": database,
        }
        return cls(
            latencies, end.at - start.at, cpu, end.busy - start.busy, end.total - start.total
        )

    def __add__(self, other: Figures) -> Figures:
        return Figures(
            self.latencies + other.latencies,
            self.elapsed + other.elapsed,
            {k: v + other.cpu[k] for k, v in self.cpu.items()},
            self.busy_s + other.busy_s,
            self.total_s + other.total_s,
            self.ratios + other.ratios,
        )

    @property
    def requests(self) -> int:
        return len(self.latencies)

    @property
    def rps(self) -> float:
        return self.requests / self.elapsed

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[int(p * (len(ordered) - 1))] * 1000

    def cpu_ms(self) -> dict[str, float]:
        """CPU milliseconds per request of the client, the app's workers, the database."""
        return {k: v / self.requests * 1000 for k, v in self.cpu.items()}

    def busy(self) -> float:
        """How busy the machine's cores were, 0 to 1."""
        return self.busy_s / self.total_s

    def others(self) -> float:
        """The share of the machine that went elsewhere (other processes, the kernel's
        loopback work, gunicorn's master): high, and the figures are disturbed."""
        return max(0.0, self.busy_s - sum(self.cpu.values())) / self.total_s


def load(
    clients: list[Client],
    one: Callable[[Client, int], None],
    watch: Watch,
    *,
    warmup: float | int,
    seconds: float | None = None,
    each: int | None = None,
) -> Figures:
    """All clients at once: a warm-up (``warmup`` seconds, or requests when it is an int),
    then measured requests back to back, for ``seconds`` or ``each`` a client.
    ``one(client, n)`` sends a client's n-th request."""
    marks: list[Usage] = []
    barrier = threading.Barrier(len(clients), action=lambda: marks.append(Usage.now(watch)))

    def run(client: Client) -> list[float]:
        counted, until = isinstance(warmup, int), time.perf_counter() + warmup
        n = 0
        try:
            while (n < warmup) if counted else (time.perf_counter() < until):
                one(client, n)
                n += 1
        except BaseException:
            barrier.abort()
            raise
        barrier.wait(timeout=120)
        deadline = marks[0].at + seconds if seconds else float("inf")
        times, last = [], float("inf") if each is None else n + each
        while n < last and time.perf_counter() < deadline:
            start = time.perf_counter()
            one(client, n)
            times.append(time.perf_counter() - start)
            n += 1
        return times

    with ThreadPoolExecutor(len(clients)) as pool:
        done = [f.result() for f in [pool.submit(run, c) for c in clients]]
    return Figures.between([t for times in done for t in times], marks[0], Usage.now(watch))


def expect(response: requests.Response, status: int, what: str) -> requests.Response:
    if response.status_code != status:
        raise RuntimeError(f"{what}: {response.status_code}, not {status}: {response.text[:300]}")
    return response


def sign_in(client: Client, app_url: str) -> None:
    """The client's standalone login: /login, the sandbox's sign-in, /callback."""
    started = expect(client.http.get(f"{app_url}/login", allow_redirects=False), 302, "/login")
    at_ehr = started.headers["Location"] + f"&login_hint=Patient/{client.patient}"
    callback = follow_to_redirect_uri(requests.Session(), at_ehr, f"{app_url}/callback")
    expect(client.http.get(callback, allow_redirects=False), 302, "/callback")


def check_pages(client: Client, app_url: str, q: dict[str, Any]) -> None:
    """The module page answers, and the homework page shows all 40 questions."""
    expect(client.http.get(f"{app_url}/task/{client.module}"), 200, "module page")
    page = expect(client.http.get(f"{app_url}/task/{client.homework[0]}/form"), 200, "homework")
    missing = [i["linkId"] for i in questions(q) if f'name="a.{i["linkId"]}"' not in page.text]
    if missing:
        raise RuntimeError(f"the homework page lacks questions {missing}")
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    if found is None:
        raise RuntimeError("the homework page has no csrf_token")
    client.csrf = found[1]
    client.cookies = {c.name: c.value or "" for c in client.http.cookies}


def measure(
    clients: list[Client],
    urls: dict[str, str],
    watches: dict[str, Watch],
    q: dict[str, Any],
    args: Any,
) -> dict[str, Figures]:
    """``args.rounds`` rounds of: the bare route, the module page, the homework page and the
    submit, with both servers up (an idle sync worker costs nothing). Interleaved, a slow
    spell of the machine (this is a shared VM: the same page cost 1.2 ms CPU in one run and
    2.0 in the next) falls on all of them instead of on whichever was measured then; each
    round's ratios are kept besides the totals."""
    app_url = urls["app"]
    posted = answers(q)
    forms = {
        c.patient: urlencode(
            {"csrf_token": c.csrf, "patient": c.patient, "action": "submit", **posted}
        )
        for c in clients
    }

    def bare(client: Client, _n: int) -> None:
        client.send(f"{urls['bare']}/", 200)

    def module(client: Client, _n: int) -> None:
        client.send(f"{app_url}/task/{client.module}", 200)

    def homework(client: Client, _n: int) -> None:
        # The real homework Task: it stays open, as the submits go to the copies.
        client.send(f"{app_url}/task/{client.homework[0]}/form", 200)

    def submit(client: Client, _n: int) -> None:
        if client.submitted + 1 >= len(client.homework):
            raise RuntimeError(f"out of open homework Tasks: more than {args.copies} a client")
        client.submitted += 1
        task = client.homework[client.submitted]
        location = client.send(f"{app_url}/task/{task}/form", 303, forms[client.patient])
        if location not in ("/", f"{app_url}/"):
            raise RuntimeError(f"submit redirected to {location}")

    figures: dict[str, Figures] = {}
    seconds = args.seconds / args.rounds
    for n in range(args.rounds):
        warmup = args.warmup if n == 0 else ROUND_WARMUP
        timed = {"warmup": warmup, "seconds": seconds}
        base = load(clients, bare, watches["bare"], **timed)
        this = {
            "bare": base,
            "module": load(clients, module, watches["app"], **timed),
            "homework_page": load(clients, homework, watches["app"], **timed),
            "submit": load(
                clients, submit, watches["app"], warmup=submit_warmup(n), seconds=seconds
            ),
        }
        for name, f in this.items():
            f.ratios.append(f.rps / base.rps)
            figures[name] = figures[name] + f if name in figures else f
    return figures


#: Submits per client before the first round's measurement (the pages' one-second warm-up,
#: in submits), and before each later one; seconds of warm-up before a later round's pages.
SUBMIT_WARMUP, ROUND_SUBMIT_WARMUP, ROUND_WARMUP = 10, 2, 0.2


def submit_warmup(round_number: int) -> int:
    return SUBMIT_WARMUP if round_number == 0 else ROUND_SUBMIT_WARMUP


def verify(engine: Any, clients: list[Client], items: int) -> None:
    """Every submitted Task is completed with one response, the last one answers every
    question, and the Tasks the homework page showed are still open."""
    keys = [k for c in clients for k in c.homework[1 : 1 + c.submitted]]
    with Session(engine) as db:
        completed = db.scalar(
            select(func.count())
            .select_from(TaskRow)
            .where(TaskRow.key.in_(keys), TaskRow.status == "completed")
        )
        responses = db.scalar(
            select(func.count()).select_from(ResponseRow).where(ResponseRow.task_key.in_(keys))
        )
        still_open = db.scalar(
            select(func.count())
            .select_from(TaskRow)
            .where(TaskRow.key.in_([c.homework[0] for c in clients]), TaskRow.status == "ready")
        )
        last = db.scalars(select(ResponseRow.resource).where(ResponseRow.task_key == keys[-1]))
        answered = _answered(json.loads(last.one()).get("item", []))
    if not completed == responses == len(keys) or still_open != len(clients):
        raise RuntimeError(
            f"of {len(keys)} submitted Tasks {completed} are completed with {responses} "
            f"responses; {still_open} of {len(clients)} page Tasks are still open"
        )
    if answered != items:
        raise RuntimeError(f"the last response answers {answered} of {items} questions")


def _answered(items: list[dict[str, Any]]) -> int:
    return sum(bool(i.get("answer")) + _answered(i.get("item", [])) for i in items)


#: What --profile lists: our code and the libraries that render pages.
OURS = re.compile(r"fhir_burnout/|markdown_it/main\.py|jinja2/environment\.py")


def profile(config: Path, client: Client, q: dict[str, Any], out: Path) -> None:
    """Each request in-process, one at a time, under cProfile (which slows Python code about
    threefold), for a client of its own: writes <out>/<name>.prof and prints the costliest
    calls and the SQL statements per request."""
    settings = Settings.from_file(config)
    app = create_app(settings)
    statements: list[str] = []
    event.listen(
        app.extensions["fhir_burnout"]["engine"],
        "before_cursor_execute",
        lambda _c, _cursor, statement, *_: statements.append(statement),
    )
    browser = app.test_client()
    started = browser.get("/login").headers["Location"]
    at_ehr = f"{started}&login_hint=Patient/{client.patient}"
    callback = f"{settings.base_url}/callback"
    back = urlsplit(follow_to_redirect_uri(requests.Session(), at_ehr, callback))
    browser.get(f"{back.path}?{back.query}")
    page = browser.get(f"/task/{client.homework[0]}/form").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    fields = {"csrf_token": token[1] if token else "", "patient": client.patient}
    form = urlencode({**fields, "action": "submit", **answers(q)})
    post = {"data": form, "content_type": "application/x-www-form-urlencoded"}
    homework = f"/task/{client.homework[0]}/form"
    jobs: dict[str, tuple[int, int, Callable[[int], Any]]] = {
        "module": (100, 200, lambda _n: browser.get(f"/task/{client.module}")),
        "homework_page": (100, 200, lambda _n: browser.get(homework)),
        "submit": (
            PROFILED_SUBMITS, 303,
            lambda n: browser.post(f"/task/{client.homework[1 + n]}/form", **post),
        ),
    }  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    for name, (count, status, job) in jobs.items():
        statements.clear()
        profiler = cProfile.Profile()
        profiler.enable()
        for n in range(count):
            if job(n).status_code != status:
                raise RuntimeError(f"{name} did not answer {status} in-process")
        profiler.disable()
        profiler.dump_stats(out / f"{name}.prof")
        stats: dict[Any, Any] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
        costs = sorted(
            ((entry[3], where) for where, entry in stats.items() if OURS.search(where[0])),
            reverse=True,
        )
        print(
            f"{name}: {len(statements) / count:.0f} SQL statements a request; "
            f"cumulative ms a request (profiled), {out / f'{name}.prof'}:"
        )
        for seconds, (file, line, function) in costs[1:13]:
            short = re.sub(r".*/(fhir_burnout|site-packages)/", "", file)
            print(f"  {seconds / count * 1000:7.2f}  {short}:{line} {function}")
    app.extensions["fhir_burnout"]["engine"].dispose()


#: As many as the load's clients submit by default: an enrolment of the same size.
PROFILED_SUBMITS = 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (max 24)")
    parser.add_argument("--seconds", type=float, default=8.0, help="per page measurement")
    parser.add_argument(
        "--copies", type=int, default=1000,
        help="open homework Tasks a client can submit (the bench adds them)",
    )  # fmt: skip
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before the first")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of all four")
    parser.add_argument("--database", choices=("auto", "sqlite", "postgresql"), default="auto")
    parser.add_argument("--quick", action="store_true", help="2 s each, one round")
    parser.add_argument(
        "--profile", type=Path, metavar="DIR",
        help="then profile each request in-process; .prof files into DIR",
    )  # fmt: skip
    parser.add_argument(
        "--client", choices=("http", "requests"), default="http",
        help="what sends the measured requests: http.client (lean) or requests",
    )  # fmt: skip
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.warmup, args.rounds = 2.0, 0.5, 1
    if not 1 <= args.clients <= PATIENTS - bool(args.profile):
        parser.error(f"--clients: 1 to {PATIENTS} (the sandbox's patients; 23 with --profile)")
    kind = args.database
    if kind == "auto":
        kind = "postgresql" if postgres_available() else "sqlite"
    q = questionnaire()
    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        root, programme = content_root(folder)
        definitions = Definitions.from_resources(build_resources(programme))
        app_port, bare_port = free_port(), free_port()
        app_url, bare_url = f"http://127.0.0.1:{app_port}", f"http://127.0.0.1:{bare_port}"
        # The command line `fhir-burnout serve --workers 2` runs, with the bare app instead.
        bare = [str(bin_dir / "gunicorn"), "--workers", str(WORKERS)]
        bare += ["--bind", f"127.0.0.1:{bare_port}", "bench._bare_app:app"]
        with start_sandbox(app_url=app_url) as info, database(kind, folder) as db:
            engine = create_db_engine(db.url)
            upgrade(engine)
            copies = args.copies
            patients = range(1, args.clients + 1)
            clients = seed(engine, definitions, info.fhir_base, patients, copies)
            for client in clients:
                client.lean = args.client == "http"
            config = write_config(folder, app_url, db.for_app, info, root)
            app = [str(bin_dir / "fhir-burnout"), "serve", "--config", str(config)]
            app += ["--host", "127.0.0.1", "--port", str(app_port), "--workers", str(WORKERS)]
            with (
                server(app, f"{app_url}/.well-known/jwks.json", folder / "app.log") as workers,
                server(bare, f"{bare_url}/", folder / "bare.log") as bare_workers,
            ):
                for client in clients:
                    sign_in(client, app_url)
                    check_pages(client, app_url, q)
                watches = {"app": Watch(workers, db), "bare": Watch(bare_workers, db)}
                urls = {"app": app_url, "bare": bare_url}
                figures = measure(clients, urls, watches, q, args)
            verify(engine, clients, len(questions(q)))
            report(figures, kind, args)
            if args.profile:  # on the last patient, whom no client is
                last = range(PATIENTS, PATIENTS + 1)
                alone = seed(engine, definitions, info.fhir_base, last, PROFILED_SUBMITS)
                profile(config, alone[0], q, args.profile)
            engine.dispose()
    print(figures_json(figures, kind, args))


LABELS = {
    "bare": "bare route", "module": "module page",
    "homework_page": "homework page", "submit": "submit",
}  # fmt: skip
#: More of the machine than this elsewhere during a measurement, and the run says so.
DISTURBED = 0.15


def report(figures: dict[str, Figures], kind: str, args: Any) -> None:
    bare = figures["bare"].rps
    print(
        f"database: {'PostgreSQL' if kind == 'postgresql' else 'SQLite'}; {args.clients} "
        f"clients ({args.client}); gunicorn, {WORKERS} sync workers; homework of "
        f"{len(questions(questionnaire()))} questions"
    )
    print(
        f"{'':14} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'ratio':>6} {'rounds':>11}   "
        f"CPU ms/req: {'client':>6} {'app':>6} {'db':>5}  busy other  target"
    )
    for name, label in LABELS.items():
        f = figures[name]
        ratio, cpu, target = f.rps / bare, f.cpu_ms(), TARGETS.get(name)
        met = "" if target is None else f">= {target}: {'met' if ratio >= target else 'NOT met'}"
        spread = f"{min(f.ratios):.2f}-{max(f.ratios):.2f}" if name != "bare" else ""
        print(
            f"{label:14} {f.rps:>7.1f} {f.percentile(0.5):>7.1f} {f.percentile(0.95):>7.1f} "
            f"{ratio:>6.2f} {spread:>11}   {cpu['client']:>17.2f} {cpu['server']:>6.2f} "
            f"{cpu['database']:>5.2f}  {f.busy():>4.0%} {f.others():>5.0%}  {met}"
        )
    disturbed = [LABELS[n] for n, f in figures.items() if f.others() > DISTURBED]
    if disturbed:
        print(
            f"note: other processes had more than {DISTURBED:.0%} of the machine during: "
            f"{', '.join(disturbed)}; run again on a quiet machine"
        )


def commit() -> str:
    """The commit measured; "+" when the app's code or content has changes not committed."""

    def git(*command: str) -> str:
        done = subprocess.run(["git", *command], cwd=ROOT, capture_output=True, check=False)
        return done.stdout.decode().strip()

    changed = git("status", "--porcelain", "--", "fhir_burnout", "content", "questionnaires")
    return git("rev-parse", "--short", "HEAD") + ("+" if changed else "")


def figures_json(figures: dict[str, Figures], kind: str, args: Any) -> str:
    bare = figures["bare"].rps
    result: dict[str, Any] = {"bench": "web"}
    for name in LABELS:
        f = figures[name]
        ratio = f.rps / bare
        result[f"{name}_rps"] = round(f.rps, 1)
        if name != "bare":
            result[f"{name}_ratio"] = round(ratio, 3)
            result[f"{name}_ratio_rounds"] = [round(r, 3) for r in f.ratios]
        result[f"{name}_p50_ms"] = round(f.percentile(0.5), 1)
        result[f"{name}_p95_ms"] = round(f.percentile(0.95), 1)
        result[f"{name}_cpu_ms"] = {k: round(v, 2) for k, v in f.cpu_ms().items()}
        result[f"{name}_other"] = round(f.others(), 2)
    result |= {
        "commit": commit(), "items": len(questions(questionnaire())), "clients": args.clients,
        "client": args.client, "workers": WORKERS, "database": kind, "rounds": args.rounds,
        "submits": figures["submit"].requests,
        "targets_met": all(figures[n].rps / bare >= t for n, t in TARGETS.items()),
        "disturbed": any(f.others() > DISTURBED for f in figures.values()),
    }  # fmt: skip
    return json.dumps(result)


if __name__ == "__main__":
    main()
