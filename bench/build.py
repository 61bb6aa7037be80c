"""Build time per resource at 1x, 10x and 100x the modules (synthetic copies).

Each scale copies the real content into a temporary tree, adds (k-1) copies of every module
to its phase, then times loading, building and writing the package (tgz, bundle.json,
bundle.xml). Growth must be linear. Copies add modules only, and a module (two Markdown
files, an ActivityDefinition) costs more than the average resource at 1x, so the time per
resource rises with the share of modules; the linearity figure is therefore the time per
*added* module: (t(k) - t(1)) / (modules added), at 100x as a ratio of that at 10x, which
should stay near 1.

Last line: one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fhir_burnout.resources import build_resources, load_programme, write_package  # noqa: E402


def synthetic_tree(target: Path, copies: int) -> None:
    """The real content with every module copied ``copies - 1`` more times."""
    shutil.copytree(ROOT / "content", target / "content")
    shutil.copytree(ROOT / "questionnaires", target / "questionnaires")
    programme_file = target / "content" / "programme.yaml"
    data = yaml.safe_load(programme_file.read_text(encoding="utf-8"))
    for phase in data["phases"]:
        originals = list(phase["modules"])
        for k in range(1, copies):
            for code in originals:
                new = f"{code}-copy-{k}"
                for lang in data["languages"]:
                    text = (target / "content" / lang / f"{code}.md").read_text(encoding="utf-8")
                    text = re.sub(r"^code: .*$", f"code: {new}", text, count=1, flags=re.M)
                    (target / "content" / lang / f"{new}.md").write_text(text, encoding="utf-8")
                phase["modules"].append(new)
    programme_file.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


def measure(copies: int, repeats: int) -> dict[str, float]:
    best = float("inf")
    count = 0
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree"
        synthetic_tree(tree, copies)
        for _ in range(repeats):
            start = time.perf_counter()
            programme, problems = load_programme(tree)
            assert not problems, problems[:3]
            resources = build_resources(programme)
            write_package(programme, resources, Path(tmp) / "dist")
            best = min(best, time.perf_counter() - start)
            count = len(resources)
    return {
        "copies": copies,
        "resources": count,
        "seconds": best,
        "per_resource_ms": best / count * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="1,10,100")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = [measure(int(s), args.repeats if int(s) < 100 else 1) for s in args.scales.split(",")]
    base = rows[0]["per_resource_ms"]
    print(
        f"{'modules x':>9} {'resources':>9} {'seconds':>9} {'ms/resource':>12} {'ratio to 1x':>12}"
    )
    for row in rows:
        row["ratio"] = row["per_resource_ms"] / base
        print(
            f"{row['copies']:>9} {row['resources']:>9} {row['seconds']:>9.3f} "
            f"{row['per_resource_ms']:>12.3f} {row['ratio']:>12.2f}"
        )
    added = [
        (r["seconds"] - rows[0]["seconds"]) / (r["resources"] - rows[0]["resources"]) * 1000
        for r in rows[1:]
        if r["resources"] > rows[0]["resources"]
    ]
    growth = round(added[-1] / added[0], 2) if len(added) > 1 else None
    print(f"ms per added module: {[round(a, 2) for a in added]}; last/first: {growth}")
    print(
        json.dumps(
            {
                "bench": "build",
                "baseline_ms_per_resource": round(base, 3),
                "ms_per_added_module": [round(a, 3) for a in added],
                "added_module_growth": growth,
                "scales": [
                    {k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()}
                    for r in rows
                ],
            }
        )
    )


if __name__ == "__main__":
    main()
