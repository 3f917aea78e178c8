from pathlib import Path

import numpy as np
import pytest

from movierec import baselines, evaluate, scoring, time_bias
from movierec.params.time_terms import TimeTerms
from movierec.prepare import Split


def split(users, movies, ratings):
    return Split(np.asarray(users), np.asarray(movies), np.asarray(ratings, dtype=float))


def test_global_mean_is_exact_for_every_pair_even_unseen():
    model = baselines.fit_global_mean(split([0, 0, 1, 2], [0, 1, 1, 0], [1.0, 2.0, 3.0, 6.0]), n_users=4, n_movies=3)
    np.testing.assert_array_equal(model.predict([0, 3, 2], [2, 0, 1]), [3.0, 3.0, 3.0])


def test_one_als_sweep_matches_the_closed_form_by_hand():
    # users [0, 0, 1], movies [0, 1, 0], ratings [5, 2, 3]; mu = 10/3; reg 1; b_u first (b_i = 0), then b_i.
    model = baselines.fit_biases(split([0, 0, 1], [0, 1, 0], [5, 2, 3]), 2, 3, reg_user=1, reg_item=1, n_iters=1)
    mu = 10 / 3
    bu0 = ((5 - mu) + (2 - mu)) / (1 + 2)
    bu1 = (3 - mu) / (1 + 1)
    bi0 = ((5 - mu - bu0) + (3 - mu - bu1)) / (1 + 2)
    bi1 = (2 - mu - bu0) / (1 + 1)
    assert model.mu == pytest.approx(mu)
    np.testing.assert_allclose(model.user_bias, [bu0, bu1])
    np.testing.assert_allclose(model.item_bias, [bi0, bi1, 0.0])  # movie 2 has no ratings: bias 0
    assert model.predict([1], [1])[0] == pytest.approx(mu + bu1 + bi1)


def test_no_regularisation_and_unrated_ids_give_zero_bias_without_warnings():
    with np.errstate(all="raise"):
        model = baselines.fit_biases(split([0], [0], [4.0]), 3, 3, reg_user=0, reg_item=0, n_iters=3)
    np.testing.assert_array_equal(model.user_bias[1:], 0.0)
    np.testing.assert_array_equal(model.item_bias[1:], 0.0)


def test_bias_model_recovers_planted_biases():
    rng = np.random.default_rng(0)
    n_users, n_movies = 40, 30
    b_u = rng.normal(0, 0.5, n_users)
    b_i = rng.normal(0, 0.7, n_movies)
    b_u -= b_u.mean()
    b_i -= b_i.mean()  # centred, so the planted mean is the data mean
    users, movies = (a.ravel() for a in np.meshgrid(np.arange(n_users), np.arange(n_movies), indexing="ij"))
    keep = rng.random(len(users)) < 0.8
    users, movies = users[keep], movies[keep]
    ratings = 3.5 + b_u[users] + b_i[movies] + rng.normal(0, 0.1, len(users))
    model = baselines.fit_biases(split(users, movies, ratings), n_users, n_movies, reg_user=0.1, reg_item=0.1, n_iters=30)
    # biases are identified up to a shared shift; compare after centring
    np.testing.assert_allclose(model.user_bias - model.user_bias.mean(), b_u, atol=0.06)
    np.testing.assert_allclose(model.item_bias - model.item_bias.mean(), b_i, atol=0.06)
    np.testing.assert_allclose(model.predict(users, movies), 3.5 + b_u[users] + b_i[movies], atol=0.1)


def test_regularisation_shrinks_rarely_rated_movies_towards_the_mean():
    # movie 0: one 5-star rating; movie 1: ten 5-star ratings. Users rate once each, so a huge reg_user
    # keeps their biases at ~0 and the movies carry the signal.
    users = np.r_[0, np.arange(1, 11), np.arange(11, 21)]
    movies = np.r_[0, np.ones(10, int), np.full(10, 2)]
    ratings = np.r_[5.0, np.full(10, 5.0), np.full(10, 1.0)]
    model = baselines.fit_biases(split(users, movies, ratings), 21, 3, reg_user=1e9, reg_item=5, n_iters=1)
    mu = 65 / 21
    np.testing.assert_allclose(model.item_bias[:2], [(5 - mu) / (5 + 1), 10 * (5 - mu) / (5 + 10)], rtol=1e-6)


def test_most_popular_ranks_by_training_count_and_skips_seen_movies():
    train = split([0, 1, 2, 0, 1, 2, 2], [2, 2, 2, 0, 0, 3, 1], [1, 1, 1, 1, 1, 1, 1])  # counts: m2=3, m0=2, m3=1, m1=1, m4=0
    model = baselines.fit_most_popular(train, 4, 5)
    np.testing.assert_array_equal(model.predict([3, 3, 3, 3, 3], [0, 1, 2, 3, 4]), [2, 1, 3, 1, 0])
    np.testing.assert_array_equal(model.score_users(np.array([3, 0])), [[2, 1, 3, 1, 0]] * 2)  # the same for everyone
    rated = scoring.RatedIndex.from_pairs(train.user, train.movie, 4)
    top, _ = scoring.top_k_of_users(model.score_users, np.arange(4), 5, rated, 3)
    np.testing.assert_array_equal(top[3], [2, 0, 1])  # new user: m1 and m3 tie at 1, lower index first
    np.testing.assert_array_equal(top[0], [1, 3, 4])  # user 0 already rated m2 and m0


# ---------------------------------------------------------------- real data


@pytest.mark.slow
def test_bias_model_beats_global_mean_and_matches_surprise_on_the_real_split(real_prepared):
    p = real_prepared
    n_users, n_movies = len(p.user_ids), len(p.movie_ids)
    test = p.test

    def rmse(model):
        return evaluate.rating_metrics(test.rating, model.predict(test.user, test.movie))["rmse"]

    mean_rmse = rmse(baselines.fit_global_mean(p.train, n_users, n_movies))
    bias_rmse = rmse(baselines.fit_biases(p.train, n_users, n_movies))
    assert bias_rmse < mean_rmse
    assert abs(bias_rmse - 0.877) < 0.01  # Surprise BaselineOnly: 0.877


def _timed_ratings(seed=0, n_users=50, n_movies=40, days=600):
    """Ratings with planted day effects: each user's session mood, a linear drift, a movie's popularity rising over time."""
    rng = np.random.default_rng(seed)
    n = 6000
    users, movies = rng.integers(0, n_users, n), rng.integers(0, n_movies, n)
    sessions = rng.integers(0, 12, n)  # each user rates on 12 session days
    session_day = rng.integers(0, days, (n_users, 12))
    day = session_day[users, sessions] + 18_000
    mood = rng.normal(0, 0.6, (n_users, 12))
    slope = rng.normal(0, 0.02, n_users)
    trend = rng.normal(0, 0.5, n_movies)
    mean_day = np.array([day[users == u].mean() if (users == u).any() else 0 for u in range(n_users)])
    rating = (3.5 + rng.normal(0, 0.3, n_users)[users] + rng.normal(0, 0.3, n_movies)[movies] + mood[users, sessions]
              + slope[users] * np.sign(day - mean_day[users]) * np.abs(day - mean_day[users]) ** 0.4
              + trend[movies] * (day - 18_000 - days / 2) / days + rng.normal(0, 0.2, n))
    return Split(users, movies, rating, day.astype(np.int32)), n_users, n_movies


def test_time_biases_learn_the_planted_sessions_drift_and_trends_that_plain_biases_miss():
    rows, n_users, n_movies = _timed_ratings()
    train, test = rows.take(np.arange(5000)), rows.take(np.arange(5000, 6000))
    terms, settings = TimeTerms(bins=10, drift_power=0.4, reg_drift=10, reg_session=1, reg_bin=5, iters=10), dict(reg_user=5, reg_item=3)
    timed = time_bias.fit_time_biases(train, n_users, n_movies, terms, **settings)
    plain = baselines.fit_biases(train, n_users, n_movies, reg_user=5, reg_item=3, n_iters=10)
    error = lambda predicted: np.sqrt(np.mean((predicted - test.rating) ** 2))  # noqa: E731
    assert error(timed.predict_rows(test)) < 0.5 * error(plain.predict_rows(test))  # measured: 0.25 against 0.63
    # without the day, the same rows read as one session at day 0: the time terms have nothing to learn
    undated = time_bias.fit_time_biases(Split(train.user, train.movie, train.rating), n_users, n_movies, terms, **settings)
    assert not undated.drift.any() and len(undated.drift_curve) == 1
    assert abs(error(undated.predict_rows(Split(test.user, test.movie, test.rating))) - error(plain.predict_rows(test))) < 0.02


def test_time_biases_give_zero_to_a_session_or_bin_never_seen_and_clamp_days_outside_the_training_span():
    rows, n_users, n_movies = _timed_ratings(seed=1)
    terms = TimeTerms(bins=7, drift_power=0.4, reg_drift=10, reg_session=1, reg_bin=5, iters=3)
    model = time_bias.fit_time_biases(rows, n_users, n_movies, terms, reg_user=5, reg_item=3)
    unseen_day = np.array([10_000], dtype=np.int32)  # years before every training day
    assert model.sessions(np.array([0]), unseen_day)[0] == 0.0
    assert model.bins(unseen_day)[0] == 0 and model.bins(np.array([99_999]))[0] == 6
    far = model.deviation(np.array([0]), np.array([99_999]))[0]
    assert far == model.drift_curve[-1]  # beyond the longest training distance the drift stops growing
    assert np.isfinite(model.predict_rows(Split(np.array([0]), np.array([0]), np.array([3.0]), np.array([99_999], dtype=np.int32)))).all()


def test_time_bias_from_params_is_the_bias_model_plus_time_on_the_real_split(real_prepared):
    from movierec.params import baselines as baselines_params
    from movierec.params import core

    p = real_prepared
    b = baselines_params.load(core.read(Path(__file__).resolve().parents[1] / "params.yaml"))
    model = baselines.fit_time_bias_as(b, p.train, len(p.user_ids), len(p.movie_ids))
    plain = baselines.fit_biases(p.train, len(p.user_ids), len(p.movie_ids), reg_user=b.bias_reg_user, reg_item=b.bias_reg_item, n_iters=b.bias_iters)
    rmse = lambda m: evaluate.rating_metrics(p.test.rating, np.clip(m.predict_rows(p.test), 0, 5))["rmse"]  # noqa: E731
    assert rmse(model) < rmse(plain) - 0.005  # the timestamps the notebook dropped are worth something here


def test_ease_gives_the_closed_form_weights_with_a_zero_diagonal():
    # 3 users x 3 movies, who rated what (ratings' values do not matter to EASE).
    users, movies = np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 2, 0])
    train = Split(users, movies, np.array([5.0, 1.0, 3.0, 4.0, 2.0]))
    model = baselines.fit_ease(train, 3, 3, reg=2.0)
    x = np.zeros((3, 3))
    x[users, movies] = 1
    p = np.linalg.inv(x.T @ x + 2.0 * np.eye(3))
    expected = np.eye(3) - p / np.diag(p)[None, :]
    np.testing.assert_allclose(model.weights, expected, atol=1e-6)
    assert np.all(np.diag(model.weights) == 0)
    np.testing.assert_allclose(model.score_users(np.array([2, 0])), x[[2, 0]] @ expected, atol=1e-6)


def test_ease_fits_on_who_rated_what_and_scores_low_ratings_at_their_weight():
    users, movies = np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 2, 0])
    train = Split(users, movies, np.array([5.0, 1.0, 3.0, 4.0, 2.0]))
    binary = baselines.fit_ease(train, 3, 3, reg=2.0)
    weighted = baselines.fit_ease(train, 3, 3, reg=2.0, positive_threshold=4.0, score_low_weight=0.5)
    np.testing.assert_array_equal(weighted.weights, binary.weights)  # the fit ignores the rating values
    history = np.zeros((3, 3))
    history[users, movies] = [1.0, 0.5, 0.5, 1.0, 0.5]  # 1 at or above 4, else 0.5
    scores = weighted.score_users(np.arange(3))
    np.testing.assert_allclose(scores, history @ binary.weights, atol=1e-6)
    assert not np.allclose(scores, binary.score_users(np.arange(3)))


def test_ease_in_blocks_matches_the_closed_form_and_stays_within_its_memory_estimate(monkeypatch):
    import tracemalloc

    rng = np.random.default_rng(3)
    n_users, n_movies = 300, 700
    users, movies = rng.integers(0, n_users, 6000), rng.integers(0, n_movies, 6000)
    train = Split(users, movies, np.ones(len(users)))
    monkeypatch.setattr(baselines, "EASE_BLOCK", 64)  # eleven blocks, the last one short
    tracemalloc.start()
    try:
        model = baselines.fit_ease(train, n_users, n_movies, reg=30.0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    x = np.zeros((n_users, n_movies))
    x[users, movies] = 1
    p = np.linalg.inv(x.T @ x + 30.0 * np.eye(n_movies))
    np.testing.assert_allclose(model.weights, np.eye(n_movies) - p / np.diag(p)[None, :], atol=1e-6)
    assert peak < 1.25 * baselines.ease_bytes(n_movies), peak / baselines.ease_bytes(n_movies)


def test_ease_capped_to_the_most_rated_movies_is_the_closed_form_over_them_and_ranks_the_rest_last():
    rng = np.random.default_rng(5)
    n_users, n_movies = 40, 12
    users, movies = rng.integers(0, n_users, 300), np.minimum(rng.geometric(0.2, 300) - 1, n_movies - 1)
    train = Split(users, movies, rng.choice([2.0, 4.0, 5.0], len(users)))
    capped = baselines.fit_ease(train, n_users, n_movies, reg=3.0, max_movies=5, positive_threshold=4.0, score_low_weight=0.5)
    top = np.sort(np.argsort(-np.bincount(movies, minlength=n_movies), kind="stable")[:5])
    np.testing.assert_array_equal(capped.catalogue.movies, top)
    x = np.zeros((n_users, n_movies))
    x[users, movies] = 1
    p = np.linalg.inv(x[:, top].T @ x[:, top] + 3.0 * np.eye(5))
    np.testing.assert_allclose(capped.weights, np.eye(5) - p / np.diag(p)[None, :], atol=1e-6)
    scores = capped.score_users(np.arange(n_users))
    outside = np.setdiff1d(np.arange(n_movies), top)
    assert scores.shape == (n_users, n_movies) and np.isnan(scores[:, outside]).all() and not np.isnan(scores[:, top]).any()
    assert capped.n_params == 5 * 4
    whole = baselines.fit_ease(train, n_users, n_movies, reg=3.0, max_movies=n_movies)  # a cap at or above the catalogue: every movie
    assert len(whole.catalogue.movies) == n_movies and whole.n_params == n_movies * (n_movies - 1)


def test_ease_counts_a_repeated_pair_once_and_rejects_a_bad_reg():
    once = baselines.fit_ease(Split(np.array([0, 1]), np.array([0, 1]), np.ones(2)), 2, 2, reg=1.0)
    twice = baselines.fit_ease(Split(np.array([0, 0, 1]), np.array([0, 0, 1]), np.ones(3)), 2, 2, reg=1.0)
    np.testing.assert_array_equal(once.weights, twice.weights)
    with pytest.raises(ValueError, match="reg must be > 0"):
        baselines.fit_ease(Split(np.array([0]), np.array([0]), np.ones(1)), 1, 1, reg=0.0)
