"""The history ranker (architecture multdae): it learns planted co-watching, exports a ranker's
predictions (no ratings), reloads, serves, and gives the same lists for the same seed."""

import dataclasses

import keras
import numpy as np
import pytest
import yaml

from conftest import REPO
from movierec import fitted, lists, predictions, serve
from movierec.architectures import multdae
from movierec.architectures.multdae import fold_popularity_prior, history_scorer
from movierec.errors import MovierecError
from movierec.evaluate import evaluate_variant
from movierec.examples import ModelInputs
from movierec.params.evaluate import EvaluateParams
from movierec.params.project import parse_params
from movierec.prepare import Prepared, Split
from movierec.scoring import Catalogue, RatedIndex, top_k_of_users, user_histories
from movierec.training import regime

RAW = yaml.safe_load((REPO / "params.yaml").read_text())
PARAMS = parse_params(RAW)
BIG, SMALL, BLOCK = 60, 30, 20  # users in group A and B; each group watches its own block of 20 movies
N_USERS, N_MOVIES = BIG + SMALL, 2 * BLOCK
E = EvaluateParams(k=5, relevance_threshold=4.0, top_n=8, max_users=0, seed=0)


def planted() -> Prepared:
    """Group A (users 0-59) rates 12 of movies 0-19, group B (60-89) 12 of movies 20-39; 3 of each
    user's movies are held out as test (rated 5). Group A is bigger, so the most-rated movies are
    A's: most-popular serves B's users the wrong block."""
    rng = np.random.default_rng(0)
    train, test = [], []
    for user in range(N_USERS):
        block = 0 if user < BIG else BLOCK
        movies = block + rng.choice(BLOCK, 12, replace=False)
        ratings = rng.choice([3.0, 4.0, 5.0], 12)
        ratings[:3] = 5.0
        test += [(user, m, r) for m, r in zip(movies[:3], ratings[:3])]
        train += [(user, m, r) for m, r in zip(movies[3:], ratings[3:])]
    split = lambda rows: Split(*(np.array(c) for c in zip(*rows)))  # noqa: E731
    return Prepared(np.arange(N_USERS) + 1, np.arange(N_MOVIES) + 1, split(train), split(test))


def tiny_variant(seed: int = 42, **settings):
    v = PARAMS.variants["dae"]
    train = dataclasses.replace(v.train, epochs=30, batch_size=16, learning_rate=0.01, seed=seed)
    return dataclasses.replace(v, settings=dataclasses.replace(v.settings, hidden=16, dropout=0.2, l2=1e-4, l2_user=0.01, **settings), train=train)


def train_tiny(tmp_path, variant=None):
    variant = variant or tiny_variant()
    prepared = planted()
    fit = regime.fit(multdae, variant.settings, None, variant.train, prepared, None, (0.0, 5.0), tmp_path / "live")
    return prepared, variant, fit.model, fit.summary


def rank_and_save(folder, prepared, variant, model):
    """What the train and rank stages write, in `folder` laid out as a project (data/models, data/predictions)."""
    fitted.save(folder / fitted.folder("dae"), model)
    arrays = lists.rank(multdae, model, variant.settings, prepared, E, variant.popularity_prior[0])
    predictions.write(folder / predictions.path("dae"), arrays)
    return folder / predictions.path("dae")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dae")
    prepared, variant, model, summary = train_tiny(folder)
    rank_and_save(folder, prepared, variant, model)
    return folder, prepared, variant, model, summary


def recommend(folder, prepared, variant, user, k, monkeypatch):
    monkeypatch.chdir(folder)
    return serve.recommend(prepared, user, k, serve.Served("dae", multdae, variant.settings, variant.popularity_prior[0]), (0.0, 5.0))


def own_block_share(users: np.ndarray, lists: np.ndarray) -> float:
    own = (lists >= BLOCK) == (users >= BIG)[:, None]
    return float(own[lists >= 0].mean())


def test_recovers_the_planted_blocks_and_beats_most_popular(trained):
    folder, prepared, _, _, summary = trained
    saved = predictions.read(folder / predictions.path("dae"))
    users, lists = saved["top_users"], saved["top_movies"]
    assert summary["epochs_run"] == 30
    assert own_block_share(users, lists[:, :5]) > 0.95  # nearly every recommendation from the user's own block
    metrics, _, _, _ = evaluate_variant(saved, prepared, E, (0.0, 5.0))
    popularity = np.bincount(prepared.train.movie, minlength=N_MOVIES).astype(np.float32)
    rated = RatedIndex.from_pairs(prepared.train.user, prepared.train.movie, N_USERS)
    popular, _ = top_k_of_users(lambda u: np.tile(popularity, (len(u), 1)), users, N_MOVIES, rated, E.top_n)
    popular_metrics, _, _, _ = evaluate_variant({**saved, "top_movies": popular}, prepared, E, (0.0, 5.0))
    assert own_block_share(users, popular[:, :5]) < 0.75  # B's users get A's movies
    assert metrics["ndcg_at_5"] > popular_metrics["ndcg_at_5"] + 0.05
    assert metrics["recall_at_5"] > popular_metrics["recall_at_5"]


def test_exports_a_ranker_without_ratings(trained):
    folder, prepared, variant, model, _ = trained
    saved = predictions.read(folder / predictions.path("dae"))
    assert "test_predictions" not in saved
    np.testing.assert_array_equal(saved["history_weighting"], [variant.settings.positive_threshold, variant.settings.score_low_weight])
    assert saved["movie_vectors"].shape == (N_MOVIES, variant.settings.hidden)
    np.testing.assert_array_equal(saved["movie_vectors"].T, model.get_layer("logits").get_weights()[0])
    assert int(saved["n_params"]) == model.count_params()
    metrics, sample, curve, _ = evaluate_variant(saved, prepared, E, (0.0, 5.0))
    assert not any(key.startswith(("rmse", "mae")) for key in metrics) and "ndcg_at_5" in metrics
    assert len(sample["actual"]) == 0 and len(curve["k"]) == E.top_n
    assert not serve.Served("dae", multdae).predicts_ratings  # recommend labels its scores relevance scores


def test_stored_lists_are_scored_from_the_liked_movies_only(trained):
    folder, prepared, variant, model, _ = trained
    settings = variant.settings
    assert settings.score_low_weight != settings.low_weight  # the params.yaml recipe scores differently from training
    saved = predictions.read(folder / predictions.path("dae"))
    liked = user_histories(prepared.train, N_USERS, Catalogue.every(N_MOVIES), settings.positive_threshold, settings.score_low_weight)
    users = saved["top_users"].astype(np.int64)
    expected = np.take_along_axis(history_scorer(model, liked, Catalogue.every(N_MOVIES))(users), saved["top_movies"].astype(np.int64), axis=1)
    np.testing.assert_allclose(saved["top_scores"], expected, rtol=1e-6)
    low = prepared.train.rating < settings.positive_threshold
    assert liked[prepared.train.user[low], prepared.train.movie[low]].max() == 0  # a disliked movie is no evidence


def test_popularity_prior_is_folded_into_the_output_bias():
    model = multdae.build(tiny_variant().settings, None, ModelInputs(N_USERS, N_MOVIES, (0.0, 5.0), None, 0.0))
    kernel, bias = (w.copy() for w in model.get_layer("logits").get_weights())
    counts = np.arange(N_MOVIES)
    fold_popularity_prior(model, counts, 0.25)
    new_kernel, new_bias = model.get_layer("logits").get_weights()
    np.testing.assert_array_equal(new_kernel, kernel)
    np.testing.assert_allclose(new_bias - bias, 0.25 * np.log1p(counts), rtol=1e-6)


def test_saved_model_reloads_without_custom_objects(trained):
    folder, prepared, variant, model, _ = trained
    loaded = keras.saving.load_model(folder / fitted.folder("dae") / "model.keras", safe_mode=True)
    fold_popularity_prior(loaded, np.bincount(prepared.train.movie, minlength=N_MOVIES), variant.popularity_prior[0])  # as ranking did to `model`
    every = Catalogue.every(N_MOVIES)
    histories = user_histories(prepared.train, N_USERS, every, variant.settings.positive_threshold, variant.settings.low_weight)
    users = np.arange(N_USERS)
    np.testing.assert_allclose(history_scorer(loaded, histories, every)(users), history_scorer(model, histories, every)(users), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("user", [0, BIG + 1])
def test_recommend_serves_stored_and_on_demand_lists_never_a_rated_movie(trained, user, monkeypatch):
    folder, prepared, variant, _, _ = trained
    saved = predictions.read(folder / predictions.path("dae"))
    stored_row = int(np.searchsorted(saved["top_users"], user))
    from_list, _ = recommend(folder, prepared, variant, user, 5, monkeypatch)
    # a list too long for the stored one forces scoring on demand through the Keras model
    on_demand, scores = recommend(folder, prepared, variant, user, 20, monkeypatch)
    rated = serve.rated_movies(prepared, user)
    for picks in (from_list, on_demand):
        assert len(picks) and not np.isin(picks, rated).any()
    assert np.all(np.diff(scores) <= 0) and len(on_demand) == min(20, N_MOVIES - len(rated))
    keep = saved["top_movies"][stored_row]
    np.testing.assert_array_equal(from_list, keep[~np.isin(keep, rated)][:5])
    np.testing.assert_array_equal(on_demand[: len(from_list)], from_list)  # the same model, the same order


def test_same_seed_same_lists(trained, tmp_path):
    folder, prepared, variant, _, _ = trained
    _, _, again, _ = train_tiny(tmp_path, variant)
    assert rank_and_save(tmp_path, prepared, variant, again).read_bytes() == (folder / predictions.path("dae")).read_bytes()


def test_catalogue_keeps_the_most_rated_movies_ties_to_the_lower_id():
    catalogue = Catalogue.most_rated(np.array([5, 1, 7, 1, 1, 9]), max_movies=4)
    assert catalogue.movies.tolist() == [0, 1, 2, 5] and catalogue.n_movies == 6
    inside, columns = catalogue.columns(np.array([5, 3, 0, 2]))
    assert inside.tolist() == [True, False, True, True] and columns.tolist() == [3, 0, 2]
    scattered = catalogue.scatter(np.array([[1.0, 2.0, 3.0, 4.0]]))
    np.testing.assert_array_equal(scattered, [[1.0, 2.0, 3.0, np.nan, np.nan, 4.0]])
    assert len(Catalogue.most_rated(np.ones(6), max_movies=0).movies) == 6  # 0: every movie


def test_a_catalogue_is_stored_only_when_capped_and_reads_back_as_it_was():
    capped, every = Catalogue.most_rated(np.array([5, 1, 7, 1, 1, 9]), max_movies=4), Catalogue.every(6)
    assert capped.capped and not every.capped and every.stored() == {}
    for catalogue in (capped, every):
        again = Catalogue.from_stored(catalogue.stored(), 6)
        np.testing.assert_array_equal(again.movies, catalogue.movies)
        assert again.n_movies == 6


def test_a_capped_catalogue_trains_a_narrower_model_and_never_lists_the_others(tmp_path, monkeypatch):
    prepared, variant, model, _ = train_tiny(tmp_path, tiny_variant(max_movies=30))
    saved = predictions.read(rank_and_save(tmp_path, prepared, variant, model))
    counts = np.bincount(prepared.train.movie, minlength=N_MOVIES)
    kept = np.sort(np.argsort(-counts, kind="stable")[:30])
    np.testing.assert_array_equal(saved["catalogue"], kept)
    assert model.get_layer("logits").get_weights()[1].shape == (30,)  # the cost: users x 30, not users x 40
    assert np.isin(saved["top_movies"], kept).all()
    outside = np.setdiff1d(np.arange(N_MOVIES), kept)
    assert not saved["movie_vectors"][outside].any() and saved["movie_vectors"][kept].any(axis=1).all()
    assert own_block_share(saved["top_users"], saved["top_movies"][:, :5]) > 0.9  # B's users still get B's kept movies
    user = BIG + 1
    stored = saved["top_movies"][int(np.searchsorted(saved["top_users"], user))]
    on_demand, _ = recommend(tmp_path, prepared, variant, user, 20, monkeypatch)
    rated = serve.rated_movies(prepared, user)
    np.testing.assert_array_equal(on_demand[:5], stored[~np.isin(stored, rated)][:5])  # scored on demand as the rank stage scored


@pytest.mark.parametrize("distribute", ["mirrored", "multi_worker"])
def test_distributed_training_is_refused_in_one_line(distribute):
    from movierec.stages.train import with_workers

    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["variants"]["dae"]["train"]["distribute"] = distribute
    with pytest.raises(MovierecError, match=rf"variants\.dae: train\.distribute={distribute} is not supported for architecture multdae; set it to none"):
        parse_params(raw)
    with pytest.raises(MovierecError, match=r"^train --workers: this variant's architecture trains in one process only"):
        with_workers(multdae, PARAMS.variants["dae"].train, 2)  # the value came from the command line, not the file


def test_inputs_are_unit_rows_the_same_in_training_and_scoring():
    """The input scaling is exact arithmetic on each row alone (no CPU-approximate reciprocal square
    root): unit norm, an empty row stays empty, and a user's row has the same bits in a batch of any
    users, so the training batches and the scorer feed the model identical inputs."""
    from movierec.examples import history_batches
    from movierec.scoring import unit_rows

    histories = user_histories(planted().train, N_USERS + 1, Catalogue.every(N_MOVIES), 4.0, 0.5)  # user 90 rated nothing
    unit = unit_rows(histories)
    norms = np.sqrt(np.asarray(unit.multiply(unit).sum(axis=1), dtype=np.float64)).ravel()
    np.testing.assert_allclose(norms[:N_USERS], 1.0, rtol=1e-6)
    assert unit[N_USERS].nnz == 0 and unit.dtype == np.float32
    users = np.array([5, 70, 3])
    np.testing.assert_array_equal(unit_rows(histories[users]).toarray(), unit[users].toarray())
    (x, user_index), _ = next(iter(history_batches(histories, histories, N_USERS, with_user=True)))
    np.testing.assert_array_equal(np.asarray(x), unit[np.asarray(user_index)].toarray())
