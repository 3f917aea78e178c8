import dataclasses
import math

import numpy as np
import pytest

from movierec import baselines, evaluate, ranking
from conftest import baseline_params
from movierec.params.evaluate import EvaluateParams
from movierec.prepare import Prepared, Split

BASELINE_PARAMS = baseline_params(ease_reg=200.0, ease_positive_threshold=4.0, ease_score_low_weight=0.5, ease_max_movies=20000)


def evaluate_params(k=10, max_users=0, seed=0):
    return EvaluateParams(k=k, relevance_threshold=4.0, top_n=max(k, 50), max_users=max_users, seed=seed)

# ---------------------------------------------------------------- ranking_metrics

# 6 movies, k = 3, relevant means test rating >= 4.
#   user 0: relevant {1, 3} (movie 3 rated exactly 4), movie 5 rated 2; list [1, 2, 3]: hits at 1 and 3
#   user 1: relevant {0, 2, 4, 5} (more than k);                       list [3, 4, 0]: hits at 2 and 3
#   user 2: no relevant test movie: not evaluated (its list would add movie 5 to coverage)
#   user 3: relevant {2};                                              list [0, 1, PAD]: no hit
TEST_ROWS = [  # (user, movie, rating), deliberately not grouped by user
    (1, 5, 4.5), (0, 1, 5.0), (2, 3, 3.5), (3, 2, 4.0), (1, 0, 4.0), (0, 5, 2.0),
    (1, 2, 5.0), (0, 3, 4.0), (2, 5, 1.0), (1, 4, 4.0), (3, 4, 3.0), (1, 1, 3.5),
]
LISTS = np.array([[1, 2, 3], [3, 4, 0], [5, 0, 1], [0, 1, -1]])


def metrics_for(lists=LISTS, users=None, k=3):
    u, m, r = (np.array(c) for c in zip(*TEST_ROWS))
    return ranking.ranking_metrics(lists, u, m, r, relevance_threshold=4.0, k=k, n_movies=6, users=users)[0]


def test_ranking_metrics_match_hand_computation():
    d = lambda i: 1 / math.log2(i + 1)  # noqa: E731  discount of position i (from 1)
    ndcg0 = (d(1) + d(3)) / (d(1) + d(2))
    ndcg1 = (d(2) + d(3)) / (d(1) + d(2) + d(3))
    ap0 = (1 / 1 + 2 / 3) / 2
    ap1 = (1 / 2 + 2 / 3) / 3
    expected = {
        "precision_at_3": (2 / 3 + 2 / 3 + 0) / 3,
        "recall_at_3": (2 / 2 + 2 / 4 + 0) / 3,
        "ndcg_at_3": (ndcg0 + ndcg1 + 0) / 3,
        "map_at_3": (ap0 + ap1 + 0) / 3,
        "hit_rate_at_3": 2 / 3,
        "coverage": 5 / 6,  # movies 0-4 from users 0, 1, 3; user 2's movie 5 does not count
        "n_users_evaluated": 3,
    }
    got = metrics_for()
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value), key
    assert expected["ndcg_at_3"] == pytest.approx((1.5 / 1.63093 + 1.13093 / 2.13093) / 3, abs=1e-5)  # d(2) = 0.63093


def test_rows_can_be_any_subset_of_users_in_any_order():
    order = [3, 1, 0]  # user 2 is not evaluated, so it needs no list
    assert metrics_for(LISTS[order], users=np.array(order)) == metrics_for()


def test_a_missing_list_for_an_evaluated_user_is_an_error():
    with pytest.raises(ValueError, match="no top-k list"):
        metrics_for(LISTS[[0, 1]], users=np.array([0, 1]))


def test_a_perfect_list_scores_one_even_with_more_relevant_than_k():
    got = metrics_for(np.array([[1, 3, 0], [0, 2, 4], [0, 1, 2], [2, 0, 1]]))
    assert got["ndcg_at_3"] == pytest.approx(1.0)
    assert got["map_at_3"] == pytest.approx(1.0)
    assert got["hit_rate_at_3"] == 1.0
    assert got["recall_at_3"] == pytest.approx((1 + 3 / 4 + 1) / 3)


def test_keys_carry_k_and_only_the_first_k_columns_count():
    got = metrics_for(k=1)
    assert got["precision_at_1"] == pytest.approx((1 + 0 + 0) / 3)  # firsts: 1 (hit), 3, 0
    assert got["coverage"] == pytest.approx(3 / 6)


def test_baselines_never_recommend_train_movies():
    # user 0 rated movies 0 and 1 in train; the most popular is movie 0, then 1, then 2.
    train = Split(np.array([0, 0, 1, 1, 2]), np.array([0, 1, 0, 1, 0]), np.ones(5))
    test = Split(np.array([0, 0, 1]), np.array([2, 3, 3]), np.array([5.0, 3.0, 4.0]))
    prepared = Prepared(np.arange(3), np.arange(4), train, test)
    results, _ = baselines.evaluate_baselines(prepared, BASELINE_PARAMS, evaluate_params(k=1), (0.0, 5.0))
    # both evaluated users get movie 2 (count 0, ties with 3 go to the lower index): user 0 hits, user 1 misses
    assert {key: value for key, value in results["most_popular"][0].items()} == {
        "precision_at_1": 0.5,
        "recall_at_1": 0.5,
        "ndcg_at_1": 0.5,
        "map_at_1": 0.5,
        "hit_rate_at_1": 0.5,
        "coverage": 0.25,
        "n_users_evaluated": 2,
        "n_users_eligible": 2,
        "users_sampled": False,
        "n_params": 4,
    }


def test_a_sample_of_users_is_measured_on_its_own_test_rows_and_says_so():
    test = Split(*(np.array(c) for c in zip(*TEST_ROWS)))
    users = np.array([0, 3])
    got, _ = ranking.measure_lists(LISTS[users], users, 3, test, k=3, relevance_threshold=4.0, n_movies=6)
    full = metrics_for()
    assert got["n_users_evaluated"] == 2 and got["n_users_eligible"] == 3 and got["users_sampled"] is True
    assert got["precision_at_3"] == pytest.approx((2 / 3 + 0) / 2)
    assert got["precision_at_3"] != pytest.approx(full["precision_at_3"])


# ---------------------------------------------------------------- rmse_by_bucket


def test_rmse_by_bucket_by_hand():
    counts = np.array([0, 0, 1, 4, 5, 150])
    y_pred = np.array([1.0, 3.0, 2.0, 2.0, 4.0, 0.5])
    got = evaluate.rmse_by_bucket(np.zeros(6), y_pred, counts)
    assert got == {
        "0": {"rmse": pytest.approx(math.sqrt((1 + 9) / 2)), "n": 2},
        "1-4": {"rmse": pytest.approx(2.0), "n": 2},
        "5-19": {"rmse": pytest.approx(4.0), "n": 1},
        "100+": {"rmse": pytest.approx(0.5), "n": 1},  # "20-99" is empty, so omitted
    }


def test_rmse_by_bucket_labels_follow_the_edges():
    got = evaluate.rmse_by_bucket(np.zeros(3), np.ones(3), np.array([0, 1, 7]), edges=(0, 2))
    assert got == {"0-1": {"rmse": 1.0, "n": 2}, "2+": {"rmse": 1.0, "n": 1}}


# ---------------------------------------------------------------- real data


@pytest.mark.slow
def test_most_popular_on_the_real_split_matches_the_reference(real_prepared):
    p = real_prepared
    # EASE is fitted too: over params.yaml's 2,000 movies, not every one (a portable solve over 9,724 takes minutes)
    fitted_as_the_pipeline = dataclasses.replace(BASELINE_PARAMS, ease_max_movies=2000)
    got = baselines.evaluate_baselines(p, fitted_as_the_pipeline, evaluate_params(), (0.0, 5.0))[0]["most_popular"][0]
    assert got["n_users_evaluated"] == 590
    reference = {"precision_at_10": 0.095, "recall_at_10": 0.109, "ndcg_at_10": 0.140, "map_at_10": 0.075, "hit_rate_at_10": 0.510}
    for key, value in reference.items():
        assert got[key] == pytest.approx(value, abs=0.003), key


def test_every_ease_param_reaches_its_fit_and_its_curve_matches_its_metrics(monkeypatch):
    rng = np.random.default_rng(0)
    users, movies = rng.integers(0, 30, 400), rng.integers(0, 25, 400)
    keys = np.unique(users * 25 + movies)
    split = Split(keys // 25, keys % 25, rng.choice([1.0, 4.0, 5.0], len(keys)))
    n = len(keys) // 5
    prepared = Prepared(np.arange(30), np.arange(25), Split(split.user[n:], split.movie[n:], split.rating[n:]), Split(split.user[:n], split.movie[:n], split.rating[:n]))
    fit_with, fit_ease = {}, baselines.fit_ease
    monkeypatch.setattr(baselines, "fit_ease", lambda *args, **kwargs: fit_with.update(kwargs) or fit_ease(*args, **kwargs))
    evaluations, served = baselines.evaluate_baselines(prepared, BASELINE_PARAMS, evaluate_params(k=5), (0.0, 5.0))
    assert served.model.history_weighting == (4.0, 0.5) and served.top_movies.shape == (len(served.users), 50)
    assert fit_with == {"reg": 200.0, "max_movies": BASELINE_PARAMS.ease_max_movies, "positive_threshold": 4.0, "score_low_weight": 0.5}
    metrics, _, curve, _ = evaluations["ease"]
    assert 0 <= metrics["ndcg_at_5"] <= 1 and metrics["n_params"] == 25 * 24
    # The curve at k = 5 is the reported @5 figure; recall never falls as the list grows.
    assert curve["recall"][4] == pytest.approx(metrics["recall_at_5"]) and curve["ndcg"][4] == pytest.approx(metrics["ndcg_at_5"])
    assert np.all(np.diff(curve["recall"]) >= 0) and curve["k"] == list(range(1, 51))
