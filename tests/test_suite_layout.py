"""The test suite's own layout: shared helpers and fixtures live in helper modules and
``conftest.py``, never in a test module that others import (a test module then runs, and
breaks, for reasons of its neighbours)."""

from __future__ import annotations

import ast
import os
import socket
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from fhir_burnout.db import create_db_engine, current_revision, head_revision
from fhir_burnout.workflow import EnrolmentRow

from .outbox_load import migrated_postgres_schema

TESTS = Path(__file__).resolve().parent


def imported_modules(path: Path) -> list[str]:
    """The modules ``path`` imports from, relative ones as ``tests.<name>``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # from .x import y, or from . import test_x
                base = "tests" + (f".{node.module}" if node.module else "")
                found += [base] if node.module else [f"tests.{a.name}" for a in node.names]
            elif node.module:
                found.append(node.module)
    return found


def test_no_module_of_the_suite_imports_a_test_module():
    offenders = {
        path.name: sorted(m for m in imported_modules(path) if m.startswith("tests.test_"))
        for path in sorted(TESTS.glob("*.py"))
    }
    assert {name: mods for name, mods in offenders.items() if mods} == {}


# --- PostgreSQL missing: one message for the run, or a skip when asked for -----------------

#: A test on both databases that needs nothing else (no sandbox, no browser).
BOTH_DATABASES = (
    "tests/test_workflow.py::test_a_submitted_response_completes_its_task_in_one_transaction"
)


def pytest_in_child(*args: str, **env: str) -> tuple[int, str]:
    """(exit code, output) of pytest on ``args`` in a child process, with ``env`` added."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=TESTS.parent, env={**os.environ, **env}, capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    return done.returncode, done.stdout + done.stderr


@pytest.fixture(scope="module")
def nowhere():
    """A PostgreSQL URL on a port bound but not listening here: connections are refused."""
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        yield f"postgresql+psycopg://root@127.0.0.1:{bound.getsockname()[1]}/test"


@pytest.mark.slow  # pytest in a child process: seconds each
def test_without_postgresql_the_run_stops_with_one_message_saying_what_is_needed(nowhere):
    code, output = pytest_in_child(BOTH_DATABASES, FHIR_BURNOUT_TEST_DATABASE_URL=nowhere)
    assert code == pytest.ExitCode.USAGE_ERROR, output
    assert output.count("PostgreSQL at 127.0.0.1:5432, database test") == 1, output
    assert "FHIR_BURNOUT_TEST_DATABASE_URL=" in output and '-m "not postgres"' in output
    assert "Traceback" not in output and "passed" not in output, output


@pytest.mark.slow  # pytest in a child process: seconds each
def test_without_postgresql_the_opt_out_skips_those_tests_with_the_reason(nowhere):
    code, output = pytest_in_child(
        "-rs", BOTH_DATABASES, FHIR_BURNOUT_TEST_DATABASE_URL=nowhere,
        FHIR_BURNOUT_TEST_SKIP_POSTGRES="1",
    )  # fmt: skip
    assert code == pytest.ExitCode.OK, output
    assert "1 passed, 1 skipped" in output, output
    assert "FHIR_BURNOUT_TEST_SKIP_POSTGRES is set: 1 selected tests need PostgreSQL" in output
    assert "Traceback" not in output, output


@pytest.mark.slow  # pytest in a child process: seconds each
def test_without_postgresql_the_rest_runs_when_postgres_tests_are_not_selected(nowhere):
    code, output = pytest_in_child(
        "-m", "not postgres", BOTH_DATABASES, FHIR_BURNOUT_TEST_DATABASE_URL=nowhere
    )
    assert code == pytest.ExitCode.OK, output
    assert "1 passed, 1 deselected" in output, output


@pytest.mark.postgres
def test_a_reused_postgresql_schema_comes_back_migrated_and_empty():
    """The ``engine`` tests' PostgreSQL schemas are reused (migrating one costs more than
    most tests): the next test gets the same schema at head with every table empty, and a
    schema a test changed beyond its rows is dropped rather than handed on."""
    with migrated_postgres_schema() as first:
        engine = create_db_engine(first)
        with Session(engine) as db, db.begin():
            db.add(
                EnrolmentRow(
                    key="e1", fhir_base="https://ehr.example/fhir", patient="p1",
                    track="waiting-list", plan_definition="https://x/PlanDefinition/p|1",
                    period_start=date(2026, 12, 7), created_at=datetime.now(UTC),
                    request_group_key="rg1",
                )
            )  # fmt: skip
        engine.dispose()
    with migrated_postgres_schema() as second:
        assert second == first  # the same schema, handed on
        engine = create_db_engine(second)
        assert current_revision(engine) == head_revision()
        with Session(engine) as db:
            assert db.scalar(select(func.count()).select_from(EnrolmentRow)) == 0
        with engine.begin() as connection:  # a table of its own: not fit for the next test
            connection.execute(text("CREATE TABLE left_behind (id integer)"))
        engine.dispose()
    with migrated_postgres_schema() as third:
        assert third != first
