"""A tiny architecture, registered from the tests: copied into a temporary project as
src/movierec/architectures/toy.py, it trains, ranks, evaluates, explores and serves through the real
stages with nothing else added but its params.yaml entry. Rating = mean + b_u + b_i + p_u . q_i, two factors."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from movierec.examples import ModelInputs, RatingPairs
from movierec.params.core import bounds
from movierec.scoring import keras_predictor, pair_model_on_demand, pair_model_scorer, pair_model_serving

SHARED = "train"
DISTRIBUTABLE = True
PREDICTS_RATINGS = True
ON_DEMAND_NEEDS_MODEL = True


@dataclass(frozen=True)
class Settings:
    l2: float = bounds(0)


def shared(raw: dict, source: str):
    return None


def check(settings: Settings, source: str, where: str) -> None:
    pass


def uses_content(settings: Settings) -> bool:
    return False


def examples(settings: Settings, prepared) -> RatingPairs:
    return RatingPairs(len(prepared.movie_ids))


def build(settings: Settings, shared, inputs: ModelInputs):
    import keras
    from keras import layers

    user = keras.Input(shape=(1,), name="user", dtype="int32")
    movie = keras.Input(shape=(1,), name="movie", dtype="int32")
    def table(ids, n, dim, name):
        return layers.Flatten()(layers.Embedding(n, dim, name=name, embeddings_regularizer=keras.regularizers.L2(settings.l2))(ids))

    biases = [table(user, inputs.n_users, 1, "user_bias"), table(movie, inputs.n_movies, 1, "movie_bias")]
    dot = layers.Dot(axes=1)([table(user, inputs.n_users, 2, "user_factors"), table(movie, inputs.n_movies, 2, "movie_factors")])
    return keras.Model([user, movie], layers.Rescaling(1.0, offset=inputs.global_mean)(layers.Add()([*biases, dot])), name="toy")


def movie_vectors(model, settings: Settings, prepared) -> np.ndarray:
    return np.asarray(model.get_layer("movie_factors").get_weights()[0], dtype=np.float32)


predictor, scorer, serving, on_demand = keras_predictor, pair_model_scorer, pair_model_serving, pair_model_on_demand
