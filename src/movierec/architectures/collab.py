"""The notebook's model: user and movie embeddings, joined, then a small MLP to a rating.

`make_model` in the notebook: `Embedding(n, embedding_size, he_normal, L2)` per user and movie,
joined by concat or elementwise product (`model.join`), then Dropout, Dense(relu)+Dropout per hidden
size, and a sigmoid rescaled to the rating scale. With `content: true` it is `make_model_2`, the
hybrid: the join is concatenated with each movie's frozen content vector first. Every number comes
from params.yaml: `model` (shared by every variant of this architecture) and the variant's keys.
Only stock layers are used, so the saved `.keras` file reloads without custom objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from movierec.params.core import PARAMS_FILE, ParamsError, block, bounds
from movierec.scoring import keras_predictor, pair_model_on_demand, pair_model_scorer, pair_model_serving
from movierec.examples import ModelInputs, RatingPairs, frozen_content

SHARED = "model"
DISTRIBUTABLE = True
PREDICTS_RATINGS = True
ON_DEMAND_NEEDS_MODEL = True  # `recommend` loads the fitted model to score a user without a stored list


@dataclass(frozen=True)
class ModelParams:
    """params.yaml `model`: what every variant of this architecture shares."""

    join: Literal["concat", "product"]
    embedding_size: int = bounds(1)
    l2: float = bounds(0)


@dataclass(frozen=True)
class Settings:
    dense: list[int]  # hidden layer sizes after the join
    dropout: list[float]  # one rate after the join, then one after each hidden layer
    content: bool = field(default=False)  # concatenate each movie's frozen content vector (the hybrid)


def shared(raw: dict, source: str = PARAMS_FILE) -> ModelParams:
    return block(raw, "model", ModelParams, source)


def check(settings: Settings, source: str, where: str) -> None:
    expected = len(settings.dense) + 1
    if len(settings.dropout) != expected:
        raise ParamsError(
            f"{source}: {where}.dropout has {len(settings.dropout)} rates but needs {expected} "
            f"(one after the join and one after each of the {len(settings.dense)} dense layers)"
        )
    for rate in settings.dropout:
        if not 0 <= rate < 1:
            raise ParamsError(f"{source}: {where}.dropout: {rate} is outside [0, 1)")
    if any(size < 1 for size in settings.dense):
        raise ParamsError(f"{source}: {where}.dense: layer sizes must be positive integers")


def uses_content(settings: Settings) -> bool:
    return settings.content


def examples(settings: Settings, prepared) -> RatingPairs:
    return RatingPairs(len(prepared.movie_ids))


def build(settings: Settings, model: ModelParams, inputs: ModelInputs):
    import keras
    from keras import layers

    def id_vector(ids, n: int, name: str):
        emb = layers.Embedding(
            n, model.embedding_size, embeddings_initializer="he_normal",
            embeddings_regularizer=keras.regularizers.l2(model.l2), name=f"{name}_embedding",
        )(ids)
        return layers.Flatten(name=f"{name}_vector")(emb)

    user = keras.Input(shape=(1,), name="user", dtype="int32")
    movie = keras.Input(shape=(1,), name="movie", dtype="int32")
    u, m = id_vector(user, inputs.n_users, "user"), id_vector(movie, inputs.n_movies, "movie")
    x = layers.Concatenate(name="join")([u, m]) if model.join == "concat" else layers.Multiply(name="join")([u, m])
    content_layer = None
    if settings.content:
        content_layer, c = frozen_content(movie, inputs.content)
        x = layers.Concatenate()([x, c])
    x = layers.Dropout(settings.dropout[0])(x)
    for size, rate in zip(settings.dense, settings.dropout[1:]):
        x = layers.Dense(size, activation="relu")(x)
        x = layers.Dropout(rate)(x)
    x = layers.Dense(1, activation="sigmoid")(x)
    low, high = inputs.rating_range
    out = layers.Rescaling(scale=high - low, offset=low, name="rating")(x)
    net = keras.Model([user, movie], out, name="hybrid" if settings.content else "collab")
    if content_layer is not None:
        content_layer.set_weights([inputs.content])
    return net


# A model of (user, movie) pairs: scored, stored and served as scoring.py says for those.
predictor, scorer, serving, on_demand = keras_predictor, pair_model_scorer, pair_model_serving, pair_model_on_demand


def movie_vectors(model, settings: Settings, prepared) -> np.ndarray:
    """The learned movie embedding table (n_movies, embedding_size)."""
    return np.asarray(model.get_layer("movie_embedding").get_weights()[0], dtype=np.float32)
