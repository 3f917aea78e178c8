"""What a default `movierec tune TARGET` costs, in trainings of TARGET, timed side by side in one run.

    dvc repro                                           # the workspace's data/prepared and data/features
    python benchmarks/tuning_cost.py [mf_content ease dae]

For each target: the stage commands that fit it as `dvc repro` does (`movierec train VARIANT`: recipe and
fit; for ease, `movierec baselines`, which also fits and scores the other baselines), then `movierec
tune TARGET` with params.yaml's `tune.trials` into a fresh study. Ratio = tune / training; the goal is at
most tune.trials. Also prints the search's best validation metric against params.yaml's own values (its
trial 1). Each command runs in a scratch copy of the workspace, so nothing of it changes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def timed(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", default=["mf_content", "ease", "dae"])
    args = parser.parse_args()
    trials = yaml.safe_load((ROOT / "params.yaml").read_text())["tune"]["trials"]
    print(f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores; tune.trials {trials}, fresh studies")
    with tempfile.TemporaryDirectory(prefix="movierec-tuning-cost-") as tmp:
        work = Path(tmp)
        shutil.copy2(ROOT / "params.yaml", work / "params.yaml")
        shutil.copytree(ROOT / "data", work / "data", symlinks=True, ignore=shutil.ignore_patterns("tuning"))
        for target in args.targets:
            fit = ["movierec", "baselines"] if target == "ease" else ["movierec", "train", target]
            train_seconds = timed(fit, work)
            tune_seconds = timed(["movierec", "tune", target], work)
            best = json.loads((work / "data" / "tuning" / f"{target}.json").read_text())
            print(
                f"{target:<11} training {train_seconds:6.1f} s  tune {tune_seconds:7.1f} s  ratio {tune_seconds / train_seconds:5.1f}"
                f"  ({best['trials']} trials, {best['pruned']} pruned; {best['metric']}: params.yaml {best['current_value']:.4f},"
                f" best {best['best_value']:.4f} at trial {best['best_trial']})"
            )
            print(f"{'':<11} {best['command']}", flush=True)


if __name__ == "__main__":
    main()
