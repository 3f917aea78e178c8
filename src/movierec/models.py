"""Model builders: each architecture is one short function you can read top to bottom.

`collab` is the notebook's `make_model`, `hybrid` its `make_model_2`, with every number taken from
params.yaml. Only stock layers are used, so saved `.keras` files reload without custom objects.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from movierec.params import ModelParams, VariantParams


def _id_embedding(inputs, n: int, model: ModelParams, name: str):
    emb = layers.Embedding(
        n,
        model.embedding_size,
        embeddings_initializer="he_normal",
        embeddings_regularizer=keras.regularizers.l2(model.l2),
        name=f"{name}_embedding",
    )(inputs)
    return layers.Flatten(name=f"{name}_vector")(emb)


def _join(u, m, how: str):
    if how == "concat":
        return layers.Concatenate(name="join")([u, m])
    return layers.Multiply(name="join")([u, m])


def _head(x, variant: VariantParams, rating_range: tuple[float, float]):
    """Dropout, then Dense(relu)+Dropout per hidden size, then a sigmoid rescaled to the rating range."""
    x = layers.Dropout(variant.dropout[0])(x)
    for size, rate in zip(variant.dense, variant.dropout[1:]):
        x = layers.Dense(size, activation="relu")(x)
        x = layers.Dropout(rate)(x)
    x = layers.Dense(1, activation="sigmoid")(x)
    low, high = rating_range
    return layers.Rescaling(scale=high - low, offset=low, name="rating")(x)


def collab(n_users: int, n_movies: int, model: ModelParams, variant: VariantParams, rating_range) -> keras.Model:
    user = keras.Input(shape=(1,), name="user", dtype="int32")
    movie = keras.Input(shape=(1,), name="movie", dtype="int32")
    x = _join(_id_embedding(user, n_users, model, "user"), _id_embedding(movie, n_movies, model, "movie"), model.join)
    return keras.Model([user, movie], _head(x, variant, rating_range), name="collab")


def hybrid(
    n_users: int, n_movies: int, model: ModelParams, variant: VariantParams, rating_range, content: np.ndarray
) -> keras.Model:
    """The collab join, concatenated with a frozen per-movie content vector."""
    user = keras.Input(shape=(1,), name="user", dtype="int32")
    movie = keras.Input(shape=(1,), name="movie", dtype="int32")
    um = _join(_id_embedding(user, n_users, model, "user"), _id_embedding(movie, n_movies, model, "movie"), model.join)
    # Weights are set after building, not via a Constant initializer, which would copy the whole
    # matrix into the saved model's JSON config.
    content_layer = layers.Embedding(
        content.shape[0], content.shape[1], embeddings_initializer="zeros", trainable=False, name="content_embedding"
    )
    c = layers.Flatten(name="content_vector")(content_layer(movie))
    x = layers.Concatenate()([um, c])
    net = keras.Model([user, movie], _head(x, variant, rating_range), name="hybrid")
    content_layer.set_weights([content])
    return net


def build(
    variant: VariantParams, model: ModelParams, *, n_users: int, n_movies: int, rating_range, content=None
) -> keras.Model:
    if variant.architecture == "collab":
        return collab(n_users, n_movies, model, variant, rating_range)
    return hybrid(n_users, n_movies, model, variant, rating_range, content)
