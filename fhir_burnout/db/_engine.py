"""Engines for SQLite (embedded default) and PostgreSQL (production)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DisconnectionError

_READ_ONLY = "fhir_burnout_read_only"


def reader(engine: Engine) -> Engine:
    """``engine`` for requests that only read: each statement on its own, no transaction
    around them (no BEGIN and ROLLBACK round trips; on SQLite no write lock, and WAL lets
    them read beside a writer). Statements may see different moments, which is fine for
    showing a page. Never write through it."""
    options: dict[str, Any] = {_READ_ONLY: True}
    if engine.dialect.name == "postgresql":
        options["isolation_level"] = "AUTOCOMMIT"
    return engine.execution_options(**options)


def is_postgresql(engine: Engine) -> bool:
    """Whether ``engine`` talks to PostgreSQL (row locks with SKIP LOCKED are available)."""
    return engine.dialect.name == "postgresql"


def create_db_engine(url: str, *, idle_before_ping: float = 10.0) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and a busy timeout; on
    PostgreSQL a pooled connection idle for ``idle_before_ping`` seconds is tested first.

    SQLite allows one writer at a time: with WAL, readers do not block the writer, and the
    busy timeout makes a second process wait for the lock instead of failing at once.

    The database holds clients' answers and notes: an error never shows a statement's
    parameters (``hide_parameters``: they end up in logs), and a new SQLite file is readable
    by its owner only (SQLite gives its -wal and -shm files the same mode).
    """
    if url.startswith("sqlite"):
        _owner_only(make_url(url).database)
        engine = create_engine(url, connect_args={"timeout": 30}, hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _pragmas(connection: Any, _record: Any) -> None:
            # pysqlite's own transaction handling begins late and DEFERRED; take it over.
            connection.isolation_level = None
            cursor = connection.cursor()
            _wal(cursor)
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(connection: Any) -> None:
            # IMMEDIATE: take the write lock at the start, so two processes never both read
            # and then both try to write (SQLite would fail one with "database is locked").
            # Readers (see reader()) run each statement on its own, without the lock.
            if not connection.get_execution_options().get(_READ_ONLY):
                connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    engine = create_engine(url, hide_parameters=True)
    _ping_when_idle(engine, idle_before_ping)
    return engine


def _owner_only(path: str | None) -> None:
    """Create the SQLite file ``path`` with mode 0600 if it does not exist yet (an existing
    file keeps the mode its owner gave it)."""
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


#: How long a new SQLite connection retries switching a database to WAL (seconds).
WAL_PATIENCE = 30.0


def _wal(cursor: Any) -> None:
    """``PRAGMA journal_mode=WAL``, tried again while another process holds the lock: on a
    new database file the first processes to connect switch it at the same moment, and
    SQLite answers a journal-mode change it cannot make at once with "database is locked"
    without waiting for the busy timeout."""
    deadline = time.monotonic() + WAL_PATIENCE
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _ping_when_idle(engine: Engine, idle: float) -> None:
    """Test a pooled connection before use when it has been idle a while: one the server
    closed meanwhile (a restart, an idle timeout) is replaced instead of failing a request.
    SQLAlchemy's ``pool_pre_ping`` does this on every checkout, a round trip per request
    that connections in steady use do not need (SQLAlchemy: "custom/legacy pessimistic
    ping", raising DisconnectionError so the pool retries with a new connection)."""

    @event.listens_for(engine, "checkin")
    def _returned(_connection: Any, record: Any) -> None:
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _taken(connection: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get("returned_at")
        if returned is None or time.monotonic() - returned < idle:
            return
        try:
            cursor = connection.cursor()
            cursor.execute("SELECT 1")
            cursor.close()
        except Exception as exc:
            raise DisconnectionError(str(exc)) from exc
