"""The vendored web assets (static/vendor/) are exactly what the assets lockfile's packages
contain, with their licences, and the Python package ships them (pip install needs no Node).
``make test`` installs the packages with ``npm ci`` in assets/ first."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "assets" / "vendor.py"
WEB = ROOT / "fhir_burnout" / "web"


def vendor_script() -> ModuleType:
    """assets/vendor.py as a module (it is a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("assets_vendor", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_vendored_files_are_what_the_lockfile_packages_contain():
    assert (ROOT / "assets" / "node_modules" / ".installed").exists() or (
        ROOT / "assets" / "node_modules" / "@utrecht"
    ).exists(), "make test runs npm ci in assets/ first"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    "change",
    [
        ("utrecht.css", lambda b: b.replace(b"utrecht-button", b"utrecht-knop", 1)),
        ("licenses/radio-button-css.md", lambda b: b[:-40]),
        ("extra.css", lambda b: b"body { color: red }"),
    ],
)
def test_a_vendored_file_that_differs_from_its_package_is_named(tmp_path, change):
    vendor = vendor_script()
    copy = tmp_path / "vendor"
    shutil.copytree(vendor.VENDOR, copy)
    vendor.VENDOR = copy
    assert vendor.differences() == []
    path, edit = change
    target = copy / path
    target.write_bytes(edit(target.read_bytes() if target.exists() else b""))
    assert [p.split(":")[0] for p in vendor.differences()] == [path]


def test_every_vendored_package_brings_its_licence_and_is_named_in_readme_and_notice():
    readme = (WEB / "static" / "vendor" / "README.md").read_text(encoding="utf-8")
    notice = (ROOT / "NOTICE").read_text(encoding="utf-8")
    css = (WEB / "static" / "vendor" / "utrecht.css").read_text(encoding="utf-8")
    names = [row.split("|")[1].strip() for row in readme.splitlines() if row.startswith("| @")]
    assert len(names) >= 10
    for name in names:
        short = name.removeprefix("@utrecht/")
        assert (WEB / "static" / "vendor" / "licenses" / f"{short}.md").exists()
        assert f"/* {name} " in css
        assert name in notice, f"NOTICE does not name {name}"


def test_the_package_data_ships_every_static_file():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    globs = pyproject["tool"]["setuptools"]["package-data"]["fhir_burnout.web"]
    shipped = {path for pattern in globs for path in WEB.glob(pattern)}  # as setuptools reads it
    static = [p for p in (WEB / "static").rglob("*") if p.is_file()]
    assert static
    assert [p.relative_to(WEB).as_posix() for p in static if p not in shipped] == []
