import keras
import numpy as np
import pytest

from conftest import REPO
from movierec import lists, predictions
from movierec.architectures import collab, mf
from movierec.architectures.collab import ModelParams
from movierec.errors import MovierecError
from movierec.examples import ModelInputs
from movierec.params.project import load_params

PARAMS = load_params(REPO / "params.yaml")
COLLAB = PARAMS.variants["collab"]
HYBRID = PARAMS.variants["hybrid"]


def build(variant, model=PARAMS.model, *, n_users, n_movies, rating_range=(0.0, 5.0), content=None, global_mean=0.0, settings=None):
    """`variant`'s model (with other `settings` if given), as the train stage builds it."""
    shared = model if variant.module.SHARED == "model" else None
    inputs = ModelInputs(n_users, n_movies, rating_range, content, global_mean)
    return variant.module.build(settings or variant.settings, shared, inputs)


def notebook_collab_params(n_users, n_movies, emb, join):
    joined = 2 * emb if join == "concat" else emb
    return (n_users + n_movies) * emb + (joined * 10 + 10) + (10 + 1)


@pytest.mark.parametrize("join", ["concat", "product"])
def test_collab_has_the_notebooks_parameter_count(join):
    net = build(COLLAB, ModelParams(join=join, embedding_size=50, l2=1e-6), n_users=7, n_movies=11, rating_range=(0.0, 5.0))
    assert net.count_params() == notebook_collab_params(7, 11, 50, join)


def test_hybrid_content_is_frozen_and_survives_save_and_load(tmp_path):
    content = np.random.default_rng(0).normal(size=(11, 4)).astype(np.float32)
    net = build(HYBRID, ModelParams(join="concat", embedding_size=5, l2=1e-6), n_users=7, n_movies=11, rating_range=(0.0, 5.0), content=content)
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
    net = build(COLLAB, ModelParams(join="product", embedding_size=3, l2=0.0), n_users=4, n_movies=4, rating_range=(1.0, 3.0))
    pred = net.predict([np.arange(4), np.arange(4)], verbose=0)
    assert (pred >= 1.0).all() and (pred <= 3.0).all()


@pytest.mark.parametrize("with_content", [True, False])
def test_mf_predicts_mean_plus_biases_plus_dot_and_reloads(tmp_path, with_content):
    content = np.random.default_rng(1).normal(size=(11, 4)).astype(np.float32)
    settings = mf.Settings(factors=3, l2_factors=0.1, l2_biases=0.01, l2_content=1e-4, content=with_content)
    net = build(PARAMS.variants["mf_content"], n_users=7, n_movies=11, content=content, global_mean=3.5, settings=settings)
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


@pytest.mark.parametrize("variant, join", [("collab", "concat"), ("collab", "product"), ("hybrid", "concat")])
def test_the_traced_lists_score_the_same_bits_as_the_eager_model(variant, join):
    """The pair models' lists are scored in a traced graph (scoring.traced_predictor), their test pairs
    eagerly (keras_predictor): both must give each pair the same bits, in blocks of any size."""
    from movierec.scoring import keras_predictor, traced_predictor

    keras.utils.set_random_seed(3)
    n_users, n_movies = 23, 611
    content = np.random.default_rng(0).normal(size=(n_movies, 20)).astype(np.float32)
    net = build(PARAMS.variants[variant], ModelParams(join=join, embedding_size=8, l2=0.0), n_users=n_users, n_movies=n_movies, content=content)
    users, movies = np.repeat(np.arange(n_users), n_movies), np.tile(np.arange(n_movies), n_users)  # 14,053 pairs: blocks of 8,192 and 65,536 differ
    eager, traced = keras_predictor(net)(users, movies), traced_predictor(net)(users, movies)
    assert traced.dtype == eager.dtype == np.float32 and traced.shape == (n_users * n_movies,)
    np.testing.assert_array_equal(traced, eager)


def test_movie_vectors_are_the_learned_movie_embedding():
    net = build(COLLAB, ModelParams(join="product", embedding_size=5, l2=0.0), n_users=3, n_movies=7, rating_range=(0.5, 5.0))
    learned = collab.movie_vectors(net, COLLAB.settings, None)
    assert learned.shape == (7, 5)
    np.testing.assert_array_equal(learned, net.get_layer("movie_embedding").get_weights()[0])


def test_mf_movie_vectors_include_the_content_projection():
    content = np.random.default_rng(0).normal(size=(7, 3)).astype(np.float32)
    variant = PARAMS.variants["mf_content"]
    net = build(variant, n_users=3, n_movies=7, rating_range=(0.5, 5.0), content=content, global_mean=3.0)
    q = net.get_layer("movie_embedding").get_weights()[0]
    w = net.get_layer("content_projection").get_weights()[0]
    expected = q + (content.astype(np.float64) @ w.astype(np.float64))  # float32 rounding of both sums: absolute tolerance
    np.testing.assert_allclose(mf.movie_vectors(net, variant.settings, None), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("variant, prior", [("collab", 0.0), ("mf_content", 0.0), ("mf_content", 0.75)])
def test_exported_predictions_are_what_the_model_predicts(variant, prior, tmp_path):
    """The lists rank by predicted rating + the popularity prior, and keep the predicted ratings."""
    from movierec.params.evaluate import EvaluateParams
    from movierec.prepare import Prepared, Split
    from movierec.scoring import factor_scorer

    n_users, n_movies = 7, 11
    content = np.random.default_rng(1).normal(size=(n_movies, 4)).astype(np.float32)
    v = PARAMS.variants[variant]
    net = build(v, n_users=n_users, n_movies=n_movies, content=content, global_mean=3.0)
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
    predictions.write(tmp_path / "p.npz", lists.rank(v.module, net, v.settings, prepared, e, prior))
    saved = predictions.read(tmp_path / "p.npz")
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
    np.testing.assert_array_equal(saved["movie_vectors"], v.module.movie_vectors(net, v.settings, prepared))
    assert int(saved["n_params"]) == net.count_params()
    if variant == "mf_content":  # what recommend scores any user with, without Keras
        score = factor_scorer(float(saved["offset"]), saved["user_bias"], saved["movie_bias"], saved["user_factors"], saved["movie_vectors"])
        np.testing.assert_allclose(score(np.arange(n_users)), expected, rtol=1e-5, atol=1e-5)  # float32, another summation order
        if prior == 0:  # the lists were ranked with those very numbers: a stored list is what recommend computes on demand
            block = score(saved["top_users"])
            np.testing.assert_array_equal(saved["top_scores"], np.take_along_axis(block, saved["top_movies"].astype(np.int64), axis=1))
    else:
        assert not {"offset", "user_bias", "movie_bias", "user_factors"} & set(saved)
    only = predictions.read(tmp_path / "p.npz", "movie_vectors")
    assert list(only) == ["movie_vectors"] and np.array_equal(only["movie_vectors"], saved["movie_vectors"])
    assert [p.name for p in tmp_path.iterdir()] == ["p.npz"]  # no temporary file left
    predictions.write(tmp_path / "again.npz", lists.rank(v.module, net, v.settings, prepared, e, prior))
    assert (tmp_path / "again.npz").read_bytes() == (tmp_path / "p.npz").read_bytes()  # same model, same bits


def test_missing_predictions_file_says_how_to_get_it(tmp_path):
    with pytest.raises(MovierecError, match=r"p\.npz: not found; run `dvc repro` first"):
        predictions.read(tmp_path / "p.npz")


RATING_MODEL = {"top_users": np.array([0, 2], np.int32), "top_movies": np.array([[1, -1], [0, 1]], np.int32),
                "top_scores": np.array([[3.5, np.nan], [4.0, 2.5]], np.float32), "n_params": np.int64(12),
                "test_predictions": np.array([3.0, 4.5], np.float32), "movie_vectors": np.ones((3, 2), np.float32),
                "ranking_prior": np.array([0.1, 0.0, 0.2], np.float32)}
KINDS = {
    "rating model": RATING_MODEL,
    "matrix factorisation": {**RATING_MODEL, "offset": np.float32(3.5), "user_bias": np.zeros(3, np.float32),
                             "movie_bias": np.zeros(3, np.float32), "user_factors": np.ones((3, 2), np.float32)},
    "history ranker": {key: RATING_MODEL[key] for key in ("top_users", "top_movies", "top_scores", "n_params", "movie_vectors")}
    | {"history_weighting": np.array([4.0, 0.0], np.float32), "catalogue": np.array([0, 2], np.int32)},
}


@pytest.mark.parametrize("kind", KINDS)
def test_predictions_round_trip_for_each_model_kind(tmp_path, kind):
    predictions.write(tmp_path / "p.npz", KINDS[kind])
    back = predictions.read(tmp_path / "p.npz")
    assert list(back) == list(KINDS[kind])  # the order written, so the same arrays give the same bytes
    for key, value in KINDS[kind].items():
        np.testing.assert_array_equal(back[key], value)
        assert back[key].dtype == predictions.SCHEMA[key]


def test_predictions_off_the_schema_are_refused(tmp_path):
    with pytest.raises(ValueError, match="missing \\['n_params'\\]"):
        predictions.write(tmp_path / "p.npz", {k: v for k, v in RATING_MODEL.items() if k != "n_params"})
    with pytest.raises(ValueError, match="wrong dtype \\['top_scores'\\]"):
        predictions.write(tmp_path / "p.npz", {**RATING_MODEL, "top_scores": RATING_MODEL["top_scores"].astype(np.float64)})
    assert not (tmp_path / "p.npz").exists()


def test_a_file_missing_a_key_is_one_line_naming_file_and_key(tmp_path):
    predictions.write(tmp_path / "p.npz", KINDS["history ranker"])
    with pytest.raises(MovierecError) as err:
        predictions.read(tmp_path / "p.npz", "top_users", "test_predictions")
    assert str(err.value).startswith(f"{tmp_path / 'p.npz'}: no 'test_predictions' array") and "\n" not in str(err.value)


# TensorFlow ops whose kernels start from the CPU's approximate rsqrtps/rcpps (one Newton step on top):
# Intel and AMD give them other bits (benchmarks/emulated_cpu.py: every other op the fits use agrees).
APPROXIMATE_OPS = {"Rsqrt", "RsqrtGrad", "Reciprocal", "ReciprocalGrad", "Inv", "InvGrad", "Softmax"}


def _op_types(graph_def) -> set[str]:
    return {n.op for n in graph_def.node} | {n.op for f in graph_def.library.function for n in f.node_def}


def _dataset_op_types(dataset) -> set[str]:
    import tensorflow as tf

    return _op_types(tf.compat.v1.GraphDef.FromString(dataset._as_serialized_graph().numpy()))


@pytest.mark.parametrize("name", sorted(PARAMS.variants))
def test_no_training_step_or_input_pipeline_uses_an_op_the_cpu_only_approximates(name):
    """A fit's graph (forward, gradients, optimizer update) and its input batches hold no op whose bits
    depend on the CPU's approximate instructions; the scan sees them where they are (the dae's inputs
    once went through tf.math.l2_normalize, an Rsqrt)."""
    import tensorflow as tf

    from movierec.optim import make_optimizer
    from movierec.prepare import Prepared, Split

    v = PARAMS.variants[name]
    n_users, n_movies = 6, 9
    rows = Split(np.arange(6), np.arange(6), np.array([4.0, 3, 5, 2, 4, 1]), np.arange(6, dtype=np.int32) + 18_000)
    prepared = Prepared(np.arange(n_users), np.arange(n_movies), rows, rows)
    content = np.random.default_rng(0).normal(size=(n_movies, 4)).astype(np.float32) if v.module.uses_content(v.settings) else None
    net = build(v, n_users=n_users, n_movies=n_movies, content=content)
    examples = v.module.examples(v.settings, prepared)
    net.compile(loss=examples.loss(), optimizer=make_optimizer(v.train.optimizer, v.train.learning_rate))
    step = tf.function(lambda x, y: net.train_step((x, y))).get_concrete_function(
        [tf.TensorSpec(i.shape, i.dtype) for i in net.inputs], tf.TensorSpec(net.outputs[0].shape, tf.float32))
    used = _op_types(step.graph.as_graph_def())
    used |= _dataset_op_types(examples.batches(rows, 4, seed=0)) | _dataset_op_types(examples.held_out(rows, rows, 4))
    assert {"MatMul", "GatherV2"} <= used and not used & APPROXIMATE_OPS, sorted(used & APPROXIMATE_OPS)
    assert "Rsqrt" in _dataset_op_types(tf.data.Dataset.from_tensors(tf.ones((2, 3))).map(lambda x: tf.math.l2_normalize(x, axis=1)))
