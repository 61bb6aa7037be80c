"""The database is only ever shaped by migrations, on SQLite and on PostgreSQL."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from datetime import datetime

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

import fhir_burnout.integration._tables
import fhir_burnout.koppeltaal._tables
import fhir_burnout.referral._tables
import fhir_burnout.sync._tables
import fhir_burnout.web._sessions
import fhir_burnout.workflow._tables  # noqa: F401 -- the tables the migrations must create
from fhir_burnout.db import (
    Base,
    DatabaseError,
    create_db_engine,
    current_revision,
    head_revision,
    reader,
    upgrade,
    upsert,
)
from fhir_burnout.db._migrate import MIGRATIONS
from fhir_burnout.integration import REFERRALS, PollRow

from .outbox_load import POSTGRES


def test_migrations_create_exactly_the_tables_the_code_declares(database_url):
    engine = create_db_engine(database_url)
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []
    assert {"enrolment", "task", "outbox_entry", "launch_session"} <= set(
        inspect(engine).get_table_names()
    )
    engine.dispose()


def test_a_paused_enrolment_made_before_the_pause_migration_keeps_its_place(database_url):
    """0003: enrolments made at 0002 survive; afterwards a paused plan still holds the
    patient's place in the track (a second current plan for it is refused)."""
    engine = create_db_engine(database_url)
    upgrade(engine, "0002")
    row = (
        "INSERT INTO enrolment (key, fhir_base, patient, track, plan_definition, status, "
        "language, period_start, created_at, request_group_key) VALUES (:key, 'http://e', "
        "'pat-1', 'standard', 'p', :status, 'nl', '2026-12-01', '2026-12-01T00:00:00+00:00', 'rg')"
    )
    with engine.begin() as connection:
        connection.execute(text(row), {"key": "old", "status": "active"})
    upgrade(engine)
    with engine.begin() as connection:
        connection.execute(text("UPDATE enrolment SET status = 'on-hold' WHERE key = 'old'"))
        assert connection.execute(text("SELECT held_from FROM task")).all() == []
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(text(row), {"key": "new", "status": "active"})
    with engine.begin() as connection:  # an ended plan leaves the place free
        connection.execute(text("UPDATE enrolment SET status = 'revoked' WHERE key = 'old'"))
        connection.execute(text(row), {"key": "new", "status": "active"})
    engine.dispose()


def test_an_upsert_inserts_once_and_then_updates_the_same_row(database_url):
    engine = create_db_engine(database_url)
    upgrade(engine)
    for seen in ("2026-12-01T10:00:00Z", "2026-12-02T10:00:00Z"):
        with Session(engine) as db, db.begin():
            row = {"fhir_base": "http://e", "feed": REFERRALS, "seen_until": seen}
            upsert(db, PollRow, [row], ("fhir_base", "feed"))
    with Session(engine) as db:
        assert db.scalars(select(PollRow.seen_until)).all() == ["2026-12-02T10:00:00Z"]
    engine.dispose()


def test_processes_starting_together_migrate_once(database_url):
    # Web and sync processes all call upgrade() at start; four start at the same moment.
    script = "import sys; from fhir_burnout.db import *; upgrade(create_db_engine(sys.argv[1]))"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, database_url], stderr=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=60)[1] for p in processes]
    assert [p.returncode for p in processes] == [0] * 4, "\n".join(outputs)  # whole tracebacks
    engine = create_db_engine(database_url)
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_threads_of_one_process_migrate_once(database_url):
    engines = [create_db_engine(database_url) for _ in range(3)]
    threads = [threading.Thread(target=upgrade, args=(e,)) for e in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {current_revision(e) for e in engines} == {head_revision()}
    for engine in engines:
        engine.dispose()


def test_a_database_made_before_migrations_is_refused_with_a_clear_message(tmp_path):
    engine = create_db_engine(f"sqlite:///{tmp_path / 'old.db'}")
    Base.metadata.tables["launch_session"].create(engine)
    with pytest.raises(DatabaseError, match="no migration history"):
        upgrade(engine)
    engine.dispose()


@pytest.mark.parametrize(("idle_before_ping", "survives"), [(0.0, True), (3600.0, False)])
def test_a_connection_the_server_closed_is_replaced_after_being_idle(idle_before_ping, survives):
    # A PostgreSQL restart or idle timeout closes pooled connections behind our back. One
    # idle for longer than idle_before_ping is tested first and replaced; without that test
    # (the second case, here to show the first one means something) the request fails.
    engine = create_db_engine(POSTGRES, idle_before_ping=idle_before_ping)
    try:
        with engine.connect() as connection:
            pid = connection.execute(text("select pg_backend_pid()")).scalar_one()
        killer = create_db_engine(POSTGRES)
        with killer.connect() as other:
            other.execute(text("select pg_terminate_backend(:pid)"), {"pid": pid})
        killer.dispose()
        if survives:
            with engine.connect() as connection:
                assert connection.execute(text("select 1")).scalar_one() == 1
        else:
            with pytest.raises(OperationalError), engine.connect() as connection:
                connection.execute(text("select 1"))
    finally:
        engine.dispose()


def test_on_sqlite_a_reader_does_not_wait_for_a_writer(tmp_path):
    engine = create_db_engine(f"sqlite:///{tmp_path / 'app.db'}")
    upgrade(engine)
    try:
        with engine.connect() as writer:
            writer.begin()  # BEGIN IMMEDIATE: the write lock, held until the end
            writer.execute(text("delete from draft"))
            with reader(engine).connect() as reading:
                started = reading.execute(text("select count(*) from enrolment")).scalar_one()
            assert started == 0  # read at once: had it queued for the lock, 30 s then an error
            writer.rollback()
    finally:
        engine.dispose()


def test_a_new_sqlite_database_locked_by_another_process_is_switched_to_wal_once_free(tmp_path):
    # The first processes on a new database file all switch it to WAL as they connect; while
    # one holds the write lock, SQLite refuses the switch at once ("database is locked"),
    # without waiting for the busy timeout. The engine waits for it instead.
    path = tmp_path / "new.db"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("CREATE TABLE started_first (x)")
    threading.Timer(0.5, other.execute, args=("COMMIT",)).start()
    engine = create_db_engine(f"sqlite:///{path}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()
    other.close()


def test_a_safety_alert_made_before_the_priority_migration_stays_urgent(database_url):
    """0011: a care professional's safety Task made before the rules were data was urgent,
    and is after the upgrade; a phase request has no priority of its own."""
    engine = create_db_engine(database_url)
    upgrade(engine, "0008")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO enrolment (key, fhir_base, patient, track, plan_definition, "
                "status, language, period_start, created_at, request_group_key) VALUES ('e', "
                "'http://e', 'pat-1', 'standard', 'p', 'active', 'nl', '2026-12-01', "
                "'2026-12-01T00:00:00+00:00', 'rg')"
            )
        )
        task = (
            "INSERT INTO task (key, enrolment_key, position, action_id, kind, definition, "
            "title, status, owner, updated_at) VALUES (:key, 'e', :n, :action, "
            "'practitioner', 'p', 't', 'requested', 'Organization/1', "
            "'2026-12-01T00:00:00+00:00')"
        )
        connection.execute(text(task), {"key": "alert", "n": 1, "action": "safety:r1"})
        connection.execute(text(task), {"key": "ask", "n": 2, "action": "unlock:insight"})
    upgrade(engine)
    with engine.begin() as connection:
        found = connection.execute(text("SELECT key, priority FROM task ORDER BY key")).all()
    assert [tuple(row) for row in found] == [("alert", "urgent"), ("ask", None)]
    engine.dispose()


def test_a_new_sqlite_database_is_readable_by_its_owner_only(tmp_path):
    """It holds clients' answers and notes: mode 0600, its WAL files too."""
    path = tmp_path / "app.db"
    engine = create_db_engine(f"sqlite:///{path}")
    upgrade(engine)
    with engine.begin() as connection:  # a write: the -wal file exists now
        connection.execute(text("CREATE TABLE t (x INTEGER)"))
        assert (tmp_path / "app.db-wal").exists()
        modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()}
    engine.dispose()
    assert modes == dict.fromkeys(modes, 0o600) and "app.db" in modes


def test_a_failing_statement_never_shows_its_parameters(database_url):
    """SQLAlchemy's error text lists no parameters (a note, a session id). PostgreSQL's own
    DETAIL may still repeat a failing row, which is why the app logs errors by type only
    (tests/test_outage.py)."""
    engine = create_db_engine(database_url)
    upgrade(engine)
    with pytest.raises(IntegrityError) as failed, engine.begin() as connection:
        connection.execute(
            text("INSERT INTO enrolment (key, fhir_base) VALUES (:key, :base)"),
            {"key": "geheime-notitie-over-de-client", "base": None},
        )
    engine.dispose()
    assert "[SQL parameters hidden due to hide_parameters=True]" in str(failed.value)
    assert "[parameters:" not in str(failed.value)


def _downgrade(engine, revision: str) -> None:
    """Alembic's downgrade on ``engine`` (the app itself only ever upgrades)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def test_the_poll_states_of_both_feeds_move_into_one_table_and_back(database_url):
    """0015: ``referral_poll`` and ``koppeltaal_poll`` become ``ehr_poll`` (feed
    ``referrals``, ``koppeltaal-tasks``), every value kept, the same EHR in both; the
    downgrade gives each old table its rows back."""
    engine = create_db_engine(database_url)
    upgrade(engine, "0014")
    times = {"succeeded_at": "2026-12-01 10:00:05", "wanted_at": "2026-12-01 10:01:00"}
    referral = {"fhir_base": "http://e", "seen_until": "2026-12-01T10:00:00Z", **times}
    domain = {**referral, "seen_until": "2026-12-02T09:00:00Z", "trace_id": "trace-1",
              "cause": "request-1", "subscription": "sub-7"}  # fmt: skip
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO referral_poll (fhir_base, seen_until, succeeded_at, wanted_at) "
                 "VALUES (:fhir_base, :seen_until, :succeeded_at, :wanted_at)"), referral,
        )  # fmt: skip
        connection.execute(
            text("INSERT INTO koppeltaal_poll (fhir_base, seen_until, succeeded_at, wanted_at, "
                 "trace_id, cause, subscription) VALUES (:fhir_base, :seen_until, "
                 ":succeeded_at, :wanted_at, :trace_id, :cause, :subscription)"), domain,
        )  # fmt: skip
    upgrade(engine)
    columns = "fhir_base, feed, seen_until, trace_id, cause, subscription"
    with engine.connect() as connection:
        rows = connection.execute(text(f"SELECT {columns} FROM ehr_poll ORDER BY feed")).all()
    assert [tuple(r) for r in rows] == [
        ("http://e", "koppeltaal-tasks", "2026-12-02T09:00:00Z", "trace-1", "request-1", "sub-7"),
        ("http://e", "referrals", "2026-12-01T10:00:00Z", None, None, None),
    ]
    with Session(engine) as db:  # the times too, as the poller reads them
        for feed in ("referrals", "koppeltaal-tasks"):
            row = db.get(PollRow, ("http://e", feed))
            assert (row.succeeded_at.replace(tzinfo=None), row.wanted_at.replace(tzinfo=None)) == (
                datetime(2026, 12, 1, 10, 0, 5), datetime(2026, 12, 1, 10, 1),
            )  # fmt: skip
    assert not {"referral_poll", "koppeltaal_poll"} & set(inspect(engine).get_table_names())
    _downgrade(engine, "0014")
    with engine.connect() as connection:
        back = connection.execute(text("SELECT fhir_base, seen_until FROM referral_poll")).all()
        kt = connection.execute(
            text(
                "SELECT fhir_base, seen_until, trace_id, cause, subscription FROM koppeltaal_poll"
            )
        ).all()
    assert [tuple(r) for r in back] == [("http://e", "2026-12-01T10:00:00Z")]
    assert [tuple(r) for r in kt] == [
        ("http://e", "2026-12-02T09:00:00Z", "trace-1", "request-1", "sub-7")
    ]
    assert "ehr_poll" not in inspect(engine).get_table_names()
    engine.dispose()
