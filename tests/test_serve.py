import numpy as np
import pandas as pd
import pytest

from movierec import predictions, scoring, serve
from movierec.architectures import collab, mf
from movierec.errors import MovierecError
from movierec.prepare import Prepared, Split

N_USERS, N_MOVIES = 6, 30


@pytest.fixture
def setup(tmp_path, monkeypatch):
    """A factor model's predictions file in a project folder (the working directory); users 0-2 have
    stored top lists of 8 (computed against train only), 3-5 do not."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    user_factors = rng.normal(size=(N_USERS, 3)).astype(np.float32)
    movie_vectors = rng.normal(size=(N_MOVIES, 3)).astype(np.float32)
    user_bias, movie_bias = np.zeros(N_USERS, np.float32), rng.normal(size=N_MOVIES).astype(np.float32)
    score = scoring.factor_scorer(3.0, user_bias, movie_bias, user_factors, movie_vectors)
    pairs = [(u, m) for u in range(N_USERS) for m in rng.choice(N_MOVIES, 12, replace=False)]
    users, movies = (np.array(c) for c in zip(*pairs))
    train_rows = np.arange(len(users)) % 3 != 0
    split = lambda rows: Split(users[rows], movies[rows], np.full(rows.sum(), 4.0))  # noqa: E731
    prepared = Prepared(np.arange(N_USERS) + 100, np.arange(N_MOVIES), split(train_rows), split(~train_rows))
    rated = scoring.RatedIndex.from_pairs(prepared.train.user, prepared.train.movie, N_USERS)
    listed = np.array([0, 1, 2])
    top_movies, top_scores = scoring.top_k_of_users(score, listed, N_MOVIES, rated, 8)
    path = predictions.path("p")
    predictions.write(path, dict(top_users=listed.astype(np.int32), top_movies=top_movies, top_scores=top_scores, n_params=np.int64(1),
                                 movie_vectors=movie_vectors, offset=np.float32(3.0), user_bias=user_bias, movie_bias=movie_bias, user_factors=user_factors))
    return prepared, score, path


@pytest.mark.parametrize("user, k, on_demand", [(0, 3, False), (1, 8, True), (4, 5, True), (5, 18, True)])
def test_recommend_gives_the_best_unrated_movies_clipped_to_the_scale(setup, monkeypatch, user, k, on_demand):
    """From the stored list when it holds k unrated movies (train-only lists lose the test movies),
    else on demand from the factor tables: the same answer either way."""
    prepared, score, path = setup
    calls = []
    scorer = serve._on_demand_scorer
    monkeypatch.setattr(serve, "_on_demand_scorer", lambda *args: calls.append(args) or scorer(*args))
    picks, ratings = serve.recommend(prepared, user, k, serve.Served("p", mf), (1.0, 4.0))
    rated = serve.rated_movies(prepared, user)
    unrated = np.setdiff1d(np.arange(N_MOVIES), rated)
    raw = np.asarray(score(np.array([user])), np.float32)[0]
    best = unrated[np.argsort(-raw[unrated], kind="stable")][:k]
    np.testing.assert_array_equal(picks, best)
    assert not np.isin(picks, rated).any()
    np.testing.assert_allclose(ratings, np.clip(raw[best], 1.0, 4.0), rtol=1e-6)
    assert ratings.min() >= 1.0 and ratings.max() <= 4.0 and (raw[best] > 4.0).any() | (raw[best] < 1.0).any()
    assert bool(calls) == on_demand


@pytest.mark.parametrize("user", [0, 4])  # a stored list, and on demand
def test_recommend_ranks_with_the_stored_popularity_prior_and_shows_predicted_ratings(setup, tmp_path, user):
    prepared, score, path = setup
    prior = scoring.popularity_prior(np.bincount(prepared.train.movie, minlength=N_MOVIES), 2.0).astype(np.float32)
    rated = scoring.RatedIndex.from_pairs(prepared.train.user, prepared.train.movie, N_USERS)
    top_movies, _ = scoring.top_k_of_users(scoring.with_prior(score, prior), np.array([0, 1, 2]), N_MOVIES, rated, 8)
    with np.load(path) as f:
        stored = {**{k: f[k] for k in f.files}, "top_movies": top_movies, "ranking_prior": prior}
    stored["top_scores"] = np.take_along_axis(np.asarray(score(np.array([0, 1, 2])), np.float32), top_movies, axis=1)
    predictions.write(predictions.path("prior"), stored)
    picks, ratings = serve.recommend(prepared, user, 4, serve.Served("prior", mf), (0.0, 10.0))
    unrated = np.setdiff1d(np.arange(N_MOVIES), serve.rated_movies(prepared, user))
    raw = np.asarray(score(np.array([user])), np.float32)[0]
    best = unrated[np.argsort(-(raw + prior)[unrated], kind="stable")][:4]
    np.testing.assert_array_equal(picks, best)
    assert not np.array_equal(best, unrated[np.argsort(-raw[unrated], kind="stable")][:4])  # the prior changed the list
    np.testing.assert_allclose(ratings, raw[best], rtol=1e-6)  # the predicted ratings, not the ranking scores


def test_without_its_fitted_model_recommend_says_how_to_get_one(setup):
    prepared, _, path = setup
    stored = predictions.read(path, "top_users", "top_movies", "top_scores", "n_params", "movie_vectors")
    predictions.write(predictions.path("nomodel"), stored)
    with pytest.raises(MovierecError, match=r"data/models/nomodel/model\.keras: not found; run `dvc repro` first"):
        serve.recommend(prepared, 5, 3, serve.Served("nomodel", collab), (1.0, 4.0))  # collab needs its Keras model on demand


def test_similar_never_returns_the_query_and_finds_it_by_title():
    vectors = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [1.0, 0.01]])
    movies = pd.DataFrame({"movieId": [10, 20, 30, 40], "title": ["A (2000)", "B (2000)", "C (2000)", "D (2000)"], "genres": ["x"] * 4})
    index, picks, sims = serve.similar(vectors, movies, "a", 3, counts=np.full(4, 10), min_ratings=5)
    assert index == 0 and 0 not in picks and picks.tolist() == [3, 1, 2] and np.all(np.diff(sims) <= 0)


def test_similar_never_returns_a_movie_below_the_minimum_number_of_ratings():
    vectors = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [1.0, 0.01], [0.8, 0.2]])
    movies = pd.DataFrame({"movieId": [10, 20, 30, 40, 50], "title": [f"{c} (2000)" for c in "ABCDE"], "genres": ["x"] * 5})
    counts = np.array([50, 4, 5, 1, 7])  # the two nearest (D, B) have too few ratings
    _, picks, _ = serve.similar(vectors, movies, "a", 5, counts=counts, min_ratings=5)
    assert picks.tolist() == [4, 2] and np.all(counts[picks] >= 5)
    _, picks, _ = serve.similar(vectors, movies, "a", 5, counts=counts, min_ratings=0)
    assert picks.tolist() == [3, 1, 4, 2]


def test_best_variant_is_the_best_ndcg_by_default_or_the_lowest_rmse_and_needs_one():
    evaluations = {"a": {"rmse": 0.9, "ndcg_at_10": 0.3}, "b": {"rmse": 0.8, "ndcg_at_10": 0.1}, "r": {"ndcg_at_10": 0.2}, "c": None}
    assert serve.best_variant(evaluations) == "a"
    assert serve.best_variant({**evaluations, "ease": {"ndcg_at_10": 0.35}}) == "ease"  # a served baseline competes
    assert serve.best_variant(evaluations, by="rmse") == "b"
    with pytest.raises(MovierecError, match="no evaluated model"):
        serve.best_variant({"a": None})


def test_similar_answers_from_the_space_with_the_best_learned_genre_coherence():
    explorations = {
        "ranker": {"learned": {"genre_coherence": 0.82}, "content": {"genre_coherence": 0.91}},
        "rater": {"learned": {"genre_coherence": 0.96}},
        "unexplored": None,
    }
    assert serve.best_space(explorations) == ("rater", 0.96)  # not the content space, which is no variant's
    assert serve.best_space({"a": None, "b": {"learned": {"genre_coherence": None, "reason": "too few movies"}}}) is None


def test_similar_by_default_names_the_committed_best_space(monkeypatch):
    """On the committed results: `mf_content` (Toy Story's neighbours are Toy Story 2, Aladdin...), and
    the header says why."""
    import json

    from conftest import REPO

    explored = {p.stem: json.loads(p.read_text()) for p in (REPO / "metrics" / "explore").glob("*.json")}
    name, coherence = serve.best_space(explored)
    assert name == "mf_content" and coherence == max(m["learned"]["genre_coherence"] for m in explored.values())


@pytest.fixture(params=[N_MOVIES, 10], ids=["every movie", "10 most-rated"])
def ease_files(tmp_path, request, monkeypatch):
    """EASE fitted and stored by the baselines stage's code in a project folder (the working directory):
    users 0-2 ranked (stored lists of 8), 3-5 not; over every movie, or capped by `ease_max_movies`
    (the others ranked last)."""
    monkeypatch.chdir(tmp_path)
    from movierec import baselines
    from conftest import baseline_params
    from movierec.params.evaluate import EvaluateParams

    rng = np.random.default_rng(3)
    pairs = [(u, m) for u in range(N_USERS) for m in rng.choice(N_MOVIES, 12, replace=False)]
    users, movies = (np.array(c) for c in zip(*pairs))
    ratings = rng.choice([2.0, 3.0, 4.0, 5.0], len(users))
    test_rows = np.isin(users, [0, 1, 2]) & (np.arange(len(users)) % 3 == 0)  # only users 0-2 have test rows
    ratings[test_rows] = 5.0  # ... and relevant ones: they are the ranked users
    split = lambda rows: Split(users[rows], movies[rows], ratings[rows])  # noqa: E731
    prepared = Prepared(np.arange(N_USERS) + 100, np.arange(N_MOVIES), split(~test_rows), split(test_rows))
    b = baseline_params(ease_reg=2.0, ease_positive_threshold=4.0, ease_score_low_weight=0.5, ease_max_movies=request.param)
    e = EvaluateParams(k=3, relevance_threshold=4.0, top_n=8, max_users=0, seed=0)
    evaluations, served = baselines.evaluate_baselines(prepared, b, e, (0.0, 5.0))
    baselines.save_ease(served, predictions.path("ease"), baselines.EASE_WEIGHTS)
    assert served.users.tolist() == [0, 1, 2] and evaluations["ease"][0]["n_users_evaluated"] == 3
    return prepared, served.model, predictions.path("ease"), baselines.EASE_WEIGHTS


@pytest.mark.parametrize("user, k, on_demand", [(0, 3, False), (1, 8, True), (4, 5, True), (5, 18, True)])
def test_recommend_serves_ease_from_its_stored_lists_or_its_weights_alike(ease_files, monkeypatch, user, k, on_demand):
    """The served lists are EASE's own (history weighted as evaluated, rated movies never shown), from
    the stored list or, on demand, from the memory-mapped weights, with no TensorFlow either way."""
    prepared, model, stored, weights = ease_files
    calls = []
    scorer = serve._on_demand_scorer
    monkeypatch.setattr(serve, "_on_demand_scorer", lambda *args: calls.append(args) or scorer(*args))
    picks, scores = serve.recommend(prepared, user, k, serve.Served("ease"), (0.0, 5.0))
    rated = serve.rated_movies(prepared, user)
    unrated = np.setdiff1d(np.arange(N_MOVIES), rated)
    raw = model.score_users(np.array([user]))[0]
    best = unrated[np.argsort(-raw[unrated], kind="stable")][:k]
    best = best[~np.isnan(raw[best])]  # a capped EASE shows only the movies it scores
    np.testing.assert_array_equal(picks, best)
    assert not np.isin(picks, rated).any()
    np.testing.assert_array_equal(scores, raw[best])  # relevance scores, the same bits either way
    capped = model.catalogue.capped
    assert bool(calls) == (on_demand and not (capped and user <= 2))  # capped, a stored list holds all it scores
    assert model.history_weighting == (4.0, 0.5) and set(np.unique(model.history.data)) == {0.5, 1.0}
    assert ("catalogue" in np.load(stored)) == capped and np.load(weights).shape == (len(model.catalogue.movies),) * 2


def test_an_unknown_model_name_lists_what_the_command_serves_and_suggests_one():
    serve.check_model_name("ease", ["collab", "dae"], serve.SERVED_BASELINES)  # recommend serves EASE
    with pytest.raises(MovierecError, match=r"^--variant EASE: no such model; choose one of collab, dae, ease \(did you mean 'ease'\?\)$"):
        serve.check_model_name("EASE", ["collab", "dae"], serve.SERVED_BASELINES)
    with pytest.raises(MovierecError, match=r"^--variant ease: no such model; choose one of collab, dae$"):
        serve.check_model_name("ease", ["collab", "dae"])  # similar: movie vectors, variants only
