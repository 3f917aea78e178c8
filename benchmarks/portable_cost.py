"""What the same bits on any CPU cost: each changed computation, before and after, side by side in one run.

    dvc repro                                   # the workspace's data/raw, data/prepared, data/recipes
    python benchmarks/portable_cost.py [--reps 3] [--epochs 3]

- embed's SVD: scikit-learn's TruncatedSVD (float32, BLAS) against portable_linalg.truncated_svd, on
  the real TF-IDF matrix (the stage's only changed step);
- EASE's inverse: LAPACK's dpotrf + dpotri against portable_linalg.spd_inverse, on the real Gram matrix
  of the baselines' catalogue;
- factor scores: numpy's float32 `@` against portable_linalg.matmul, every user x every movie at rank 64;
- TensorFlow's fits: `train` of each variant for `--epochs` epochs in a scratch copy of the workspace,
  as the stages now run them (products in Eigen's kernels, oneDNN capped at AVX2) against TensorFlow's
  defaults (oneDNN's products at the machine's best instruction set, as before).

Medians over `--reps` alternating repetitions; ratio = after / before (above 1: slower).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from movierec.environment import TF_KERNEL_ENV, instruction_set, pin_kernels

ROOT = Path(__file__).resolve().parents[1]


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def side_by_side(before, after, reps: int) -> tuple[float, float]:
    times = {"before": [], "after": []}
    for rep in range(reps):
        pair = [("before", before), ("after", after)]
        for name, fn in pair if rep % 2 == 0 else pair[::-1]:
            times[name].append(timed(fn))
    return statistics.median(times["before"]), statistics.median(times["after"])


def numpy_rows(reps: int) -> list[tuple[str, float, float]]:
    import scipy.linalg
    from sklearn.decomposition import TruncatedSVD

    from movierec import content, data, portable_linalg
    from movierec.params import baselines as baseline_params
    from movierec.params import core
    from movierec.params import data as data_params
    from movierec.params import embed as embed_params
    from movierec.paths import PREPARED_DIR
    from movierec.prepare import load_prepared
    from movierec.scoring import Catalogue, user_histories

    raw = core.read(ROOT / "params.yaml")
    folder, e = Path(data_params.load(raw).path), embed_params.load(raw)
    matrix = content.tfidf(content.movie_texts(data.load_movies(folder), data.load_tags(folder)), e.min_df)
    rows = [("embed: SVD of the TF-IDF matrix", *side_by_side(
        lambda: TruncatedSVD(e.dim, random_state=e.seed).fit_transform(matrix.astype(np.float32)),
        lambda: portable_linalg.truncated_svd(matrix, e.dim, e.seed), reps))]

    prepared, b = load_prepared(ROOT / PREPARED_DIR), baseline_params.load(raw)
    n_users, n_movies = len(prepared.user_ids), len(prepared.movie_ids)
    catalogue = Catalogue.most_rated_in(prepared.train, n_movies, b.ease_max_movies)
    history = user_histories(prepared.train, n_users, catalogue, 0.0, 1.0)
    gram = (history.T @ history).toarray().astype(np.float64) + b.ease_reg * np.eye(len(catalogue.movies))
    rows.append((f"baselines: EASE's inverse ({len(gram)} movies)", *side_by_side(
        lambda: scipy.linalg.lapack.dpotri(scipy.linalg.lapack.dpotrf(gram, lower=False)[0], lower=False),
        lambda: portable_linalg.spd_inverse(gram), reps)))

    rng = np.random.default_rng(0)
    users, movies = rng.standard_normal((n_users, 64), np.float32), rng.standard_normal((n_movies, 64), np.float32)
    rows.append((f"rank: factor scores ({n_users} x {n_movies}, rank 64)", *side_by_side(
        lambda: users @ movies.T, lambda: portable_linalg.matmul(users, movies.T), reps)))
    return rows


# Runs one variant's train stage with TensorFlow's kernels as the stages set them ("project") or as
# TensorFlow's defaults have them ("uncapped").
TRAIN = """
import argparse, sys
from movierec import environment
if sys.argv[1] == "uncapped":
    environment.ONEDNN_ISA, environment.TF_KERNEL_ENV = "ALL", {}
environment.pin_kernels()
from movierec.stages import recipe, train
for stage in (recipe, train):
    stage.main(argparse.Namespace(params="params.yaml", variant=sys.argv[2], workers=None))
"""


def train_rows(reps: int, epochs: int) -> list[tuple[str, float, float]]:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        for part in ("data/prepared", "data/features", "src"):
            shutil.copytree(ROOT / part, scratch / part)
        raw["train"]["epochs"] = epochs
        for variant in raw["variants"].values():
            variant.get("train", {}).pop("epochs", None)
        (scratch / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
        env = {**os.environ, "PYTHONPATH": str(scratch / "src")}
        for var in ("ONEDNN_MAX_CPU_ISA", *TF_KERNEL_ENV):
            env.pop(var, None)
        for variant in raw["variants"]:
            def fit(setting, variant=variant):
                subprocess.run([sys.executable, "-c", TRAIN, setting, variant], cwd=scratch, env=env, check=True, capture_output=True)
                return json.loads((scratch / "metrics" / "timing" / f"{variant}.json").read_text())["train_seconds"]

            seconds = {"uncapped": [], "project": []}
            for rep in range(reps):
                for setting in ("uncapped", "project") if rep % 2 == 0 else ("project", "uncapped"):
                    seconds[setting].append(fit(setting))
            rows.append((f"train@{variant} ({epochs} epochs, fit only)", statistics.median(seconds["uncapped"]), statistics.median(seconds["project"])))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    os.chdir(ROOT)
    pin_kernels()
    rows = numpy_rows(args.reps) + train_rows(args.reps, args.epochs)
    import tensorflow as tf

    print(f"{platform.machine()}, {os.cpu_count()} cores, {instruction_set()}, TF {tf.__version__}, numpy {np.__version__}; "
          f"median of {args.reps} alternating repetitions")
    print(f"{'computation':58s} {'before':>9s} {'after':>9s} {'ratio':>6s}")
    for name, before, after in rows:
        print(f"{name:58s} {before:8.2f}s {after:8.2f}s {after / before:6.2f}")


if __name__ == "__main__":
    main()
