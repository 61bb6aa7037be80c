"""Vendor the web pages' third-party CSS into the Python package, from the npm lockfile.

``make assets`` runs ``npm ci`` here (assets/) and then this script, which writes into
``fhir_burnout/web/static/vendor/``:

- ``utrecht.css``: every ``@utrecht/*-css`` package of ``package.json`` (NL Design System,
  the Utrecht components), its ``dist/index.min.css`` after a comment naming the package,
  its version and licence, in the order of ``package.json``;
- ``licenses/<package>.md``: each package's own LICENSE.md, unchanged;
- ``README.md``: a table of package, version and licence.

The files are committed, so ``pip install`` needs no Node. ``--check`` writes nothing and
exits 1 when the committed files differ from what the installed packages (which must be
the lockfile's versions) would give; ``tests/test_web_assets.py`` runs it in ``make test``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODULES = HERE / "node_modules"
VENDOR = HERE.parent / "fhir_burnout" / "web" / "static" / "vendor"

README_HEAD = """\
# Vendored web assets

Written by `make assets` (assets/vendor.py) from assets/package-lock.json; do not edit.
`tests/test_web_assets.py` fails when these files differ from what the lockfile's packages
contain. The CSS keeps its licence (EUPL-1.2 for the NL Design System components), whose
text is in licenses/; our own code is Apache-2.0 (see NOTICE).

| package | version | licence |
| --- | --- | --- |
"""


class VendorError(Exception):
    """The installed packages are not the lockfile's: run npm ci in assets/."""


def _packages() -> list[tuple[str, str, str, Path]]:
    """(name, version, licence, folder) of each dependency, as the lockfile pins it."""
    wanted = json.loads((HERE / "package.json").read_text(encoding="utf-8"))["dependencies"]
    lock = json.loads((HERE / "package-lock.json").read_text(encoding="utf-8"))["packages"]
    found = []
    for name in wanted:
        pinned = lock.get(f"node_modules/{name}", {})
        folder = MODULES / name
        manifest = folder / "package.json"
        if not manifest.exists():
            raise VendorError(f"{name} is not installed: run `npm ci` in assets/")
        installed = json.loads(manifest.read_text(encoding="utf-8"))
        if installed["version"] != pinned.get("version"):
            raise VendorError(
                f"{name} {installed['version']} is installed, the lockfile says "
                f"{pinned.get('version')}: run `npm ci` in assets/"
            )
        found.append((name, installed["version"], installed["license"], folder))
    return found


def expected() -> dict[str, bytes]:
    """Every vendored file (path under ``vendor/``) with the content it should have."""
    files: dict[str, bytes] = {}
    css, rows = [], []
    for name, version, licence, folder in _packages():
        short = name.removeprefix("@utrecht/")
        body = (folder / "dist" / "index.min.css").read_text(encoding="utf-8").strip()
        css.append(f"/* {name} {version}, {licence}: licenses/{short}.md */\n{body}\n")
        files[f"licenses/{short}.md"] = (folder / "LICENSE.md").read_bytes()
        rows.append(f"| {name} | {version} | {licence} |\n")
    files["utrecht.css"] = "".join(css).encode()
    files["README.md"] = (README_HEAD + "".join(rows)).encode()
    return files


def differences() -> list[str]:
    """The vendored files that are missing, different or not the lockfile's."""
    want = expected()
    have = {p.relative_to(VENDOR).as_posix() for p in VENDOR.rglob("*") if p.is_file()}
    problems = [f"{path}: not from the lockfile" for path in sorted(have - set(want))]
    for path, content in want.items():
        target = VENDOR / path
        if not target.exists():
            problems.append(f"{path}: missing")
        elif target.read_bytes() != content:
            problems.append(f"{path}: differs from the installed package")
    return problems


def write() -> None:
    """Write the vendored files, removing any the lockfile no longer has."""
    want = expected()
    for old in VENDOR.rglob("*"):
        if old.is_file() and old.relative_to(VENDOR).as_posix() not in want:
            old.unlink()
    for path, content in want.items():
        target = VENDOR / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)


def main(argv: list[str]) -> int:
    """``vendor.py`` writes; ``vendor.py --check`` only compares (exit 1 on a difference)."""
    try:
        if "--check" in argv:
            problems = differences()
            for problem in problems:
                print(f"static/vendor/{problem}", file=sys.stderr)
            if problems:
                print("run `make assets` and commit the result", file=sys.stderr)
            return 1 if problems else 0
        write()
    except VendorError as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
