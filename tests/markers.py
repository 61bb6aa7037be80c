"""What a test needs beyond Python, as markers: ``sandbox`` (starts the Node sandbox EHR),
``postgres`` (needs PostgreSQL), ``browser`` (drives Chromium). A plugin of conftest.

The markers are read from what a test uses (its fixtures, and the calls in its own source
and in its fixtures' sources), so ``pytest -m "not sandbox and not browser and not postgres"``
runs the fast part without anyone marking 400 tests by hand. Two checks keep them honest:
a test that starts a sandbox or connects to PostgreSQL without its marker fails, and a run
that selects ``postgres`` tests without a PostgreSQL to reach stops with one message saying
what is needed (README, "Running the tests").
"""

from __future__ import annotations

import inspect
import os
import re
from collections.abc import Callable, Generator
from functools import cache
from typing import Any

import psycopg
import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from fhir_burnout.sandbox import SandboxProcess

from .outbox_load import POSTGRES

#: What starts a sandbox: a call, directly or through conftest's ``serving``, or the CLI's
#: ``demo`` or ``sandbox`` command in an argument list (in this process or a child).
STARTS_SANDBOX = re.compile(
    r"\b(start_sandbox|serving|SandboxProcess)\(|[\"'](demo|sandbox)[\"'],"
)
#: Uses of PostgreSQL outside the ``database_url`` fixture's ``postgresql`` param: the tests'
#: server, or a private cluster of PostgreSQL's own server programs (test_outage).
USES_POSTGRES = re.compile(r"\bpostgres_schema\(|\bPOSTGRES\b|\binitdb\b")
#: Set to skip the ``postgres`` tests, with the reason, when PostgreSQL cannot be reached.
SKIP_POSTGRES = "FHIR_BURNOUT_TEST_SKIP_POSTGRES"
NEEDS_POSTGRES = (
    "PostgreSQL at 127.0.0.1:5432, database test, user root with trust auth; "
    "or set FHIR_BURNOUT_TEST_DATABASE_URL=postgresql+psycopg://USER@HOST:PORT/DB; "
    'or run -m "not postgres"; or set ' + SKIP_POSTGRES + "=1 to skip these tests"
)

_running: list[pytest.Item] = []


@cache  # a fixture's source is read once, not once per test using it
def _source(function: Callable[..., Any]) -> str:
    try:
        return inspect.getsource(function)
    except (OSError, TypeError):  # a builtin fixture (tmp_path, request, ...)
        return ""


def needs(item: pytest.Item) -> set[str]:
    """The markers ``item`` needs, from its fixtures and from its own and its fixtures' code."""
    assert isinstance(item, pytest.Function)
    definitions = item._fixtureinfo.name2fixturedefs
    fixtures = {
        name: "".join(_source(definition.func) for definition in definitions.get(name, ()))
        for name in item.fixturenames
    }
    # database_url makes a PostgreSQL schema for its postgresql param only: read the param.
    without_database_url = [_source(item.function)] + [
        source for name, source in fixtures.items() if name != "database_url"
    ]
    found = set()
    if any(STARTS_SANDBOX.search(source) for source in without_database_url):
        found.add("sandbox")
    if "browser" in item.fixturenames:
        found.add("browser")
    callspec = getattr(item, "callspec", None)
    if (callspec is not None and callspec.params.get("database_url") == "postgresql") or any(
        USES_POSTGRES.search(source) for source in without_database_url
    ):
        found.add("postgres")
    return found


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for name in sorted(needs(item)):
            item.add_marker(name)


def postgres_problem(url: str = POSTGRES) -> str | None:
    """Why the tests' PostgreSQL cannot be used, or None when it answers."""
    engine = create_engine(url, connect_args={"connect_timeout": 5})
    try:
        with engine.connect():
            return None
    except OperationalError as error:
        # psycopg's first line names the address and the cause; the rest is a hint for psql.
        return str(error.orig).strip().splitlines()[0]
    finally:
        engine.dispose()


def pytest_collection_finish(session: pytest.Session) -> None:
    """One message for the whole run, not a connection traceback for each postgres test."""
    wanting = [item for item in session.items if item.get_closest_marker("postgres")]
    problem = postgres_problem() if wanting else None
    if problem is None:
        return
    where = make_url(POSTGRES).render_as_string(hide_password=True)
    message = f"{len(wanting)} selected tests need {NEEDS_POSTGRES}. {where}: {problem}"
    if os.environ.get(SKIP_POSTGRES):
        for item in wanting:
            item.add_marker(pytest.mark.skip(reason=f"{SKIP_POSTGRES} is set: {message}"))
        return
    raise pytest.UsageError(message)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    _running.append(item)
    try:
        return (yield)
    finally:
        _running.pop()


def _unmarked(what: str, marker: str) -> None:
    """Fail the running test if it does ``what`` without ``marker``: needs() missed how."""
    if _running and _running[-1].get_closest_marker(marker) is None:
        raise AssertionError(
            f"{_running[-1].nodeid} {what} but is not marked {marker}: "
            "teach tests/markers.py:needs() how it does"
        )


def pytest_configure(config: pytest.Config) -> None:
    start, connect = SandboxProcess.start, psycopg.connect

    # The checks wrap the two process boundaries: the sandbox's Node process and
    # PostgreSQL's socket (SQLAlchemy's psycopg dialect calls psycopg.connect).
    def checked_start(self: SandboxProcess) -> Any:
        _unmarked("starts a sandbox", "sandbox")
        return start(self)

    def checked_connect(*args: Any, **kwargs: Any) -> Any:
        _unmarked("connects to PostgreSQL", "postgres")
        return connect(*args, **kwargs)

    SandboxProcess.start = checked_start  # type: ignore[method-assign]
    psycopg.connect = checked_connect  # type: ignore[assignment]
    config.add_cleanup(lambda: setattr(SandboxProcess, "start", start))
    config.add_cleanup(lambda: setattr(psycopg, "connect", connect))
