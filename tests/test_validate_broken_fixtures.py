"""Each broken fixture changes one thing in a valid programme; validation must name it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fhir_burnout.cli import main

from .conftest import FIXTURES

CASES = sorted(p.name for p in (FIXTURES / "broken").iterdir() if p.is_dir())


def overlay(case: Path, target: Path) -> None:
    for path in case.rglob("*"):
        rel = path.relative_to(case)
        if path.is_dir() or rel.name in ("expected.txt", "REMOVE"):
            continue
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target / rel)
    remove = case / "REMOVE"
    if remove.exists():
        for rel in remove.read_text().split():
            (target / rel).unlink()


def test_the_minimal_fixture_is_valid(runner, minimal):
    result = runner.invoke(main, ["validate", "--root", str(minimal)])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("case", CASES)
def test_validate_reports_the_broken_thing(runner, minimal, case):
    overlay(FIXTURES / "broken" / case, minimal)
    expected = (FIXTURES / "broken" / case / "expected.txt").read_text().strip()
    result = runner.invoke(main, ["validate", "--root", str(minimal)])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert any(line.startswith(expected) for line in lines), result.output
    # one clear line per problem, each saying what to do
    assert lines[-1].endswith(
        f"problem(s) in {minimal / 'content'} and {minimal / 'questionnaires'}"
    )


@pytest.mark.parametrize("case", CASES)
def test_build_refuses_broken_content(runner, minimal, case, tmp_path):
    overlay(FIXTURES / "broken" / case, minimal)
    result = runner.invoke(main, ["build", "--root", str(minimal), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "nothing was built" in result.output
    assert not (tmp_path / "out").exists()


def test_there_is_a_broken_fixture_for_every_kind_of_check():
    assert len(CASES) >= 30
