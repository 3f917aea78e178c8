"""An architecture with one planted optimum, for `movierec tune`'s tests: rating = mean + b_u + b_i +
scale * wave(u, m). The biases cannot express `wave`, so on ratings made with a planted scale the
held-out RMSE is lowest at that scale. Registered from the tests; no stage knows it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from movierec.examples import ModelInputs
from movierec.params.core import bounds
from movierec.scoring import keras_predictor, pair_model_on_demand, pair_model_scorer, pair_model_serving
from toy_architecture import check, examples, shared, uses_content  # noqa: F401  the protocol's plain parts, as the toy's

SHARED = "train"
DISTRIBUTABLE = False
PREDICTS_RATINGS = True
ON_DEMAND_NEEDS_MODEL = True


def wave(user, movie, ops=np):
    """A fixed (user, movie) interaction; `ops` is NumPy or keras.ops."""
    return ops.cos(user * 1.7 + movie * 2.3)


@dataclass(frozen=True)
class Settings:
    scale: float = bounds(0)


def build(settings: Settings, shared, inputs: ModelInputs):
    import keras
    from keras import layers

    user = keras.Input(shape=(1,), name="user", dtype="int32")
    movie = keras.Input(shape=(1,), name="movie", dtype="int32")
    biases = [layers.Flatten()(layers.Embedding(n, 1, name=name)(ids)) for ids, n, name in ((user, inputs.n_users, "user_bias"), (movie, inputs.n_movies, "movie_bias"))]
    as_float = lambda ids: keras.ops.cast(ids, "float32")  # noqa: E731
    planted = layers.Lambda(lambda ids: settings.scale * wave(as_float(ids[0]), as_float(ids[1]), keras.ops))([user, movie])
    out = layers.Rescaling(1.0, offset=inputs.global_mean)(layers.Add()([*biases, planted]))
    return keras.Model([user, movie], out, name="planted")


def movie_vectors(model, settings: Settings, prepared) -> np.ndarray:
    return np.asarray(model.get_layer("movie_bias").get_weights()[0], dtype=np.float32)


predictor, scorer, serving, on_demand = keras_predictor, pair_model_scorer, pair_model_serving, pair_model_on_demand
