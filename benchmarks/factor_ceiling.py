"""How much of the bias baseline's gap to the oracle can a factor model close on a `movierec synth` set?

    python benchmarks/factor_ceiling.py SYNTH_FOLDER [--sweeps 60] [--rounds 40]   # after `dvc repro` with data.path: SYNTH_FOLDER

A measurement of the data, not a recipe: two textbook factor models, fitted with NumPy on the prepared
training rows and scored on the test split, next to the pipeline's bias baseline
(metrics/eval/bias.json) and the oracle (the planted model's expected rating, synth.py):

- MAP ALS: alternating ridge regressions per user and per movie (bias + factors), at the planted rank
  and at other ranks, over a grid of penalties. The grid's best is read off the test split, so it is an
  upper bound on what this model reaches, not a tuned result.
- Bayesian PMF (Salakhutdinov and Mnih 2008): Gibbs sampling of every user's and movie's bias and
  factors, with a sampled precision per dimension (so surplus dimensions shrink away) and a sampled
  noise, averaging the predictions of the sweeps after burn-in. Nothing of it is tuned on the test split.
- Variational Bayesian PMF (Lim and Teh 2007), the pipeline's `bayes_mf` (movierec.bayes_mf): the same
  model with a Gaussian per user and per movie updated in closed form instead of sampled, the
  precisions and the noise re-estimated each round. Nothing tuned on the test split either.

The gap share is (bias - model) / (bias - oracle). No pipeline figure comes from this script, and
nothing in it but `bayes_mf` gives the same bits on another CPU (ALS and Gibbs sampling use LAPACK).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from movierec import bayes_mf
from movierec.params.baselines import BayesMFParams
from movierec.paths import METRICS_DIR, PREPARED_DIR
from movierec.prepare import Split, load_prepared
from movierec.synth import load_planted, oracle_rmse

BURN_IN = 10


class Rows:
    """One side's ratings grouped by entity (a user's, or a movie's), to fit every entity in turn."""

    def __init__(self, index: np.ndarray, other: np.ndarray, n: int):
        self.order = np.argsort(index, kind="stable")
        self.other = other[self.order]
        self.starts = np.searchsorted(index[self.order], np.arange(n + 1))

    def solve(self, target: np.ndarray, other_factors: np.ndarray, precision: np.ndarray, noise: float, rng=None) -> np.ndarray:
        """Per entity, the ridge solution of target ~ [1, other's factors] (its posterior mean with prior
        precision `precision` and noise variance `noise`), or a draw from that posterior when `rng` is given."""
        X = np.concatenate([np.ones((len(self.other), 1)), other_factors[self.other]], axis=1)
        y = target[self.order]
        out = np.zeros((len(self.starts) - 1, X.shape[1]))
        prior = np.diag(precision)
        draws = rng.standard_normal(out.shape) if rng is not None else None
        for i in range(len(out)):
            a, b = self.starts[i], self.starts[i + 1]
            A = prior + X[a:b].T @ X[a:b] / noise
            out[i] = np.linalg.solve(A, X[a:b].T @ y[a:b] / noise)
            if draws is not None:
                out[i] += np.linalg.solve(np.linalg.cholesky(A).T, draws[i])
        return out


def predict(mean, user_side, movie_side, rows: Split) -> np.ndarray:
    u, m = user_side[rows.user], movie_side[rows.movie]
    return mean + u[:, 0] + m[:, 0] + np.einsum("ij,ij->i", u[:, 1:], m[:, 1:])


def factor_model(train: Split, test: Split, n_users: int, n_movies: int, rank: int, *, penalty: float | None,
                 sweeps: int, seed: int) -> float:
    """Test RMSE of MAP ALS (`penalty` given: ridge penalty on the factors, 5 on the biases) or of
    Bayesian PMF's averaged draws (`penalty` None)."""
    rng = np.random.default_rng(seed)
    mean = float(train.rating.mean())
    by_user, by_movie = Rows(train.user, train.movie, n_users), Rows(train.movie, train.user, n_movies)
    users = np.c_[np.zeros(n_users), rng.normal(0, 0.1, (n_users, rank))]
    movies = np.c_[np.zeros(n_movies), rng.normal(0, 0.1, (n_movies, rank))]
    bayes = penalty is None
    user_precision = movie_precision = np.full(rank + 1, 10.0) if bayes else np.array([5.0] + [penalty] * rank)
    noise, total, kept = 1.0, np.zeros(len(test)), 0
    for sweep in range(sweeps):
        users = by_user.solve(train.rating - mean - movies[train.movie, 0], movies[:, 1:], user_precision, noise, rng if bayes else None)
        movies = by_movie.solve(train.rating - mean - users[train.user, 0], users[:, 1:], movie_precision, noise, rng if bayes else None)
        if not bayes:
            continue
        user_precision, movie_precision = (rng.gamma(1 + len(t) / 2, 1 / (1 + (t**2).sum(0) / 2)) for t in (users, movies))
        residual = train.rating - predict(mean, users, movies, train)
        noise = 1 / rng.gamma(1 + len(residual) / 2, 1 / (1 + (residual**2).sum() / 2))
        if sweep >= BURN_IN:
            total, kept = total + predict(mean, users, movies, test), kept + 1
    predicted = total / kept if bayes else predict(mean, users, movies, test)
    return float(np.sqrt(np.mean((np.clip(predicted, 0.5, 5.0) - test.rating) ** 2)))  # the synth scale


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("synth", type=Path, help="the `movierec synth` folder data.path points at (its planted.npz)")
    ap.add_argument("--sweeps", type=int, default=60, help="Gibbs sweeps of Bayesian PMF (the first 10 are burn-in)")
    ap.add_argument("--rounds", type=int, default=40, help="rounds of bayes_mf, the variational form")
    ap.add_argument("--penalties", type=float, nargs="+", default=[4.0, 8.0, 12.0, 16.0])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    planted = load_planted(args.synth)
    prepared = load_prepared(PREPARED_DIR)
    test, n_users, n_movies = prepared.test, len(prepared.user_ids), len(prepared.movie_ids)
    floor = oracle_rmse(planted, prepared.user_ids[test.user], prepared.movie_ids[test.movie], test.rating)
    bias = json.loads((METRICS_DIR / "eval" / "bias.json").read_text())["rmse"]
    rank = planted.user_factors.shape[1]
    print(f"{len(prepared.train):,} training rows, {len(test):,} test rows; planted rank {rank}")
    print(f"{'model':<36} {'test RMSE':>9} {'gap share':>9} {'time':>6}")

    def row(name: str, rmse: float, seconds: float) -> None:
        print(f"{name:<36} {rmse:>9.4f} {(bias - rmse) / (bias - floor):>9.1%} {seconds:>5.0f}s", flush=True)

    row("bias baseline (the pipeline's)", bias, 0)
    for r in (rank, 2 * rank):
        for penalty in args.penalties:
            start = time.perf_counter()
            rmse = factor_model(prepared.train, test, n_users, n_movies, r, penalty=penalty, sweeps=15, seed=args.seed)
            row(f"MAP ALS, rank {r}, penalty {penalty:g}", rmse, time.perf_counter() - start)
    start = time.perf_counter()
    rmse = factor_model(prepared.train, test, n_users, n_movies, 2 * rank, penalty=None, sweeps=args.sweeps, seed=args.seed)
    row(f"Bayesian PMF, rank {2 * rank}, {args.sweeps} sweeps", rmse, time.perf_counter() - start)
    start = time.perf_counter()
    model = bayes_mf.fit(prepared.train, n_users, n_movies, BayesMFParams(rank=2 * rank, rounds=args.rounds, seed=args.seed))
    rmse = float(np.sqrt(np.mean((np.clip(model.predict_rows(test), 0.5, 5.0) - test.rating) ** 2)))
    row(f"bayes_mf, rank {2 * rank}, {args.rounds} rounds", rmse, time.perf_counter() - start)
    row("oracle (the planted model)", floor, 0)


if __name__ == "__main__":
    main()
