import keras
import numpy as np
import pytest

from conftest import REPO
from movierec import models
from movierec.errors import MovierecError
from movierec.params import MFVariant, ModelParams, load_params

PARAMS = load_params(REPO / "params.yaml")
COLLAB = PARAMS.variants["collab"]
HYBRID = PARAMS.variants["hybrid"]


def notebook_collab_params(n_users, n_movies, emb, join):
    joined = 2 * emb if join == "concat" else emb
    return (n_users + n_movies) * emb + (joined * 10 + 10) + (10 + 1)


@pytest.mark.parametrize("join", ["concat", "product"])
def test_collab_has_the_notebooks_parameter_count(join):
    net = models.build(COLLAB, ModelParams(join=join, embedding_size=50, l2=1e-6), n_users=7, n_movies=11, rating_range=(0.0, 5.0))
    assert net.count_params() == notebook_collab_params(7, 11, 50, join)


def test_hybrid_content_is_frozen_and_survives_save_and_load(tmp_path):
    content = np.random.default_rng(0).normal(size=(11, 4)).astype(np.float32)
    net = models.build(HYBRID, ModelParams(join="concat", embedding_size=5, l2=1e-6), n_users=7, n_movies=11, rating_range=(0.0, 5.0), content=content)
    layer = net.get_layer("content_embedding")
    assert not layer.trainable
    np.testing.assert_array_equal(layer.get_weights()[0], content)
    # frozen table not counted as trainable; the rest is the notebook's head on (2*5 + 4) inputs
    trainable = sum(int(np.prod(w.shape)) for w in net.trainable_weights)
    assert trainable == (7 + 11) * 5 + (14 * 32 + 32) + (32 * 16 + 16) + (16 + 1)
    net.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_array_equal(loaded.get_layer("content_embedding").get_weights()[0], content)
    x = [np.array([0, 6]), np.array([3, 10])]
    np.testing.assert_allclose(loaded.predict(x, verbose=0), net.predict(x, verbose=0))


def test_output_stays_in_rating_range():
    net = models.build(COLLAB, ModelParams(join="product", embedding_size=3, l2=0.0), n_users=4, n_movies=4, rating_range=(1.0, 3.0))
    pred = net.predict([np.arange(4), np.arange(4)], verbose=0)
    assert (pred >= 1.0).all() and (pred <= 3.0).all()


@pytest.mark.parametrize("with_content", [True, False])
def test_mf_predicts_mean_plus_biases_plus_dot_and_reloads(tmp_path, with_content):
    content = np.random.default_rng(1).normal(size=(11, 4)).astype(np.float32)
    variant = MFVariant(architecture="mf", shared="train", factors=3, l2_factors=0.1, l2_biases=0.01, l2_content=1e-4, content=with_content, popularity_prior=0.0, train=PARAMS.train)
    net = models.build(variant, PARAMS.model, n_users=7, n_movies=11, rating_range=(0.0, 5.0), content=content, global_mean=3.5)
    u, m = np.array([2, 5]), np.array([1, 10])
    w = {layer.name: layer.get_weights() for layer in net.layers if layer.get_weights()}
    q = w["movie_embedding"][0][m]
    if with_content:
        q = q + content[m] @ w["content_projection"][0]
    expected = 3.5 + w["user_bias"][0][u, 0] + w["movie_bias"][0][m, 0] + (w["user_embedding"][0][u] * q).sum(axis=1)
    np.testing.assert_allclose(net.predict([u, m], verbose=0).ravel(), expected, rtol=1e-5)
    net.save(tmp_path / "mf.keras")
    again = keras.saving.load_model(tmp_path / "mf.keras", safe_mode=True)
    np.testing.assert_allclose(again.predict([u, m], verbose=0), net.predict([u, m], verbose=0))


def test_movie_vectors_are_the_learned_movie_embedding():
    net = models.build(COLLAB, ModelParams(join="product", embedding_size=5, l2=0.0), n_users=3, n_movies=7, rating_range=(0.5, 5.0))
    learned = models.movie_vectors(net)
    assert learned.shape == (7, 5)
    np.testing.assert_array_equal(learned, net.get_layer("movie_embedding").get_weights()[0])
    other = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)], name="plain")
    with pytest.raises(MovierecError, match="'plain' has no 'movie_embedding' layer"):
        models.movie_vectors(other)


def test_mf_movie_vectors_include_the_content_projection():
    content = np.random.default_rng(0).normal(size=(7, 3)).astype(np.float32)
    net = models.build(PARAMS.variants["mf_content"], PARAMS.model, n_users=3, n_movies=7, rating_range=(0.5, 5.0), content=content, global_mean=3.0)
    q = net.get_layer("movie_embedding").get_weights()[0]
    w = net.get_layer("content_projection").get_weights()[0]
    np.testing.assert_allclose(models.movie_vectors(net), q + content @ w, rtol=1e-6)


@pytest.mark.parametrize("variant, prior", [("collab", 0.0), ("mf_content", 0.0), ("mf_content", 0.75)])
def test_exported_predictions_are_what_the_model_predicts(variant, prior, tmp_path):
    """The lists rank by predicted rating + the popularity prior, and keep the predicted ratings."""
    from movierec.evaluate import FACTOR_KEYS, load_predictions
    from movierec.params import EvaluateParams
    from movierec.prepare import Prepared, Split
    from movierec.scoring import factor_scorer
    from movierec.train import export_predictions

    n_users, n_movies = 7, 11
    content = np.random.default_rng(1).normal(size=(n_movies, 4)).astype(np.float32)
    net = models.build(PARAMS.variants[variant], PARAMS.model, n_users=n_users, n_movies=n_movies, rating_range=(0.0, 5.0), content=content, global_mean=3.0)
    if variant == "mf_content":  # non-zero biases, so the factor tables are really checked
        for name in ("user_bias", "movie_bias"):
            layer = net.get_layer(name)
            layer.set_weights([np.random.default_rng(2).normal(size=layer.get_weights()[0].shape).astype(np.float32)])
    train = Split(np.array([0, 0, 1, 2, 3, 4, 5, 6]), np.array([0, 1, 2, 3, 4, 5, 6, 7]), np.full(8, 3.0))
    test = Split(np.array([0, 1, 6, 2]), np.array([9, 10, 8, 0]), np.array([5.0, 4.0, 4.5, 1.0]))
    prepared = Prepared(np.arange(n_users), np.arange(n_movies), train, test)
    e = EvaluateParams(k=3, relevance_threshold=4.0, top_n=4, max_users=0, seed=0)
    train = Split(np.concatenate([train.user, [1, 2, 3, 5]]), np.concatenate([train.movie, [7, 7, 7, 3]]), np.full(12, 3.0))
    prepared = Prepared(np.arange(n_users), np.arange(n_movies), train, test)  # movie 7 rated 4 times, 3 twice
    export_predictions(net, prepared, e, tmp_path / "p.npz", PARAMS.variants[variant], prior_weight=prior)
    saved = load_predictions(tmp_path / "p.npz")
    users, movies = np.repeat(np.arange(n_users), n_movies), np.tile(np.arange(n_movies), n_users)
    expected = net.predict([users, movies], verbose=0).reshape(n_users, n_movies)
    ranked = expected + (prior * np.log1p(np.bincount(train.movie, minlength=n_movies))).astype(np.float32)
    np.testing.assert_allclose(saved["test_predictions"], expected[test.user, test.movie], rtol=1e-6)
    np.testing.assert_array_equal(saved["top_users"], [0, 1, 6])  # the users with a relevant test movie
    assert ("ranking_prior" in saved) == (prior > 0)
    by_rating = [np.argsort(-np.where(np.isin(np.arange(n_movies), train.movie[train.user == u]), -np.inf, expected[u]), kind="stable")[:4] for u in (0, 1, 6)]
    assert (np.array(by_rating) != saved["top_movies"]).any() == (prior > 0)  # the prior really reorders the lists
    for row, user in enumerate(saved["top_users"]):
        candidates = np.setdiff1d(np.arange(n_movies), train.movie[train.user == user])
        best = candidates[np.argsort(-ranked[user, candidates], kind="stable")[:4]]
        np.testing.assert_array_equal(saved["top_movies"][row], best)
        np.testing.assert_allclose(saved["top_scores"][row], expected[user, best], rtol=1e-6)
    assert saved["top_movies"].dtype == np.int32 and saved["top_movies"].shape == (3, 4)
    np.testing.assert_array_equal(saved["movie_vectors"], models.movie_vectors(net))
    assert int(saved["n_params"]) == net.count_params()
    if variant == "mf_content":  # what recommend scores any user with, without Keras
        score = factor_scorer(float(saved["offset"]), saved["user_bias"], saved["movie_bias"], saved["user_factors"], saved["movie_vectors"])
        np.testing.assert_allclose(score(np.arange(n_users)), expected, rtol=1e-5, atol=1e-5)  # float32, another summation order
    else:
        assert not set(FACTOR_KEYS) & set(saved)
    only = load_predictions(tmp_path / "p.npz", "movie_vectors")
    assert list(only) == ["movie_vectors"] and np.array_equal(only["movie_vectors"], saved["movie_vectors"])
    assert [p.name for p in tmp_path.iterdir()] == ["p.npz"]  # no temporary file left
    export_predictions(net, prepared, e, tmp_path / "again.npz", PARAMS.variants[variant], prior_weight=prior)
    assert (tmp_path / "again.npz").read_bytes() == (tmp_path / "p.npz").read_bytes()  # same model, same bits


def test_missing_predictions_file_says_how_to_get_it(tmp_path):
    from movierec.evaluate import load_predictions

    with pytest.raises(MovierecError, match=r"p\.npz: not found; run `dvc repro` first"):
        load_predictions(tmp_path / "p.npz")
