"""Variational Bayesian matrix factorisation (Lim and Teh 2007): rating = mu + b_u + b_i + p_u . q_i, where
each user's (b_u, p_u) and each movie's (b_i, q_i) is a Gaussian, not a point.

Why a Bayesian one next to the Keras models: a point estimate of the factors (SGD, ALS, `mf_content`)
must be told its rank and penalty and overfits when told too much, while averaging over each factor's
uncertainty lets the dimensions the data cannot support shrink away (a precision per dimension,
re-estimated each round). On a `movierec synth` set it closes more than half of the bias baseline's gap
to the oracle, where the best point estimate closes half only at the planted rank
(benchmarks/factor_ceiling.py).

Each round updates every user's Gaussian given the movies', then every movie's given the users', in
closed form: its precision matrix is the prior's plus, over the rows it has, the other side's second
moments (mean mean^T + covariance) over the noise variance, one sparse product per side; then the
precisions per dimension and the noise variance are re-estimated from their expectations. The start is
seeded uniform draws; nothing is sampled after it. Every step is a sparse product (scipy's ordered
loops), elementwise arithmetic, or a sum in a fixed order, so the bits are the same on any x86-64 CPU.
Memory: a few (users + movies) x (rank + 1)^2 arrays of float64; nothing is users x movies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse

from movierec.params.baselines import BayesMFParams
from movierec.portable_linalg import rowwise_dot, spd_inverse_stack
from movierec.prepare import Split
from movierec.scoring import factor_scorer

INITIAL_SCALE = 0.1  # the factors start uniform in [-0.1, 0.1]; the biases at 0
INITIAL_PRECISION = 10.0  # of every dimension's prior, before the first re-estimate
INITIAL_NOISE = 1.0  # variance of a rating around its expectation, likewise
PREDICT_ROWS = 2**18  # rows predicted per block


@dataclass(frozen=True)
class BayesMF:
    """The posterior means: served as any factor model is (the covariances are only needed to fit)."""

    mu: float
    users: np.ndarray  # (n_users, rank + 1): b_u, then p_u
    movies: np.ndarray  # (n_movies, rank + 1): b_i, then q_i

    def predict(self, users: np.ndarray, movies: np.ndarray) -> np.ndarray:
        """A block of rows at a time: the gathered (rows, rank + 1) vectors of every row would outweigh the model."""
        users, movies = np.asarray(users), np.asarray(movies)
        out = np.empty(len(users))
        for start in range(0, len(users), PREDICT_ROWS):
            u, m = self.users[users[start : start + PREDICT_ROWS]], self.movies[movies[start : start + PREDICT_ROWS]]
            out[start : start + PREDICT_ROWS] = self.mu + u[:, 0] + m[:, 0] + rowwise_dot(u[:, 1:], m[:, 1:])
        return out

    def predict_rows(self, rows: Split) -> np.ndarray:
        return self.predict(rows.user, rows.movie)

    def score_users(self, users: np.ndarray) -> np.ndarray:
        """(len(users), n_movies) scores for `scoring.top_k_of_users` (a portable product)."""
        return factor_scorer(self.mu, self.users[:, 0], self.movies[:, 0], self.users[:, 1:], self.movies[:, 1:])(np.asarray(users))

    @property
    def n_params(self) -> int:
        return parameter_count(len(self.users), len(self.movies), self.users.shape[1] - 1)


def parameter_count(n_users: int, n_movies: int, rank: int) -> int:
    """mu, and a bias and `rank` factors per user and movie (the posterior means: what is served)."""
    return 1 + (n_users + n_movies) * (rank + 1)


def fit(train: Split, n_users: int, n_movies: int, p: BayesMFParams) -> BayesMF:
    """The posterior means after `p.rounds` rounds of updates on the training rows."""
    rng = np.random.default_rng(p.seed)
    rating = np.asarray(train.rating, dtype=np.float64)
    mu = float(np.mean(rating))
    dims = p.rank + 1
    user, movie = np.asarray(train.user, dtype=np.int64), np.asarray(train.movie, dtype=np.int64)
    sides = {"user": _Rows(user, movie, n_users, n_movies), "movie": _Rows(movie, user, n_movies, n_users)}
    means = {side: np.concatenate([np.zeros((n, 1)), rng.uniform(-INITIAL_SCALE, INITIAL_SCALE, (n, p.rank))], axis=1)
             for side, n in (("user", n_users), ("movie", n_movies))}
    covariances = {side: np.zeros((len(means[side]), dims, dims)) for side in sides}
    precisions = {side: np.full(dims, INITIAL_PRECISION) for side in sides}
    noise = INITIAL_NOISE
    for _ in range(p.rounds):
        for side, other in (("user", "movie"), ("movie", "user")):
            rows = sides[side]
            features = _features(means[other])
            gram = _summed(rows.rated, _outer(features) + _factor_part(covariances[other]))
            target = rating - mu - means[other][rows.other_index, 0]  # the other side's bias is a known offset here
            rhs = rows.matrix(target) @ features
            precision = gram / noise
            for d in range(dims):
                precision[:, d, d] += precisions[side][d]
            covariances[side] = spd_inverse_stack(precision)
            means[side] = np.stack([rowwise_dot(covariances[side][:, d, :], rhs) for d in range(dims)], axis=1) / noise
            second_moment = np.sum(means[side] ** 2, axis=0) + np.sum(np.diagonal(covariances[side], axis1=1, axis2=2), axis=0)
            precisions[side] = len(means[side]) / second_moment
        # E[(r - mu - b_u - b_i - p.q)^2] summed over the rows: the means' squared error, the movies'
        # spread (the gram just used: user means and covariances) and the users' (with the new movie means).
        model = BayesMF(mu, means["user"], means["movie"])
        spread_movies = np.sum(covariances["movie"] * gram)
        spread_users = np.sum(covariances["user"] * _summed(sides["user"].rated, _outer(_features(means["movie"]))))
        noise = float((np.sum((rating - model.predict(user, movie)) ** 2) + spread_movies + spread_users) / len(rating))
    return BayesMF(mu, means["user"], means["movie"])


class _Rows:
    """The training rows as a sparse matrix, entities (users or movies) by the other side's ids, in CSR's
    order (by entity, then by the other id): its structure is built once, and each round only its values."""

    def __init__(self, index: np.ndarray, other_index: np.ndarray, n: int, n_other: int):
        self.order = np.lexsort((other_index, index))
        self.other_index = other_index
        self.indices = other_index[self.order].astype(np.int32)
        self.indptr = np.concatenate([[0], np.cumsum(np.bincount(index, minlength=n))]).astype(np.int64)
        self.shape = (n, n_other)
        self.rated = self.matrix(np.ones(len(index)))

    def matrix(self, values: np.ndarray) -> scipy.sparse.csr_matrix:
        """The rows' `values` (in the rows' own order) as the entities x others sparse matrix."""
        return scipy.sparse.csr_matrix((values[self.order], self.indices, self.indptr), shape=self.shape)


def _features(means: np.ndarray) -> np.ndarray:
    """[1, factors]: what the other side's vector multiplies (its own bias is not a feature but an offset)."""
    out = means.copy()
    out[:, 0] = 1.0
    return out


def _outer(features: np.ndarray) -> np.ndarray:
    return features[:, :, None] * features[:, None, :]


def _factor_part(covariances: np.ndarray) -> np.ndarray:
    """The covariances with the bias row and column zeroed: the constant feature 1 has no spread."""
    out = covariances.copy()
    out[:, 0, :] = 0.0
    out[:, :, 0] = 0.0
    return out


def _summed(matrix: scipy.sparse.csr_matrix, per_other: np.ndarray) -> np.ndarray:
    """Per row of `matrix` (a user or movie), the sum of `per_other` (n_other, d, d) over the entities it rated."""
    n_other, d, _ = per_other.shape
    return (matrix @ per_other.reshape(n_other, d * d)).reshape(-1, d, d)
