"""Alembic migrations, run from Python: ``upgrade(engine)`` brings a database to the head.

Every process may call it at start (web workers, sync workers, the CLI): on PostgreSQL an
advisory lock lets one of them migrate while the others wait; on SQLite the write lock does
the same. An up-to-date database costs one query.
"""

from __future__ import annotations

import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

from fhir_burnout.db._base import Base
from fhir_burnout.db._engine import is_postgresql
from fhir_burnout.errors import FhirBurnoutError


class DatabaseError(FhirBurnoutError):
    """The app's database cannot be used as it is."""


MIGRATIONS = Path(__file__).parent / "migrations"
#: An arbitrary constant that names our advisory lock (pg_advisory_lock takes a bigint).
_LOCK = 0x66_68_69_72_62_75_72_6E  # "fhirburn"
#: Alembic keeps its running context in a module global: one migration per process at a time.
_IN_PROCESS = threading.Lock()


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest migration of this version of fhir_burnout."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None  # there is always at least the first migration
    return head


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at (None: an empty database)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply every migration the database lacks, up to ``revision``."""
    wanted = head_revision() if revision == "head" else revision
    if current_revision(engine) == wanted:
        return
    with _IN_PROCESS, engine.connect() as connection:
        if is_postgresql(engine):
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _LOCK})
            connection.commit()
        try:
            # Look again under the lock (on SQLite: inside the write transaction): another
            # process may have migrated while we waited.
            with connection.begin():
                current = MigrationContext.configure(connection).get_current_revision()
                if current != wanted:
                    _refuse_unversioned(connection, current)
                    command.upgrade(_config(connection), revision)
        finally:
            if is_postgresql(engine):
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _LOCK})
                connection.commit()


def _refuse_unversioned(connection: Connection, current: str | None) -> None:
    if current is None and set(inspect(connection).get_table_names()) & set(Base.metadata.tables):
        url = connection.engine.url.render_as_string(hide_password=True)
        raise DatabaseError(
            f"{url}: has fhir_burnout tables but no migration history (it was made before "
            "migrations existed); move it aside and start with an empty database"
        )
