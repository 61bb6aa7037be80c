"""The database is only ever shaped by migrations, on SQLite and on PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

import fhir_burnout.sync._tables
import fhir_burnout.web._sessions
import fhir_burnout.workflow._tables  # noqa: F401 -- the tables the migrations must create
from fhir_burnout.db import (
    Base,
    DatabaseError,
    create_db_engine,
    current_revision,
    head_revision,
    upgrade,
)


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
    assert [p.returncode for p in processes] == [0] * 4, outputs
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
