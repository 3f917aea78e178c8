"""Speed users feel: `movierec --help`, and `recommend` for one user once the model is loaded.

    python benchmarks/cli_speed.py        (after `dvc repro`)

Prints the median wall time of `movierec --help` (a fresh process: it must not import TensorFlow),
and the median time of the recommend work after the model load: scoring every movie for one user and
picking the top 10 unrated ones.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

import numpy as np


def main() -> None:
    help_times = []
    for _ in range(5):
        start = time.perf_counter()
        subprocess.run(["movierec", "--help"], check=True, capture_output=True)
        help_times.append(time.perf_counter() - start)
    probe = subprocess.run(
        [sys.executable, "-c", "import sys, movierec.cli; print('tensorflow' in sys.modules)"], capture_output=True, text=True, check=True
    )
    print(f"movierec --help: median {statistics.median(help_times):.2f} s over 5 runs; imports TensorFlow: {probe.stdout.strip()}")

    from movierec import evaluate
    from movierec.cli import _best_variant, model_path
    from movierec.explore import recommend_for_user
    from movierec.params import load_params
    from movierec.prepare import load_prepared

    params = load_params()
    variant = _best_variant(params)
    prepared = load_prepared("data/prepared")
    start = time.perf_counter()
    model = evaluate.load_model(model_path(variant))
    load = time.perf_counter() - start
    n_movies = len(prepared.movie_ids)
    times = []
    for user in range(20):
        start = time.perf_counter()
        scores = evaluate.predict(model, np.full(n_movies, user), np.arange(n_movies))
        rated = np.zeros(n_movies, dtype=bool)
        rated[prepared.train.movie[prepared.train.user == user]] = True
        recommend_for_user(scores, rated, 10)
        times.append(time.perf_counter() - start)
    print(f"recommend ({variant}): model load {load:.2f} s, then median {statistics.median(times[1:]) * 1000:.0f} ms per user (first call {times[0] * 1000:.0f} ms)")


if __name__ == "__main__":
    main()
