"""Biased matrix factorisation: rating = mean + b_u + b_i + p_u · (q_i + W c_i).

With `content: true`, c_i is the movie's frozen content vector and W a learned projection, so movies
with few ratings borrow strength from their text (the `mf_content` variant). L2 applies to the rows a
batch looks up (per example, as in classic MF), not to the whole table at every step. Its lists are
ranked, and `recommend` scores any user, from its tables with NumPy (`serving`, `scorer`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from movierec.params.core import bounds
from movierec.portable_linalg import matmul
from movierec.scoring import factor_scorer, keras_predictor, pair_model_serving, ranked_with_prior
from movierec.examples import ModelInputs, RatingPairs, frozen_content

SHARED = "train"
DISTRIBUTABLE = True
PREDICTS_RATINGS = True
ON_DEMAND_NEEDS_MODEL = False  # `recommend` scores a user without a stored list from the stored tables


@dataclass(frozen=True)
class Settings:
    factors: int = bounds(1)
    l2_factors: float = bounds(0)  # L2 on the looked-up rows of each batch (per example)
    l2_biases: float = bounds(0)
    l2_content: float = bounds(0)  # L2 on the content projection's kernel
    content: bool


def shared(raw: dict, source: str):
    return None


def check(settings: Settings, source: str, where: str) -> None:
    pass


def uses_content(settings: Settings) -> bool:
    return settings.content


def examples(settings: Settings, prepared) -> RatingPairs:
    return RatingPairs(len(prepared.movie_ids))


def build(settings: Settings, shared, inputs: ModelInputs):
    import keras
    from keras import layers

    user = keras.Input(shape=(1,), name="user", dtype="int32")
    movie = keras.Input(shape=(1,), name="movie", dtype="int32")

    def lookup(ids, n, dim, name, l2, init):
        emb = layers.Embedding(n, dim, embeddings_initializer=init, activity_regularizer=keras.regularizers.l2(l2), name=name)
        return layers.Flatten(name=f"{name}_vector")(emb(ids))

    factors = keras.initializers.RandomNormal(stddev=0.05)
    user_bias = lookup(user, inputs.n_users, 1, "user_bias", settings.l2_biases, "zeros")
    movie_bias = lookup(movie, inputs.n_movies, 1, "movie_bias", settings.l2_biases, "zeros")
    p = lookup(user, inputs.n_users, settings.factors, "user_embedding", settings.l2_factors, factors)
    q = lookup(movie, inputs.n_movies, settings.factors, "movie_embedding", settings.l2_factors, factors)
    content_layer = None
    if settings.content:
        content_layer, c = frozen_content(movie, inputs.content)
        projection = layers.Dense(
            settings.factors, use_bias=False, kernel_regularizer=keras.regularizers.l2(settings.l2_content), name="content_projection"
        )
        q = layers.Add(name="movie_factors")([q, projection(c)])
    x = layers.Add()([user_bias, movie_bias, layers.Dot(axes=1)([p, q])])
    out = layers.Rescaling(1.0, offset=float(inputs.global_mean), name="rating")(x)
    net = keras.Model([user, movie], out, name="mf")
    if content_layer is not None:
        content_layer.set_weights([inputs.content])
    return net


predictor = keras_predictor  # the test pairs' ratings, as the fitted Keras model computes them


def scorer(model, settings: Settings, prepared, prior_weight: float):
    """Its ratings of every movie from its tables, as `recommend` scores a user on demand (plus its
    popularity prior when it ranks with one): a product of users x factors by factors x movies, the
    same bits on any CPU, where a Keras pass over every (user, movie) pair recomputed W c_i for each pair."""
    tables = serving(model, settings, prepared, 0.0)
    score = factor_scorer(float(tables["offset"]), tables["user_bias"], tables["movie_bias"], tables["user_factors"], movie_vectors(model, settings, prepared))
    return ranked_with_prior(score, prepared, prior_weight)


def movie_vectors(model, settings: Settings, prepared) -> np.ndarray:
    """q_i, plus W c_i with content: the item factors the dot product uses."""
    vectors = np.asarray(model.get_layer("movie_embedding").get_weights()[0], dtype=np.float32)
    if settings.content:
        content = model.get_layer("content_embedding").get_weights()[0]
        vectors = vectors + matmul(content, model.get_layer("content_projection").get_weights()[0])  # portable
    return vectors


def serving(model, settings: Settings, prepared, prior_weight: float) -> dict:
    """The tables that score any user with NumPy: rating = offset + user_bias[u] + movie_bias[m] +
    user_factors[u] . movie_vectors[m]; and the prior, if it ranks with one."""
    table = lambda name: np.asarray(model.get_layer(name).get_weights()[0], dtype=np.float32)  # noqa: E731
    tables = {
        "offset": np.float32(model.get_layer("rating").offset),
        "user_bias": table("user_bias")[:, 0],
        "movie_bias": table("movie_bias")[:, 0],
        "user_factors": table("user_embedding"),
    }
    return {**tables, **pair_model_serving(model, settings, prepared, prior_weight)}


def on_demand(stored: dict, model, prepared, user: int, settings: Settings, prior_weight: float):
    """The user's ratings of every movie from the stored tables, with NumPy."""
    return factor_scorer(float(stored["offset"]), stored["user_bias"], stored["movie_bias"], stored["user_factors"], stored["movie_vectors"])
