import keras
import numpy as np
import pytest

from movierec import models
from movierec.params import ModelParams, VariantParams

COLLAB = VariantParams(architecture="collab", dense=[10], dropout=[0.05, 0.5])
HYBRID = VariantParams(architecture="hybrid", dense=[32, 16], dropout=[0.05, 0.5, 0.5])


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
