"""A ranker over each user's whole history (Mult-DAE, Liang et al. 2018), with an optional per-user vector.

history -> Dropout -> Dense(hidden) (+ user vector) -> tanh -> Dense(movies) logits, trained with the
softmax likelihood of the history. Inputs and targets weigh a movie 1 if rated at or above
`positive_threshold` and `low_weight` otherwise; when scoring, the low ones weigh `score_low_weight`.
With `max_movies` it scores only the most-rated movies (an epoch costs users x max_movies). The
popularity prior is folded into the output bias when ranking (`scorer`), never seen in training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from movierec.examples import ModelInputs, UserHistories
from movierec.params.core import bounds
from movierec.prepare import Prepared, Split
from movierec.scoring import Catalogue, popularity_prior, unit_rows, user_histories

SHARED = "train"
DISTRIBUTABLE = False  # its batches are users, not rating rows: one process only
PREDICTS_RATINGS = False
ON_DEMAND_NEEDS_MODEL = True  # `recommend` loads the fitted model to score a user without a stored list


@dataclass(frozen=True)
class Settings:
    hidden: int = bounds(1)
    dropout: float = bounds(0, 1, open_high=True)  # on the input history (the denoising)
    l2: float = bounds(0)  # on both Dense kernels
    l2_user: float = bounds(0)  # on the per-user vectors
    user_vector: bool
    positive_threshold: float = bounds()
    low_weight: float = bounds(0, 1)
    score_low_weight: float = bounds(0, 1, rank_only=True)  # scoring only: the weight of low ratings in the history scored
    max_movies: int = bounds(0)  # 0: every movie


def shared(raw: dict, source: str):
    return None


def check(settings: Settings, source: str, where: str) -> None:
    pass


def uses_content(settings: Settings) -> bool:
    return False


def catalogue(settings: Settings, prepared: Prepared) -> Catalogue:
    """The movies it scores: its `max_movies` most-rated in training, or all."""
    return Catalogue.most_rated_in(prepared.train, len(prepared.movie_ids), settings.max_movies)


def examples(settings: Settings, prepared: Prepared) -> UserHistories:
    return UserHistories(len(prepared.user_ids), catalogue(settings, prepared), settings.positive_threshold, settings.low_weight, settings.user_vector)


def build(settings: Settings, shared, inputs: ModelInputs):
    """The input is the weighted history already scaled to unit norm by the caller (`scoring.unit_rows`,
    for `examples.history_batches` and `history_scorer`): a UnitNormalization layer made training about
    4x slower here, and its bits would depend on the CPU."""
    import keras
    from keras import layers

    history = keras.Input(shape=(inputs.n_movies,), name="history")
    x = layers.Dropout(settings.dropout)(history)
    x = layers.Dense(settings.hidden, kernel_regularizer=keras.regularizers.L2(settings.l2), name="encode")(x)
    model_inputs = [history]
    if settings.user_vector:
        user = keras.Input(shape=(), name="user", dtype="int32")
        vector = layers.Embedding(inputs.n_users, settings.hidden, embeddings_regularizer=keras.regularizers.L2(settings.l2_user), name="user_vector")
        x = layers.Add()([x, vector(user)])
        model_inputs.append(user)
    x = layers.Activation("tanh")(x)
    logits = layers.Dense(inputs.n_movies, kernel_regularizer=keras.regularizers.L2(settings.l2), name="logits")(x)
    return keras.Model(model_inputs, logits, name="multdae")


def fold_popularity_prior(model, ratings_per_movie: np.ndarray, weight: float) -> None:
    """Add `weight * log(1 + a movie's training ratings)` to its output bias, so the model, and so every
    scorer of it, ranks with the prior: a small lift for movies many people rated."""
    if weight == 0:
        return
    layer = model.get_layer("logits")
    kernel, bias = layer.get_weights()
    layer.set_weights([kernel, (bias + popularity_prior(ratings_per_movie, weight)).astype(bias.dtype)])


def history_scorer(model, histories, movies: Catalogue):
    """A block scorer: each chunk's histories (CSR rows), scaled as in training (`unit_rows`), scored
    over every movie (NaN outside the catalogue)."""
    with_user = len(model.inputs) == 2
    unit = unit_rows(histories)

    def score(users: np.ndarray) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        x = unit[users].toarray()
        return movies.scatter(np.asarray(model([x, users.astype(np.int32)] if with_user else x, training=False)))

    return score


def scorer(model, settings: Settings, prepared: Prepared, prior_weight: float, rows: Split | None = None):
    """Scores users from their training histories (`rows`, default every training row), weighted for
    scoring; folds the prior into `model` first, so the lists and the model rank alike."""
    movies = catalogue(settings, prepared)
    counts = np.bincount(prepared.train.movie, minlength=movies.n_movies)
    fold_popularity_prior(model, counts[movies.movies], prior_weight)
    rows = prepared.train if rows is None else rows
    histories = user_histories(rows, len(prepared.user_ids), movies, settings.positive_threshold, settings.score_low_weight)
    return history_scorer(model, histories, movies)


def movie_vectors(model, settings: Settings, prepared: Prepared) -> np.ndarray:
    """Its output kernel transposed (movie m's logit is hidden . kernel[:, m] + bias[m]); zero outside the catalogue."""
    movies = catalogue(settings, prepared)
    learned = np.ascontiguousarray(np.asarray(model.get_layer("logits").get_weights()[0], dtype=np.float32).T)
    vectors = np.zeros((movies.n_movies, learned.shape[1]), dtype=np.float32)
    vectors[movies.movies] = learned
    return vectors


def serving(model, settings: Settings, prepared: Prepared, prior_weight: float) -> dict:
    """How to build a user's history to score them on demand, and its catalogue where capped."""
    weighting = np.array([settings.positive_threshold, settings.score_low_weight], dtype=np.float32)
    return {"history_weighting": weighting, **catalogue(settings, prepared).stored()}


def on_demand(stored: dict, model, prepared: Prepared, user: int, settings: Settings, prior_weight: float):
    """`user`'s scores from their training history alone, ranked as the rank stage ranked (prior folded in)."""
    rows = prepared.train.take(np.flatnonzero(prepared.train.user == user))
    return scorer(model, settings, prepared, prior_weight, rows)
