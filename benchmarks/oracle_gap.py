"""What share of the bias baseline's gap to the oracle each rating model of a pipeline run closes, on a
set with a planted model (`movierec synth`, benchmarks/other_generator.py).

    python benchmarks/oracle_gap.py SYNTH_FOLDER      # in the project, after `dvc repro` with data.path: SYNTH_FOLDER

Reads the prepared test split and metrics/eval/*.json; the oracle is the planted model's expected
observed rating of each test pair. The share is (bias - model) / (bias - oracle): issue 29 asks that
the best model close at least half and every factor model be ahead of the bias baseline (whether a
lead is beyond noise: `movierec compare HEAD --models bias,<model> --metrics rmse`).

How much of the gap can be learned at all? The oracle knows every user's planted bias and factors,
which a user's few noisy ratings may not reveal. The "movies known" row is an estimator told every
movie's planted bias and factors and the spread of the users' (a Gaussian prior per dimension), which
learns each user's from their training ratings alone (the posterior mean, rounding counted as noise
of variance 0.5^2 / 12, the prediction the expected observed rating under the posterior). A model that
must learn the movies too can hardly do better: on a set where this row closes little, the oracle's
gap is mostly not in the data.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import scipy.sparse

from movierec.paths import METRICS_DIR, PREPARED_DIR
from movierec.prepare import Prepared, load_prepared
from movierec.synth import Planted, expected_observed, load_planted, oracle_rmse


def movies_known_rmse(planted: Planted, prepared: Prepared) -> float:
    """Test RMSE of the estimator that knows the movies' planted parameters and learns the users' (above)."""
    users = np.searchsorted(planted.user_ids, prepared.user_ids)
    movies = np.searchsorted(planted.movie_ids, prepared.movie_ids)
    noise = planted.sigma**2 + 0.5**2 / 12
    prior = 1 / np.r_[np.var(planted.user_bias), np.var(planted.user_factors, axis=0)]

    def features(split):  # [1, q_i] per row, and the known part mean + b_i
        m = movies[split.movie]
        return np.c_[np.ones(len(m)), planted.movie_factors[m]], planted.mean + planted.movie_bias[m]

    train, test = prepared.train, prepared.test
    x, known = features(train)
    n, d = len(users), x.shape[1]
    by_user = scipy.sparse.csr_matrix((np.ones(len(x)), (train.user, np.arange(len(x)))), shape=(n, len(x)))
    precision = (by_user @ (x[:, :, None] * x[:, None, :]).reshape(len(x), d * d)).reshape(n, d, d) / noise + np.diag(prior)
    covariance = np.linalg.inv(precision)
    means = np.einsum("nij,nj->ni", covariance, by_user @ (x * (train.rating - known)[:, None])) / noise
    x, known = features(test)
    spread = np.einsum("ni,nij,nj->n", x, covariance[test.user], x)
    predicted = expected_observed(known + np.sum(x * means[test.user], axis=1), np.sqrt(planted.sigma**2 + spread))
    return float(np.sqrt(np.mean((predicted - test.rating) ** 2)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("synth", type=Path, help="the folder data.path points at (its planted.npz)")
    args = ap.parse_args()
    prepared = load_prepared(PREPARED_DIR)
    test = prepared.test
    planted = load_planted(args.synth)
    floor = oracle_rmse(planted, prepared.user_ids[test.user], prepared.movie_ids[test.movie], test.rating)
    rmse = {path.stem: json.loads(path.read_text()).get("rmse") for path in sorted((METRICS_DIR / "eval").glob("*.json"))}
    rmse = {name: value for name, value in rmse.items() if value is not None}
    bias = rmse["bias"]
    print(f"{len(prepared.train):,} training rows, {len(test):,} test rows")
    print(f"{'model':<14} {'test RMSE':>9} {'gap share':>9}")
    for name, value in sorted(rmse.items(), key=lambda kv: kv[1]):
        print(f"{name:<14} {value:>9.4f} {(bias - value) / (bias - floor):>9.1%}")
    known = movies_known_rmse(planted, prepared)
    print(f"{'movies known':<14} {known:>9.4f} {(bias - known) / (bias - floor):>9.1%}   (told the movies' planted parameters)")
    print(f"{'oracle':<14} {floor:>9.4f} {1:>9.1%}")


if __name__ == "__main__":
    main()
