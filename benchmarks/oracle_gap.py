"""What share of the bias baseline's gap to the oracle each rating model of a pipeline run closes, on a
set with a planted model (`movierec synth`, benchmarks/other_generator.py).

    python benchmarks/oracle_gap.py SYNTH_FOLDER      # in the project, after `dvc repro` with data.path: SYNTH_FOLDER

Reads the prepared test split and metrics/eval/*.json; the oracle is the planted model's expected
observed rating of each test pair. The share is (bias - model) / (bias - oracle): issue 29 asks that
the best model close at least half and every factor model be ahead of the bias baseline (whether a
lead is beyond noise: `movierec compare HEAD --models bias,<model> --metrics rmse`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from movierec.paths import METRICS_DIR, PREPARED_DIR
from movierec.prepare import load_prepared
from movierec.synth import load_planted, oracle_rmse


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("synth", type=Path, help="the folder data.path points at (its planted.npz)")
    args = ap.parse_args()
    prepared = load_prepared(PREPARED_DIR)
    test = prepared.test
    floor = oracle_rmse(load_planted(args.synth), prepared.user_ids[test.user], prepared.movie_ids[test.movie], test.rating)
    rmse = {path.stem: json.loads(path.read_text()).get("rmse") for path in sorted((METRICS_DIR / "eval").glob("*.json"))}
    rmse = {name: value for name, value in rmse.items() if value is not None}
    bias = rmse["bias"]
    print(f"{len(prepared.train):,} training rows, {len(test):,} test rows")
    print(f"{'model':<14} {'test RMSE':>9} {'gap share':>9}")
    for name, value in sorted(rmse.items(), key=lambda kv: kv[1]):
        print(f"{name:<14} {value:>9.4f} {(bias - value) / (bias - floor):>9.1%}")
    print(f"{'oracle':<14} {floor:>9.4f} {1:>9.1%}")


if __name__ == "__main__":
    main()
