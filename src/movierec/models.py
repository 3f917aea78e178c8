"""Model builders: each architecture is one short function you can read top to bottom.

`collab` is the notebook's `make_model`, `hybrid` its `make_model_2`, with every number taken from
params.yaml. Only stock layers are used, so saved `.keras` files reload without custom objects.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from movierec.errors import MovierecError
from movierec.params import DAEVariant, MFVariant, ModelParams, NotebookVariant, VariantParams


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


def collab(n_users: int, n_movies: int, model: ModelParams, variant: NotebookVariant, rating_range) -> keras.Model:
    user = keras.Input(shape=(1,), name="user", dtype="int32")
    movie = keras.Input(shape=(1,), name="movie", dtype="int32")
    x = _join(_id_embedding(user, n_users, model, "user"), _id_embedding(movie, n_movies, model, "movie"), model.join)
    return keras.Model([user, movie], _head(x, variant, rating_range), name="collab")


def hybrid(
    n_users: int, n_movies: int, model: ModelParams, variant: NotebookVariant, rating_range, content: np.ndarray
) -> keras.Model:
    """The collab join, concatenated with a frozen per-movie content vector."""
    user = keras.Input(shape=(1,), name="user", dtype="int32")
    movie = keras.Input(shape=(1,), name="movie", dtype="int32")
    um = _join(_id_embedding(user, n_users, model, "user"), _id_embedding(movie, n_movies, model, "movie"), model.join)
    content_layer, c = _frozen_content(movie, content)
    x = layers.Concatenate()([um, c])
    net = keras.Model([user, movie], _head(x, variant, rating_range), name="hybrid")
    content_layer.set_weights([content])
    return net


def _frozen_content(movie, content: np.ndarray):
    """A frozen per-movie lookup of the content matrix. The caller sets its weights once the model is
    built: a Constant initializer would copy the whole matrix into the saved model's JSON config."""
    layer = layers.Embedding(
        content.shape[0], content.shape[1], embeddings_initializer="zeros", trainable=False, name="content_embedding"
    )
    return layer, layers.Flatten(name="content_vector")(layer(movie))


def mf(n_users: int, n_movies: int, variant: MFVariant, global_mean: float, content: np.ndarray | None) -> keras.Model:
    """Biased matrix factorisation: rating = mean + b_u + b_i + p_u · (q_i + W c_i).

    c_i is the movie's frozen content vector and W a learned projection, so movies with few ratings
    borrow strength from their text. L2 applies to the rows a batch looks up (per example, as in
    classic MF), not to the whole table at every step.
    """
    user = keras.Input(shape=(1,), name="user", dtype="int32")
    movie = keras.Input(shape=(1,), name="movie", dtype="int32")

    def lookup(inputs, n, dim, name, l2, init):
        emb = layers.Embedding(n, dim, embeddings_initializer=init, activity_regularizer=keras.regularizers.l2(l2), name=name)
        return layers.Flatten(name=f"{name}_vector")(emb(inputs))

    factors = keras.initializers.RandomNormal(stddev=0.05)
    user_bias = lookup(user, n_users, 1, "user_bias", variant.l2_biases, "zeros")
    movie_bias = lookup(movie, n_movies, 1, "movie_bias", variant.l2_biases, "zeros")
    p = lookup(user, n_users, variant.factors, "user_embedding", variant.l2_factors, factors)
    q = lookup(movie, n_movies, variant.factors, "movie_embedding", variant.l2_factors, factors)
    content_layer = None
    if variant.content:
        content_layer, c = _frozen_content(movie, content)
        projection = layers.Dense(
            variant.factors, use_bias=False, kernel_regularizer=keras.regularizers.l2(variant.l2_content), name="content_projection"
        )
        q = layers.Add(name="movie_factors")([q, projection(c)])
    x = layers.Add()([user_bias, movie_bias, layers.Dot(axes=1)([p, q])])
    out = layers.Rescaling(1.0, offset=float(global_mean), name="rating")(x)
    net = keras.Model([user, movie], out, name="mf")
    if content_layer is not None:
        content_layer.set_weights([content])
    return net


def multdae(n_users: int, n_movies: int, variant: DAEVariant) -> keras.Model:
    """A user's history -> one logit per movie (Mult-DAE): Dropout -> Dense (+ per-user vector) -> tanh -> Dense.

    The input is the rating-weighted history already L2-normalised by the caller (`train.history_batches`,
    `train.history_scorer`): a UnitNormalization layer made training about 4x slower here.
    """
    history = keras.Input(shape=(n_movies,), name="history")
    x = layers.Dropout(variant.dropout)(history)
    x = layers.Dense(variant.hidden, kernel_regularizer=keras.regularizers.L2(variant.l2), name="encode")(x)
    inputs = [history]
    if variant.user_vector:
        user = keras.Input(shape=(), name="user", dtype="int32")
        vector = layers.Embedding(n_users, variant.hidden, embeddings_regularizer=keras.regularizers.L2(variant.l2_user), name="user_vector")
        x = layers.Add()([x, vector(user)])
        inputs.append(user)
    x = layers.Activation("tanh")(x)
    logits = layers.Dense(n_movies, kernel_regularizer=keras.regularizers.L2(variant.l2), name="logits")(x)
    return keras.Model(inputs, logits, name="multdae")


def build(
    variant: VariantParams, model: ModelParams, *, n_users: int, n_movies: int, rating_range, content=None, global_mean: float = 0.0
) -> keras.Model:
    """The model a variant names; `global_mean` (of the training ratings) is used by `mf` only."""
    if variant.architecture == "collab":
        return collab(n_users, n_movies, model, variant, rating_range)
    if variant.architecture == "hybrid":
        return hybrid(n_users, n_movies, model, variant, rating_range, content)
    if variant.architecture == "multdae":
        return multdae(n_users, n_movies, variant)
    return mf(n_users, n_movies, variant, global_mean, content)


def movie_vectors(model: keras.Model) -> np.ndarray:
    """The model's learned (n_movies, d) movie representation: its "movie_embedding" table, plus the
    projected content vectors W c_i for `mf` with content (its item factors are q_i + W c_i); for
    `multdae`, its output kernel transposed (movie m's logit is hidden . kernel[:, m] + bias[m])."""
    names = {layer.name for layer in model.layers}
    if model.name == "multdae":
        return np.ascontiguousarray(np.asarray(model.get_layer("logits").get_weights()[0], dtype=np.float32).T)
    if "movie_embedding" not in names:
        raise MovierecError(f"model {model.name!r} has no 'movie_embedding' layer; is it a movierec model?")
    vectors = np.asarray(model.get_layer("movie_embedding").get_weights()[0], dtype=np.float32)
    if {"content_projection", "content_embedding"} <= names:
        content = model.get_layer("content_embedding").get_weights()[0]
        vectors = vectors + content @ model.get_layer("content_projection").get_weights()[0]
    return vectors


def factor_tables(model: keras.Model) -> dict[str, np.ndarray]:
    """For `mf`: what scores a user against every movie without Keras, with `movie_vectors`:
    rating = offset + user_bias[u] + movie_bias[m] + user_factors[u] . movie_vectors[m]. Empty for other models."""
    names = {layer.name for layer in model.layers}
    if not {"user_bias", "movie_bias", "user_embedding", "rating"} <= names:
        return {}
    table = lambda name: np.asarray(model.get_layer(name).get_weights()[0], dtype=np.float32)  # noqa: E731
    return {
        "offset": np.float32(model.get_layer("rating").offset),
        "user_bias": table("user_bias")[:, 0],
        "movie_bias": table("movie_bias")[:, 0],
        "user_factors": table("user_embedding"),
    }


def uses_content(variant: VariantParams) -> bool:
    return variant.architecture == "hybrid" or (variant.architecture == "mf" and variant.content)
