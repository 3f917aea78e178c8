"""Wall time of a full `dvc repro` from an empty cache, and each stage's peak resident memory.

    MOVIEREC_DATA_MIRROR=../shared/data python benchmarks/pipeline.py [--runs 3] [--against REV]

Each run clones HEAD into a fresh temporary folder (empty DVC cache, no outputs), times `dvc repro`
there with the data from the mirror (the clone's own code: its src/ comes first on PYTHONPATH), and
checks with `movierec check-drift --tolerance 0` that the metrics equal the committed ones exactly.
With `--against REV`, each run also reproduces REV the same way, alternating which goes first, and
the ratio HEAD / REV of the medians is printed: a change's cost measured side by side in one sitting. Right after each run it times one epoch of the notebook's
own training as written (`train_speed.notebook_make_model`, batch 32, after a warm-up epoch) in the
same clone: this shared machine's speed moves by 2x from one hour to the next, so the wall time is
also given in those epochs, a figure that compares across days. Then every stage command is run once
more on its own, under a wrapper that reads the child's peak RSS (`resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`).
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from clones import clone, own_code, require_mirror

PEAK_RSS = (
    "import resource, subprocess, sys; rc = subprocess.call(sys.argv[1], shell=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL);"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(rc)"
)
STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")  # how `dvc repro --verbose` starts a log line
TF_STAGES = ("train", "rank")  # the only stages that import TensorFlow
NOTEBOOK_EPOCH = f"""
import sys, time
sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
from train_speed import notebook_make_model
from movierec.prepare import load_prepared
p = load_prepared("data/prepared")
model = notebook_make_model(len(p.user_ids), len(p.movie_ids))
x, y = p.train.inputs(), p.train.rating
model.fit(x, y, batch_size=32, epochs=1, verbose=0)
start = time.perf_counter()
model.fit(x, y, batch_size=32, epochs=1, verbose=0)
print(time.perf_counter() - start)
"""


def command_seconds(log: str) -> list[float]:
    """Each stage command's seconds in a `dvc repro --verbose` log: from the last timestamped line before
    "Running stage" to the first one after it (DVC logs nothing while a command runs)."""
    seconds, last, started = [], None, None
    for line in log.splitlines():
        if stamp := STAMP.match(line):
            now = datetime.strptime(stamp[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            if started is not None:
                seconds.append(now - started)
                started = None
            last = now
        elif line.startswith("Running stage"):
            started = last
    return seconds


def reproduce(repo: Path) -> tuple[float, str]:
    """(seconds of `dvc repro` from an empty cache, check-drift's verdict and where the time went) in `repo`."""
    start = time.perf_counter()
    run = subprocess.run(["dvc", "repro", "--verbose"], cwd=repo, capture_output=True, text=True, env=own_code(repo))
    wall, log = time.perf_counter() - start, run.stdout
    if run.returncode:
        errors = [line for line in (run.stderr + log).splitlines() if "ERROR" in line or line.startswith("Error:")]
        sys.exit(f"dvc repro failed in {repo}: {(errors or ['see its log'])[-1].strip()}")
    commands = command_seconds(log)
    split = f"{sum(commands):.1f} s in {len(commands)} stage commands, {wall - sum(commands):.1f} s in DVC itself"
    drift = subprocess.run(["movierec", "check-drift", "--tolerance", "0"], cwd=repo, capture_output=True, text=True, env=own_code(repo))
    verdict = (drift.stdout.strip() or drift.stderr.strip().removeprefix("Error: ")).splitlines()[:1] or ["no verdict"]
    return wall, f"{split}; " + verdict[0].split(": ", 1)[0]  # "N metric(s) drifted beyond 0.0", without the N names


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--against", metavar="REV", help="also reproduce REV in each run, alternating, and print HEAD / REV")
    ap.add_argument("--no-memory", action="store_true", help="skip the per-stage peak memory table")
    args = ap.parse_args()
    require_mirror()

    walls, in_epochs, against = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs):
            order = ["HEAD", args.against] if args.against and run % 2 == 0 else [args.against, "HEAD"] if args.against else ["HEAD"]
            for rev in order:
                repo = clone(Path(tmp) / f"run{run}-{rev.replace('/', '_')}", rev)
                wall, verdict = reproduce(repo)
                if rev != "HEAD":
                    against.append(wall)
                    print(f"run {run + 1}: {rev}: dvc repro {wall:.1f} s; {verdict}", flush=True)
                    continue
                walls.append(wall)
                epoch = float(subprocess.run([sys.executable, "-c", NOTEBOOK_EPOCH], cwd=repo, capture_output=True, text=True, check=True,
                                             env=own_code(repo)).stdout)
                in_epochs.append(walls[-1] / epoch)
                print(f"run {run + 1}: dvc repro {walls[-1]:.1f} s; {verdict}; the notebook's epoch right after: "
                      f"{epoch:.1f} s, so the run took {in_epochs[-1]:.1f} of them", flush=True)
                head_repo = repo
        print(f"median of {len(walls)}: {statistics.median(walls):.1f} s, {statistics.median(in_epochs):.1f} notebook epochs")
        if against:
            ratio = statistics.median(walls) / statistics.median(against)
            print(f"{args.against}: median of {len(against)}: {statistics.median(against):.1f} s; HEAD / {args.against} = {ratio:.3f}")
        print()
        if args.no_memory:
            return
        repo = head_repo

        dry = subprocess.run(["dvc", "repro", "--dry", "--force"], cwd=repo, capture_output=True, text=True, check=True).stdout
        stages = re.findall(r"Running stage '([^']+)':\n> (.+)", dry)
        print(f"{'stage':24s} {'peak RSS':>10s} {'wall':>8s}  (limit: 1.5 GB with TensorFlow, 400 MB without)")
        for name, cmd in stages:
            start = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", PEAK_RSS, cmd], cwd=repo, capture_output=True, text=True, env=own_code(repo))
            peak_mb = int(out.stdout.strip() or 0) / 1024
            limit = 1536 if name.split("@")[0] in TF_STAGES else 400
            flag = "" if peak_mb <= limit else "  OVER LIMIT"
            print(f"{name:24s} {peak_mb:8.0f} MB {time.perf_counter() - start:7.1f} s{flag}")


if __name__ == "__main__":
    main()
