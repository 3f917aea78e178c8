"""Chunked scoring and top-k (scoring.py), checked against the whole-matrix implementation it replaced."""

import io

import numpy as np
import pytest

from movierec import baselines, evaluate, ranking, scoring
from movierec.errors import MovierecError
from conftest import baseline_params
from movierec.params.evaluate import EvaluateParams
from movierec.prepare import Prepared, Split
from movierec.progress import Progress

# ---------------------------------------------------------------- the reference: the dense path as it was


def dense_score_all(predict_fn, n_users, n_movies, users, batch_rows=256):
    out = np.empty((len(users), n_movies), dtype=np.float32)
    movies = np.arange(n_movies, dtype=np.int64)
    for start in range(0, len(users), batch_rows):
        chunk = users[start : start + batch_rows]
        out[start : start + len(chunk)] = np.asarray(predict_fn(np.repeat(chunk, n_movies), np.tile(movies, len(chunk)))).reshape(len(chunk), n_movies)
    return out


def dense_top_k(scores, exclude, k):
    key = np.where(exclude, np.nan, -scores.astype(np.float64))
    key[~exclude & np.isnan(key)] = np.inf
    order = np.argsort(key, axis=1, kind="stable")[:, :k]
    n_candidates = (~exclude).sum(axis=1, keepdims=True)
    order = np.where(np.arange(order.shape[1]) < n_candidates, order, -1)
    if order.shape[1] < k:
        order = np.pad(order, ((0, 0), (0, k - order.shape[1])), constant_values=-1)
    return order


def dense_evaluate_ranking(predict_fn, prepared, k, relevance_threshold):
    n_users, n_movies = len(prepared.user_ids), len(prepared.movie_ids)
    test = prepared.test
    users = np.unique(test.user[test.rating >= relevance_threshold])
    scores = dense_score_all(predict_fn, n_users, n_movies, users)
    seen = np.zeros((n_users, n_movies), dtype=bool)
    seen[prepared.train.user, prepared.train.movie] = True
    lists = dense_top_k(scores, seen[users], k)
    return lists, ranking.ranking_metrics(lists, test.user, test.movie, test.rating, relevance_threshold, k, n_movies, users=users)[0]


# ---------------------------------------------------------------- data


def random_prepared(n_users=150, n_movies=400, n_ratings=9000, seed=0) -> Prepared:
    """Skewed popularity (many count ties), half-star ratings, some heavy users who rated nearly everything."""
    rng = np.random.default_rng(seed)
    users = rng.integers(0, n_users, n_ratings)
    movies = np.minimum(rng.zipf(1.3, n_ratings) - 1, n_movies - 1)
    heavy = np.repeat([0, 1], n_movies)  # users 0 and 1 rated every movie: fewer than k candidates left
    users, movies = np.r_[users, heavy], np.r_[movies, np.tile(np.arange(n_movies), 2)]
    pairs = np.unique(users * n_movies + movies)
    rng.shuffle(pairs)
    users, movies = pairs // n_movies, pairs % n_movies
    ratings = rng.integers(1, 11, len(pairs)) / 2
    cut = int(len(pairs) * 0.85)
    split = lambda rows: Split(users[rows], movies[rows], ratings[rows])  # noqa: E731
    return Prepared(np.arange(n_users) + 1, np.arange(n_movies) * 3 + 1, split(slice(None, cut)), split(slice(cut, None)))


def evaluate_params(k=10, max_users=0, top_n=50, seed=0):
    return EvaluateParams(k=k, relevance_threshold=4.0, top_n=top_n, max_users=max_users, seed=seed)


@pytest.fixture(params=[1 << 22, 1000], ids=["one-block", "many-blocks"])
def block(request, monkeypatch):
    monkeypatch.setattr(scoring, "PAIRS_PER_BLOCK", request.param)
    return request.param


# ---------------------------------------------------------------- chunked == whole matrix


def test_baselines_chunked_ranking_equals_the_whole_matrix_metrics(block):
    assert_baselines_rank_as_the_whole_matrix(random_prepared())


@pytest.mark.slow
def test_on_the_real_split_the_chunked_baselines_rank_as_the_whole_matrix(real_prepared):
    assert_baselines_rank_as_the_whole_matrix(real_prepared)


def assert_baselines_rank_as_the_whole_matrix(prepared):
    n_users, n_movies = len(prepared.user_ids), len(prepared.movie_ids)
    b = baseline_params(ease_reg=200.0, ease_positive_threshold=4.0, ease_score_low_weight=0.5, ease_max_movies=20)  # EASE has its own tests: kept cheap
    got, ease = baselines.evaluate_baselines(prepared, b, evaluate_params(), (0.0, 5.0))
    assert got["bias"][0]["n_users_evaluated"] > 0 and len(ease.model.catalogue.movies) == min(20, n_movies)
    fitted = {
        "bias": baselines.fit_biases(prepared.train, n_users, n_movies, reg_user=5.0, reg_item=3.0, n_iters=10),
        "most_popular": baselines.fit_most_popular(prepared.train, n_users, n_movies),
    }
    for name, model in fitted.items():
        _, expected = dense_evaluate_ranking(model.predict, prepared, 10, 4.0)
        for key, value in expected.items():
            assert got[name][0][key] == pytest.approx(value, abs=1e-9, rel=0), (name, key)
    assert got["most_popular"][0]["coverage"] < 1  # a real ranking, not every movie shown


def test_stored_lists_give_the_whole_matrix_metrics_and_lists(block):
    """train's export path (top-n lists of every ranked user) then evaluate: the same as the dense matrix."""
    prepared = random_prepared(seed=1)
    n_users, n_movies = len(prepared.user_ids), len(prepared.movie_ids)
    rng = np.random.default_rng(2)
    table = np.round(rng.normal(3.5, 1.0, (n_users, n_movies)), 1).astype(np.float32)  # rounded: many ties
    table[5, :7] = np.nan  # NaN scores rank last
    table[6, 3] = 5.7  # above the scale: ranked as is, clipped only as a rating
    predict = lambda u, m: table[u, m]  # noqa: E731  a model known only through predict(users, movies)
    e = evaluate_params(top_n=80)  # above the ~60 unrated-in-train movies of the heavy users
    users, top_movies, top_scores = scoring.evaluation_lists(
        scoring.pair_scorer(predict, n_movies), prepared.train, prepared.test, n_users, n_movies,
        n=e.top_n, relevance_threshold=e.relevance_threshold, max_users=e.max_users, seed=e.seed,
    )
    predictions = {"test_predictions": predict(prepared.test.user, prepared.test.movie), "top_users": users, "top_movies": top_movies}
    got, _, _, _ = evaluate.evaluate_variant(predictions, prepared, e, (0.5, 5.0))
    lists, _ = dense_evaluate_ranking(predict, prepared, 80, 4.0)
    np.testing.assert_array_equal(top_movies, lists)
    assert (top_movies == scoring.PAD).any()  # the heavy users ran out of candidates
    found = top_movies != scoring.PAD
    np.testing.assert_array_equal(top_scores[found], table[users[:, None].repeat(80, 1)[found], top_movies[found]])
    _, expected = dense_evaluate_ranking(predict, prepared, 10, 4.0)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-9, rel=0), key
    assert got["users_sampled"] is False and got["n_users_eligible"] == got["n_users_evaluated"]


def test_rating_metrics_clip_to_the_scale():
    prepared = random_prepared(seed=3)
    raw = np.where(np.arange(len(prepared.test)) % 2 == 0, 9.0, -3.0)
    got, sample, _ = evaluate.evaluate_ratings(raw, prepared, (0.5, 5.0))
    clipped = np.where(raw > 0, 5.0, 0.5)
    assert got["rmse"] == pytest.approx(np.sqrt(np.mean((clipped - prepared.test.rating) ** 2)))
    assert sample["predicted"].min() >= 0.5 and sample["predicted"].max() <= 5.0


def test_max_users_draws_a_seeded_sample_and_evaluate_checks_the_lists_match():
    prepared = random_prepared(seed=4)
    test = prepared.test
    everyone, n = scoring.ranking_users(test.user, test.rating, 4.0, 0, 0)
    sample, n_again = scoring.ranking_users(test.user, test.rating, 4.0, 20, 7)
    assert n == n_again == len(everyone) > 20
    assert len(sample) == 20 and set(sample) <= set(everyone) and np.all(np.diff(sample) > 0)
    np.testing.assert_array_equal(sample, scoring.ranking_users(test.user, test.rating, 4.0, 20, 7)[0])
    assert not np.array_equal(sample, scoring.ranking_users(test.user, test.rating, 4.0, 20, 8)[0])
    stale = {"test_predictions": np.zeros(len(test)), "top_users": everyone, "top_movies": np.zeros((len(everyone), 50), np.int32)}
    with pytest.raises(MovierecError, match="other users"):
        evaluate.evaluate_variant(stale, prepared, evaluate_params(max_users=20, seed=7), (0.5, 5.0))


# ---------------------------------------------------------------- top_k_block and RatedIndex


def excluded(mask):
    return np.nonzero(np.asarray(mask))


def test_top_k_excludes_rated_movies_and_breaks_ties_by_lower_index():
    scores = np.array([[0.5, 0.9, 0.9, 0.1, 0.9], [1.0, 1.0, 1.0, 1.0, 1.0]])
    rated = excluded([[False, False, True, False, False], [False, True, False, False, False]])
    np.testing.assert_array_equal(scoring.top_k_block(scores, 3, rated), [[1, 4, 0], [0, 2, 3]])


def test_top_k_pads_when_k_exceeds_the_candidates():
    scores = np.array([[-np.inf, 2.0, 1.0], [0.0, 0.0, 0.0]])
    rated = excluded([[False, True, False], [True, True, True]])
    # the -inf movie is still a candidate, ranked before nothing; rated movies never appear
    np.testing.assert_array_equal(scoring.top_k_block(scores, 5, rated), [[2, 0, -1, -1, -1], [-1, -1, -1, -1, -1]])


def test_top_k_ranks_nan_scores_last():
    np.testing.assert_array_equal(scoring.top_k_block(np.array([[np.nan, 1.0, 2.0]]), 3), [[2, 1, 0]])


def test_top_k_matches_a_full_stable_sort_on_random_tied_scores():
    rng = np.random.default_rng(5)
    scores = rng.integers(0, 4, (40, 60)).astype(np.float32)
    scores[rng.random(scores.shape) < 0.05] = np.nan
    mask = rng.random(scores.shape) < 0.3
    for k in (1, 7, 60, 80):
        np.testing.assert_array_equal(scoring.top_k_block(scores, k, excluded(mask)), dense_top_k(scores, mask, k))


def test_rated_index_lists_each_users_movies_without_a_dense_mask():
    index = scoring.RatedIndex.from_pairs(np.array([2, 0, 2, 2]), np.array([5, 1, 0, 3]), n_users=4)
    assert index.of(2).tolist() == [0, 3, 5] and index.of(1).tolist() == [] and index.of(0).tolist() == [1]
    rows, movies = index.pairs(np.array([3, 2, 0]))
    assert list(zip(rows.tolist(), movies.tolist())) == [(1, 0), (1, 3), (1, 5), (2, 1)]


def test_top_k_of_users_is_the_same_whatever_the_block_size(monkeypatch):
    prepared = random_prepared(seed=6)
    model = baselines.fit_biases(prepared.train, 150, 400)
    rated = scoring.RatedIndex.from_pairs(prepared.train.user, prepared.train.movie, 150)
    users = np.arange(150)[::-1]
    whole = scoring.top_k_of_users(model.score_users, users, 400, rated, 20)
    monkeypatch.setattr(scoring, "PAIRS_PER_BLOCK", 1)  # one user per block
    one_by_one = scoring.top_k_of_users(model.score_users, users, 400, rated, 20)
    np.testing.assert_array_equal(whole[0], one_by_one[0])
    np.testing.assert_array_equal(whole[1], one_by_one[1])
    for row, user in enumerate(users):
        assert not np.isin(whole[0][row], rated.of(user)).any()



def test_one_pass_over_a_grid_of_offsets_lists_what_each_offset_alone_lists(monkeypatch):
    prepared = random_prepared(seed=7)
    model = baselines.fit_biases(prepared.train, 150, 400)
    rated = scoring.RatedIndex.from_pairs(prepared.train.user, prepared.train.movie, 150)
    counts = np.bincount(prepared.train.movie, minlength=400)
    offsets = [scoring.popularity_prior(counts, w).astype(np.float32) for w in (0.0, 0.3, 4.0)]
    users = np.arange(0, 150, 2)
    monkeypatch.setattr(scoring, "PAIRS_PER_BLOCK", 400 * 7)  # several blocks, the last one short
    together = scoring.top_k_with_offsets(model.score_users, users, 400, rated, 10, offsets)
    alone = [scoring.top_k_of_users(scoring.with_prior(model.score_users, o), users, 400, rated, 10)[0] for o in offsets]
    for got, want in zip(together, alone):
        np.testing.assert_array_equal(got, want)
    assert not np.array_equal(alone[0], alone[2])  # the offsets change the lists, so the check can fail

# ---------------------------------------------------------------- progress


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def progress_output(total: int, steps: int, seconds_per_step: float, per_step: int) -> str:
    """What Progress prints to a log (not a terminal) for a job of `steps` equal steps on a fake clock."""
    stream, clock = io.StringIO(), FakeClock()
    with Progress(total, "users scored", stream=stream, clock=clock) as progress:
        for _ in range(steps):
            clock.now += seconds_per_step
            progress.advance(per_step)
    return stream.getvalue()


def test_progress_in_a_log_prints_plain_lines_at_tenths_with_an_eta():
    text = progress_output(1000, 100, 0.1, 10)
    assert "\r" not in text
    lines = text.splitlines()
    assert 8 <= len(lines) <= 11, lines  # about one line per 10%, then the summary
    assert lines[0].startswith("users scored: ") and "/1,000 (" in lines[0] and "s left" in lines[0]
    assert lines[-1] == "users scored: 1,000 in 10.0 s, 100/s"


def test_progress_of_a_short_job_prints_only_its_summary():
    assert progress_output(50, 5, 0.01, 10).splitlines() == ["users scored: 50 in 0.1 s, 1,000/s"]


def test_progress_in_a_terminal_redraws_one_line():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    stream, clock = Terminal(), FakeClock()
    with Progress(100, "users scored", stream=stream, clock=clock) as progress:
        for _ in range(10):
            clock.now += 0.5
            progress.advance(10)
    text = stream.getvalue()
    assert text.count("\r") >= 5 and text.count("\n") == 1


def test_popularity_prior_lifts_movies_by_the_log_of_their_training_ratings():
    prior = scoring.popularity_prior(np.array([0, 1, 3, 0]), 0.5)
    np.testing.assert_allclose(prior, 0.5 * np.log([1.0, 2.0, 4.0, 1.0]))
    score = scoring.with_prior(lambda users: np.tile([3.0, 3.2, 3.0, 3.1], (len(users), 1)), prior.astype(np.float32))
    block = score(np.array([0, 1]))
    assert block.dtype == np.float32 and scoring.top_k_block(block, 2).tolist() == [[2, 1], [2, 1]]
