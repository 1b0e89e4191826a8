"""Benchmark: wall time of the demo's `kedro run` on a fresh clone, per pipeline.

Clones the current commit into a temporary folder (nothing under data/ is reused; the
demo dataset is generated as on a user's first run), links this checkout's .venv, and
runs either the whole default pipeline once (``--whole``, what ``make demo`` does) or
each pipeline in turn (the same work, with a per-stage time). Prints a JSON summary.
The clone runs with this checkout's installed package (an editable install points at
this checkout's src/), so commit or stash local changes to measure exactly a commit.

    .venv/bin/python benchmarks/bench_demo_run.py            # per stage
    .venv/bin/python benchmarks/bench_demo_run.py --whole    # one `kedro run`
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STAGES = ("fmri_preprocessing", "feature_extraction", "encoding", "analyses", "reporting")


def run(cmd: list[str], cwd: Path, log: Path) -> float:
    start = time.perf_counter()
    with log.open("a") as out:
        subprocess.run(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--whole", action="store_true", help="one `kedro run` instead of one run per pipeline")
    parser.add_argument("--keep", action="store_true", help="keep the clone (its path is printed)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="vlm-brain-bench-"))
    clone = root / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    (clone / ".venv").symlink_to(REPO / ".venv")
    kedro = str(REPO / ".venv/bin/kedro")
    log = root / "kedro.log"
    times = {}
    if args.whole:
        times["kedro run"] = run([kedro, "run"], clone, log)
    else:
        for stage in STAGES:
            times[stage] = run([kedro, "run", "--pipelines", stage], clone, log)
        times["total"] = sum(times.values())
    outputs = [p for p in ("data/08_reporting/report.html", "data/08_reporting/findings.json") if (clone / p).exists()]
    print(json.dumps({"seconds": {k: round(v, 1) for k, v in times.items()}, "outputs": outputs,
                      "log": str(log), "clone": str(clone) if args.keep else None}, indent=2))
    if not args.keep:
        subprocess.run(["rm", "-rf", str(clone)], check=True)


if __name__ == "__main__":
    sys.exit(main())
