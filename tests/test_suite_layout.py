"""The test suite's own layout: shared helpers and fixtures live in helper modules and
``conftest.py``, never in a test module that others import (a test module then runs, and
breaks, for reasons of its neighbours)."""

from __future__ import annotations

import ast
from pathlib import Path

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
