"""Referral intake: N referrals taken in by one reconciliation poll, against plain searches.

Also what a poll costs once many referrals were taken in before: it should follow the new
referrals, not all the referrals ever made.

A fresh sandbox EHR (started here) and a fresh database (``--database``: PostgreSQL at
127.0.0.1:5432, in a schema of its own that is dropped afterwards, or an SQLite file). The
referrals are active ServiceRequests for burn-out treatment, performer the sandbox's practice
(Organization/practice-1), each for a newly created Patient, with identifiers unique to the
run; they are loaded in transaction Bundles of 50 referrals (a Patient and its
ServiceRequest each). A first poll takes in the sandbox's seed referrals, so the
measurements start from a poll mark, as a practice's would.

1. History: N/2 referrals are loaded and taken in by one poll.
2. Growth at that history: for each k (``--new``, 10 and 100), ``--repeat`` times: k new
   referrals (each in a request of its own, as a referral system sends them), then the next
   poll, timed (wall clock, and this process's CPU), with how many ServiceRequests it saw.
3. Intake: N more referrals are loaded. The baseline, timed in the same run: plain searches
   of them, the very search the poll does (the practice's active ServiceRequests with
   ``_lastUpdated`` from the poll mark, sorted, pages of 100, every page fetched; nothing
   taken in), ``--rounds`` times, half before the poll and half after, the median counted.
   Measured: the one poll that takes all N in. Both as referrals per second; the ratio is
   intake / plain search.
4. A poll with nothing new, then growth again as in 2, now at a history of 1.5 N and more:
   the poll of k new should cost about what it did at N/2, and see k (plus the few that
   share the last instant of the poll before: the poll searches from it inclusive).

Each growth poll is also set against a plain search of the same k, timed just before it.
The sandbox scans every ServiceRequest it holds for each search (an in-memory store without
indexes on dates), so its part of a poll grows a little with the EHR's size, not with ours.
This is a shared two-core VM: the CPU column (this process: the search's JSON and the
taking in) moves less with other load than the wall clock does.

Last line: one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fhir_burnout.db import create_db_engine, upgrade  # noqa: E402
from fhir_burnout.fhir import FhirClient  # noqa: E402
from fhir_burnout.integration import REFERRALS, PollRow  # noqa: E402
from fhir_burnout.referral import ReferralRow, reconcile  # noqa: E402
from fhir_burnout.referral._poll import PAGE  # noqa: E402
from fhir_burnout.resources import build_resources, load_programme  # noqa: E402
from fhir_burnout.sandbox import start_sandbox  # noqa: E402
from fhir_burnout.workflow import Definitions  # noqa: E402
from tests.outbox_load import postgres_schema, worker_token_source  # noqa: E402

PRACTICE = "Organization/practice-1"  # the sandbox's practice
CRITERIA = {"performer": PRACTICE, "status": "active"}
BATCH = 50  # referrals per transaction Bundle when loading
REFERRAL_SYSTEM = "https://fhir-burnout.org/bench/referral"
PATIENT_SYSTEM = "https://fhir-burnout.org/bench/patient"


@contextmanager
def database(kind: str, folder: Path) -> Iterator[str]:
    """A fresh database: an SQLite file, or a schema of its own in PostgreSQL."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'bench-referral.db'}"
        return
    with postgres_schema() as url:
        yield url


class Referrer:
    """Makes referrals on the EHR: a new Patient and an active ServiceRequest for them."""

    def __init__(self, client: FhirClient) -> None:
        self.client = client
        self.run = uuid.uuid4().hex[:10]
        self.made = 0

    def _entries(self) -> list[dict[str, Any]]:
        n, self.made = self.made, self.made + 1
        patient_key = str(uuid.uuid4())
        patient = {
            "resourceType": "Patient",
            "identifier": [{"system": PATIENT_SYSTEM, "value": f"{self.run}-{n}"}],
            "name": [{"family": "Proefpersoon", "given": [f"Bench{n}"]}],
        }
        request = {
            "resourceType": "ServiceRequest",
            "identifier": [{"system": REFERRAL_SYSTEM, "value": f"{self.run}-{n}"}],
            "status": "active",
            "intent": "order",
            "code": {"text": "Behandeling bij overspanning en burn-out"},
            "subject": {"reference": f"urn:uuid:{patient_key}"},
            "requester": {"reference": "Practitioner/prac-4"},
            "performer": [{"reference": PRACTICE}],
        }
        return [
            {
                "fullUrl": f"urn:uuid:{patient_key}",
                "resource": patient,
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": request,
                "request": {"method": "POST", "url": "ServiceRequest"},
            },
        ]

    def refer(self, count: int, batch: int) -> None:
        """``count`` referrals, ``batch`` to a transaction Bundle."""
        for start in range(0, count, batch):
            size = min(batch, count - start)
            entries = [entry for _ in range(size) for entry in self._entries()]
            self.client.transaction(
                {"resourceType": "Bundle", "type": "transaction", "entry": entries}
            )


def mark(engine: Engine, fhir_base: str) -> str | None:
    """Where the last successful poll got to (the EHR's own clock)."""
    with Session(engine) as db:
        state = db.get(PollRow, (fhir_base.rstrip("/"), REFERRALS))
        return state.seen_until if state is not None else None


def taken_in(engine: Engine) -> int:
    """How many referrals the database holds."""
    with Session(engine) as db:
        return db.scalar(select(func.count()).select_from(ReferralRow)) or 0


def plain_search(client: FhirClient, since: str | None) -> tuple[float, int]:
    """The poll's search, every page fetched, nothing taken in: (seconds, resources)."""
    params = {**CRITERIA, "_sort": "_lastUpdated", "_count": str(PAGE)}
    if since:
        params["_lastUpdated"] = f"ge{since}"
    start = time.perf_counter()
    found = sum(1 for _ in client.search("ServiceRequest", params))
    return time.perf_counter() - start, found


@dataclass(frozen=True)
class Poll:
    """One timed poll: wall clock and this process's CPU (seconds), what it saw and took in."""

    seconds: float
    cpu: float
    seen: int
    new: int


class Poller:
    """Runs the reconciliation poll for the sandbox's practice, as the app would."""

    def __init__(self, engine: Engine, client: FhirClient, definitions: Definitions) -> None:
        self.engine, self.client, self.definitions = engine, client, definitions

    def poll(self, expect_new: int | None = None) -> Poll:
        """One reconciliation poll; raises when it refused any or took in other than expected."""
        start, cpu = time.perf_counter(), time.process_time()
        result = reconcile(
            self.engine, self.client, self.definitions, criteria=CRITERIA, practice=PRACTICE
        )
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        if result.refused or (expect_new is not None and result.new != expect_new):
            raise RuntimeError(f"poll took in {result.new}, refused {result.refused[:3]}")
        return Poll(elapsed, cpu, result.seen, result.new)


def growth(
    poller: Poller, referrer: Referrer, news: list[int], repeat: int
) -> list[dict[str, float]]:
    """For each k, ``repeat`` times: k new referrals, a plain search of them, then the poll
    that takes them in. One row per k: the history before, and medians."""
    rows = []
    for k in news:
        history = taken_in(poller.engine)
        polls, searches = [], []
        for _ in range(repeat):
            referrer.refer(k, batch=1)
            since = mark(poller.engine, referrer.client.base_url)
            searches.append(plain_search(poller.client, since)[0])
            polls.append(poller.poll(expect_new=k))
        rows.append(
            {
                "history": history, "new": k, "seen": statistics.median(p.seen for p in polls),
                "poll_ms": statistics.median(p.seconds for p in polls) * 1000,
                "poll_cpu_ms": statistics.median(p.cpu for p in polls) * 1000,
                "search_ms": statistics.median(searches) * 1000,
            }
        )  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--referrals", type=int, default=1000, help="N, taken in by one poll")
    parser.add_argument(
        "--database", choices=("postgresql", "sqlite"), default="postgresql",
        help="PostgreSQL at 127.0.0.1:5432 (a schema of its own), or an SQLite file",
    )  # fmt: skip
    parser.add_argument(
        "--new", default="10,100", help="k new referrals per growth poll, comma-separated"
    )
    parser.add_argument(
        "--rounds", type=int, default=4, help="plain searches (half before the poll, half after)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="polls per k (median counted)")
    args = parser.parse_args()
    count = args.referrals
    news = [int(k) for k in args.new.split(",") if k.strip()]
    programme, problems = load_programme(ROOT)
    if problems:
        raise SystemExit(f"the programme has problems: {problems[:3]}")
    definitions = Definitions.from_resources(build_resources(programme))
    started = time.perf_counter()
    with (
        tempfile.TemporaryDirectory() as tmp,
        start_sandbox() as info,
        database(args.database, Path(tmp)) as url,
        FhirClient(info.fhir_base, token_source=worker_token_source(info)) as client,
    ):
        engine = create_db_engine(url)
        upgrade(engine)
        poller, referrer = Poller(engine, client, definitions), Referrer(client)
        seed = poller.poll()  # the sandbox's own referrals; sets the first mark
        # 1 and 2: a history of N/2, then k new.
        load_start = time.perf_counter()
        referrer.refer(count // 2, BATCH)
        load_s = time.perf_counter() - load_start
        poller.poll(expect_new=count // 2)
        small = growth(poller, referrer, news, args.repeat)
        # 3: N more, searched plainly and then taken in by one poll.
        referrer.refer(count, BATCH)
        since = mark(engine, client.base_url)
        # The poll writes nothing to the EHR (no worker runs), so the same search finds the
        # same N after it too: half the rounds before the poll, half after, so that a slow
        # spell of this shared machine does not fall on one side only.
        searches = [plain_search(client, since) for _ in range((args.rounds + 1) // 2)]
        intake = poller.poll(expect_new=count)
        searches += [plain_search(client, since) for _ in range(args.rounds // 2)]
        if any(found < count for _, found in searches):
            raise RuntimeError(f"the plain search found {searches}, expected {count}+")
        search_s = statistics.median(s for s, _ in searches)
        found = searches[0][1]
        # 4: nothing new, then k new again on the larger history.
        idle = poller.poll(expect_new=0)
        large = growth(poller, referrer, news, args.repeat)
        engine.dispose()
    total_s = time.perf_counter() - started

    search_rate, intake_rate = found / search_s, intake.seen / intake.seconds
    print(
        f"database: {'PostgreSQL' if args.database == 'postgresql' else 'SQLite'}; "
        f"{count} referrals (after the sandbox's {seed.new}); loading {count // 2} took "
        f"{load_s:.1f} s; whole run {total_s:.0f} s"
    )
    print(
        f"plain search of the {found}: {search_s * 1000:.0f} ms (median of {args.rounds}), "
        f"{search_rate:.0f} referrals/s"
    )
    print(
        f"poll taking in {intake.new} (seen {intake.seen}): {intake.seconds * 1000:.0f} ms, "
        f"{intake_rate:.0f} referrals/s, {intake.cpu / intake.new * 1000:.1f} ms CPU here per "
        f"referral; ratio to plain search {intake_rate / search_rate:.3f}"
    )
    print(f"next poll with nothing new: {idle.seconds * 1000:.0f} ms, seen {idle.seen}")
    print(
        f"{'history':>8} {'new':>5} {'seen':>5} {'poll ms':>8} {'ms/new':>7} {'CPU ms':>7} "
        f"{'search ms':>10}   (medians of {args.repeat} polls; history: taken in before)"
    )
    for row in small + large:
        print(
            f"{row['history']:>8} {row['new']:>5} {row['seen']:>5} {row['poll_ms']:>8.1f} "
            f"{row['poll_ms'] / row['new']:>7.2f} {row['poll_cpu_ms']:>7.1f} "
            f"{row['search_ms']:>10.1f}"
        )
    for before, after in zip(small, large, strict=True):
        print(
            f"poll of {after['new']} new at {after['history'] / before['history']:.1f} times the "
            f"history: {after['poll_ms'] / before['poll_ms']:.2f} times the time, "
            f"{after['poll_cpu_ms'] / before['poll_cpu_ms']:.2f} times the CPU"
        )
    figures: dict[str, Any] = {
        "bench": "referral",
        "database": args.database,
        "referrals": count,
        "search_per_s": round(search_rate, 1),
        "intake_per_s": round(intake_rate, 1),
        "ratio": round(intake_rate / search_rate, 4),
        "intake_cpu_ms_per_referral": round(intake.cpu / intake.new * 1000, 2),
        f"poll_seen_after_{count}": idle.seen,
        f"poll_idle_after_{count}_ms": round(idle.seconds * 1000, 1),
    }
    for before, after in zip(small, large, strict=True):
        k = after["new"]
        figures[f"poll_new_{k}_ms"] = round(after["poll_ms"], 1)
        figures[f"poll_new_{k}_seen"] = after["seen"]
        figures[f"poll_new_{k}_ms_smaller_history"] = round(before["poll_ms"], 1)
    if small and large:
        figures["history"] = large[0]["history"]
        figures["smaller_history"] = small[0]["history"]
    figures["growth"] = [
        {k: round(v, 1) if isinstance(v, float) else v for k, v in row.items()}
        for row in small + large
    ]
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
