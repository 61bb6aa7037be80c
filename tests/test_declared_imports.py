"""Every package that ``fhir_burnout/`` imports directly is declared in pyproject.toml: a
dependency that only arrives through another one can leave with that one's next release
(issue 18, point 5)."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def imported_modules(package: Path) -> dict[str, str]:
    """The top-level modules that ``package``'s files import (absolute imports, not the
    standard library or the package itself), each with one file that imports it."""
    found: dict[str, str] = {}
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != package.name:
                    found.setdefault(top, str(path.relative_to(package.parent)))
    return found


def _normal(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(pyproject: Path) -> set[str]:
    """The distributions named in ``[project] dependencies``."""
    dependencies = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["dependencies"]
    return {_normal(re.split(r"[\s\[<>=~!;]", spec, maxsplit=1)[0]) for spec in dependencies}


def undeclared(package: Path, pyproject: Path) -> list[str]:
    """Each directly imported module whose distribution pyproject.toml does not declare."""
    distributions = importlib.metadata.packages_distributions()
    named = declared(pyproject)
    return [
        f"{module} (imported in {where}; from {', '.join(distributions.get(module, ['?']))})"
        for module, where in sorted(imported_modules(package).items())
        if not {_normal(d) for d in distributions.get(module, [module])} & named
    ]


def test_every_direct_import_of_the_package_is_a_declared_dependency():
    assert undeclared(ROOT / "fhir_burnout", ROOT / "pyproject.toml") == []


@pytest.mark.parametrize("module", ["click", "limits"])
def test_an_undeclared_import_is_found(tmp_path, module):
    package = tmp_path / "fhir_burnout"
    package.mkdir()
    (package / "a.py").write_text(f"import json\nfrom {module} import x\nfrom . import b\n")
    pyproject = ROOT / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    stripped = tmp_path / "pyproject.toml"
    stripped.write_text(re.sub(rf'\n\s*"{module}[^"]*",', "", text), encoding="utf-8")
    assert [line.split(" ")[0] for line in undeclared(package, stripped)] == [module]
    assert undeclared(package, pyproject) == []
