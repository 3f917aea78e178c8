"""What a model trains on: rating pairs (the rating models) or user histories (the rankers), as tf.data pipelines.

An architecture's `examples(settings, prepared)` returns one of the two kinds below; the training regime
(`training.regime`) asks it for the loss, the metric early stopping watches, and the batches, so one
regime fits both kinds. `ModelInputs` and `frozen_content` are how the data's sizes and the content
vectors enter an architecture's model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from movierec.prepare import Split
from movierec.scoring import Catalogue, unit_rows, user_histories


@dataclass(frozen=True)
class ModelInputs:
    """What an architecture's `build` needs besides its settings."""

    n_users: int
    n_movies: int  # the movies the model scores: a history model's catalogue
    rating_range: tuple[float, float]
    content: np.ndarray | None  # the aligned content matrix, for architectures that use it
    global_mean: float  # of the ratings it trains on (a rating model's starting offset)


def frozen_content(movie, content: np.ndarray):
    """A frozen per-movie lookup of the content matrix, and its flattened output. The caller sets its
    weights once the model is built: a Constant initializer would copy the whole matrix into the saved
    model's JSON config."""
    from keras import layers

    layer = layers.Embedding(content.shape[0], content.shape[1], embeddings_initializer="zeros", trainable=False, name="content_embedding")
    return layer, layers.Flatten(name="content_vector")(layer(movie))


@dataclass(frozen=True)
class RatingPairs:
    """(user, movie) -> rating rows; MSE; early stopping watches the held-out RMSE."""

    n_movies: int
    monitor = "val_rmse"

    def loss(self):
        return "mse"

    def metrics(self, early_stopping: bool):
        """RMSE only when early stopping watches it: at batch 32 every extra per-step op costs throughput."""
        import keras

        return [keras.metrics.RootMeanSquaredError(name="rmse")] if early_stopping else None

    def global_mean(self, rows: Split) -> float:
        return float(np.mean(rows.rating))

    def batches(self, rows: Split, batch_size: int, seed: int | None = None):
        return rating_batches(rows, batch_size, seed)

    def held_out(self, rows: Split, held: Split, batch_size: int):
        return rating_batches(held, VALIDATION_BATCH)


@dataclass(frozen=True)
class UserHistories:
    """Each user's weighted training history, in and out (a softmax over the catalogue's movies)."""

    n_users: int
    catalogue: Catalogue
    positive_threshold: float
    low_weight: float
    with_user: bool  # the model also takes the user's index (a per-user vector)
    monitor = "val_loss"

    @property
    def n_movies(self) -> int:
        return len(self.catalogue.movies)

    def loss(self):
        import keras

        return keras.losses.CategoricalCrossentropy(from_logits=True)

    def metrics(self, early_stopping: bool):
        return None

    def global_mean(self, rows: Split) -> float:
        return 0.0  # a softmax over movies: no rating offset

    def histories(self, rows: Split):
        return user_histories(rows, self.n_users, self.catalogue, self.positive_threshold, self.low_weight)

    def batches(self, rows: Split, batch_size: int, seed: int | None = None):
        inputs = self.histories(rows)
        return history_batches(inputs, inputs, batch_size, self.with_user, seed)

    def held_out(self, rows: Split, held: Split, batch_size: int):
        """The held-out histories' loss given the training ones."""
        return history_batches(self.histories(rows), self.histories(held), batch_size, self.with_user)


VALIDATION_BATCH = 4096  # evaluation has no updates: a large batch gives the same loss in fewer steps


def rating_batches(rows: Split, batch_size: int, seed: int | None = None):
    """A tf.data pipeline over `rows`: ((user, movie), rating) batches, in a new seeded order on every
    pass when `seed` is given (as `fit(shuffle=True)` does), in row order otherwise.

    Why not `model.fit(x, y)`: with a global seed set, Keras 3 replays one batch order in every epoch;
    and its array adapter runs an autotuned parallel map and prefetch whose threads compete with
    training for two cores, and whose autotuner stalled about 1.2 s at some epoch starts here (epochs
    alternated between ~1.3 s and ~2.6 s). Here pass k shuffles the rows once with the stateless key
    (seed, k) and slices whole batches off the reshaped columns: no per-batch function, no extra
    threads, autotuning off.
    """
    import tensorflow as tf

    n = len(rows)
    n_full, rest = divmod(n, batch_size)
    columns = (
        tf.constant(np.asarray(rows.user, dtype=np.int32)[:, None]),
        tf.constant(np.asarray(rows.movie, dtype=np.int32)[:, None]),
        tf.constant(np.asarray(rows.rating, dtype=np.float32)[:, None]),
    )

    def as_batches(user, movie, rating):
        cut = n_full * batch_size
        whole = lambda c: tf.reshape(c[:cut], [n_full, batch_size, 1])  # noqa: E731
        out = tf.data.Dataset.from_tensor_slices(((whole(user), whole(movie)), whole(rating)))
        if rest:  # the last, shorter batch
            out = out.concatenate(tf.data.Dataset.from_tensor_slices(((user[None, cut:], movie[None, cut:]), rating[None, cut:])))
        return out

    if seed is None:
        dataset = as_batches(*columns)
    else:
        passes = tf.Variable(0, dtype=tf.int64, trainable=False)

        def shuffled(_):
            key = tf.stack([tf.constant(seed, tf.int64), passes.assign_add(1)])
            order = tf.random.experimental.stateless_shuffle(tf.range(n, dtype=tf.int64), seed=key)
            return as_batches(*(tf.gather(c, order) for c in columns))

        dataset = tf.data.Dataset.range(1).flat_map(shuffled).apply(tf.data.experimental.assert_cardinality(n_full + (rest > 0)))
    options = tf.data.Options()
    options.autotune.enabled = False  # nothing to tune; its thread stalled ~1 s at some epoch starts here
    return dataset.with_options(options)


def history_batches(inputs, targets, batch_size: int, with_user: bool, seed: int | None = None):
    """tf.data batches of the users with a target row: ((input history scaled by `unit_rows`[, user]),
    target history), each batch made dense (batch x movies) only when it is drawn; users shuffled anew on every
    pass when `seed` is given."""
    import tensorflow as tf

    n_movies = inputs.shape[1]

    def ragged(m):
        splits = m.indptr.astype(np.int64)
        return (tf.RaggedTensor.from_row_splits(m.indices.astype(np.int64), splits),
                tf.RaggedTensor.from_row_splits(m.data.astype(np.float32), splits))

    def dense(table, users):
        cols, vals = (tf.gather(t, users) for t in table)
        index = tf.stack([cols.value_rowids(), cols.flat_values], axis=1)
        return tf.scatter_nd(index, vals.flat_values, tf.stack([cols.nrows(), tf.constant(n_movies, tf.int64)]))

    x_table, y_table = ragged(unit_rows(inputs)), ragged(targets)

    def batch(users):
        x = dense(x_table, users)
        return ((x, tf.cast(users, tf.int32)) if with_user else x), dense(y_table, users)

    users = np.flatnonzero(np.diff(targets.indptr) > 0).astype(np.int64)
    dataset = tf.data.Dataset.from_tensor_slices(users)
    if seed is not None:
        dataset = dataset.shuffle(len(users), seed=seed, reshuffle_each_iteration=True)
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.batch(batch_size).map(batch).prefetch(2).with_options(options)


