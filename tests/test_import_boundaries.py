"""Packages meet only through their ``__init__`` (issue 18, point 4; docs/architecture.md):
a module never imports another package's ``_private`` module, nor a ``_private`` name from
another package, so each package's ``__all__`` (pinned in test_exported_members) is the
whole of what others may use. A package's own private modules, and those of the packages
it lies in (``fhir_burnout._logging`` for ``fhir_burnout.cli``), stay open to it."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import fhir_burnout

PACKAGE = Path(fhir_burnout.__file__).parent


def _package_of(path: Path) -> str:
    """The dotted package a module belongs to (a package's ``__init__`` is its own)."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1])


def _inside(package: str, owner: str) -> bool:
    return package == owner or package.startswith(owner + ".")


def _reaches_around(path: Path, source: str | None = None) -> list[str]:
    """Every import in ``path`` (or ``source``, read as if it were there) of another
    package's private module or private name."""
    package, found = _package_of(path), []
    source = path.read_text(encoding="utf-8") if source is None else source
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported = [(node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            imported = [(alias.name, "") for alias in node.names]
        else:
            continue
        for module, name in imported:
            if not module.startswith("fhir_burnout"):
                continue
            parts = module.split(".")
            private = [i for i, part in enumerate(parts) if part.startswith("_")]
            # A private module is owned by the package holding it; a private name (not a
            # dunder such as __version__) by the module it is imported from.
            owner = ".".join(parts[: private[0]]) if private else module
            hidden = bool(private) or (name.startswith("_") and not name.startswith("__"))
            if hidden and not _inside(package, owner):
                where = f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"
                found.append(f"{where} {module}{' import ' + name if name else ''}")
    return found


def test_no_module_imports_another_package_s_private_module_or_name():
    modules = sorted(p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts)
    assert len(modules) > 100
    assert [hit for path in modules for hit in _reaches_around(path)] == []


def test_the_check_finds_a_reach_around():
    """The walk above finds what it looks for: a module of ``web`` taking a private
    function of ``smart_launch`` and a private module of ``koppeltaal``."""
    probe = PACKAGE / "web" / "_probe_for_test.py"
    source = (
        "from fhir_burnout.smart_launch._id_token import verify_id_token\n"
        "from fhir_burnout.koppeltaal import _audit\n"
        "from fhir_burnout.web._csrf import token\n"  # its own package: allowed
        "from fhir_burnout._logging import LEVELS\n"  # a package it lies in: allowed
        "from fhir_burnout import __version__\n"
    )
    assert _reaches_around(probe, source) == [
        "fhir_burnout/web/_probe_for_test.py:1 fhir_burnout.smart_launch._id_token"
        " import verify_id_token",
        "fhir_burnout/web/_probe_for_test.py:2 fhir_burnout.koppeltaal import _audit",
    ]


def test_every_module_imports():
    """Exporting through ``__init__`` adds import edges: every module still imports (no
    cycle), each package first through its ``__init__`` as another package would."""
    names = [m.name for m in pkgutil.walk_packages(fhir_burnout.__path__, "fhir_burnout.")]
    assert len(names) > 100
    for name in names:
        if ".migrations" not in name:
            importlib.import_module(name)
