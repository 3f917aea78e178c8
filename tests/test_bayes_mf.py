"""Variational Bayesian MF against a direct transcription of its updates, and on a planted low-rank model."""

import numpy as np

from movierec import bayes_mf, biases
from movierec.params.baselines import BayesMFParams
from movierec.prepare import Split


def random_ratings(n_users=30, n_movies=25, n=400, seed=0) -> Split:
    rng = np.random.default_rng(seed)
    keys = rng.choice(n_users * n_movies, size=n, replace=False)
    users, movies = keys // n_movies, keys % n_movies
    return Split(users, movies, rng.integers(1, 11, size=n) / 2.0, np.zeros(n, dtype=np.int32))


def reference(train: Split, n_users: int, n_movies: int, p: BayesMFParams):
    """Lim and Teh's mean-field updates written out entity by entity and row by row, with LAPACK's inverse."""
    rng = np.random.default_rng(p.seed)
    r, d = train.rating.astype(np.float64), p.rank + 1
    mu = r.mean()
    users = np.c_[np.zeros(n_users), rng.uniform(-0.1, 0.1, (n_users, p.rank))]
    movies = np.c_[np.zeros(n_movies), rng.uniform(-0.1, 0.1, (n_movies, p.rank))]
    user_cov, movie_cov = np.zeros((n_users, d, d)), np.zeros((n_movies, d, d))
    user_prec, movie_prec, noise = np.full(d, 10.0), np.full(d, 10.0), 1.0

    def update(n, mine, theirs, their_means, their_cov, prior):
        means, covs = np.zeros((n, d)), np.zeros((n, d, d))
        for e in range(n):
            a, b = np.diag(prior), np.zeros(d)
            for row in np.flatnonzero(mine == e):
                o = theirs[row]
                f = np.r_[1.0, their_means[o, 1:]]
                spread = their_cov[o].copy()
                spread[0, :] = spread[:, 0] = 0.0
                a = a + (np.outer(f, f) + spread) / noise
                b = b + f * (r[row] - mu - their_means[o, 0]) / noise
            covs[e] = np.linalg.inv(a)
            means[e] = covs[e] @ b
        return means, covs, n / ((means**2).sum(0) + np.diagonal(covs, axis1=1, axis2=2).sum(0))

    for _ in range(p.rounds):
        users, user_cov, user_prec = update(n_users, train.user, train.movie, movies, movie_cov, user_prec)
        movies, movie_cov, movie_prec = update(n_movies, train.movie, train.user, users, user_cov, movie_prec)
        total = 0.0
        for u, m, rating in zip(train.user, train.movie, r):
            fu, gm = np.r_[1.0, users[u, 1:]], np.r_[1.0, movies[m, 1:]]
            pad = user_cov[u].copy()
            pad[0, :] = pad[:, 0] = 0.0
            error = rating - mu - users[u, 0] - movies[m, 0] - users[u, 1:] @ movies[m, 1:]
            total += error**2 + fu @ movie_cov[m] @ fu + np.trace(movie_cov[m] @ pad) + gm @ user_cov[u] @ gm
        noise = total / len(r)
    return users, movies


def test_fit_matches_a_direct_transcription_of_the_updates():
    train, p = random_ratings(), BayesMFParams(rank=3, rounds=4, seed=1)
    model = bayes_mf.fit(train, 30, 25, p)
    users, movies = reference(train, 30, 25, p)
    np.testing.assert_allclose(model.users, users, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(model.movies, movies, rtol=1e-9, atol=1e-12)


def test_the_fit_calls_no_blas_or_lapack_routine(monkeypatch):
    """Their kernels, picked per CPU, round differently: the fit's bits must not depend on them."""
    train, p = random_ratings(n=500, seed=3), BayesMFParams(rank=4, rounds=3, seed=0)
    expected = bayes_mf.fit(train, 30, 25, p)

    def refuse(*args, **kwargs):
        raise AssertionError("a BLAS or LAPACK routine was called")

    for module, name in [(np, "dot"), (np, "matmul"), (np, "einsum"), (np, "tensordot"), (np, "inner"),
                         (np.linalg, "inv"), (np.linalg, "solve"), (np.linalg, "cholesky")]:
        monkeypatch.setattr(module, name, refuse)
    fitted = bayes_mf.fit(train, 30, 25, p)
    assert np.array_equal(fitted.users, expected.users) and np.array_equal(fitted.movies, expected.movies)


def test_its_lists_score_what_it_predicts():
    model = bayes_mf.fit(random_ratings(), 30, 25, BayesMFParams(rank=3, rounds=3, seed=0))
    users = np.array([0, 7, 29])
    scores = model.score_users(users)
    movies = np.tile(np.arange(25), 3)
    np.testing.assert_allclose(scores.reshape(-1), model.predict(np.repeat(users, 25), movies), rtol=0, atol=1e-12)


def test_a_planted_low_rank_model_is_recovered_beyond_the_bias_model_with_a_surplus_rank():
    """Ratings from biases + rank-2 factors + noise: with rank 8 (6 more than planted), it closes most of
    the bias model's gap to the planted expectation; the surplus dimensions do not overfit it."""
    rng = np.random.default_rng(0)
    n_users, n_movies, noise = 300, 200, 0.5
    u_f, m_f = rng.normal(0, 0.7, (n_users, 2)), rng.normal(0, 0.7, (n_movies, 2))
    expected = 3.5 + rng.normal(0, 0.3, n_users)[:, None] + rng.normal(0, 0.3, n_movies)[None, :] + u_f @ m_f.T
    keys = rng.choice(n_users * n_movies, size=18_000, replace=False)
    users, movies = keys // n_movies, keys % n_movies
    ratings = expected[users, movies] + rng.normal(0, noise, len(keys))
    train, test = (Split(users[s], movies[s], ratings[s], np.zeros(len(keys), dtype=np.int32)[s]) for s in (slice(0, 15_000), slice(15_000, None)))
    rmse = lambda predicted: float(np.sqrt(np.mean((predicted - test.rating) ** 2)))  # noqa: E731
    oracle = rmse(expected[test.user, test.movie])
    bias = rmse(biases.fit_biases(train, n_users, n_movies).predict_rows(test))
    model = rmse(bayes_mf.fit(train, n_users, n_movies, BayesMFParams(rank=8, rounds=20, seed=0)).predict_rows(test))
    assert (bias - model) / (bias - oracle) > 0.8, (bias, model, oracle)
