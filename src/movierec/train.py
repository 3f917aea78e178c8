"""Fit one variant and save it as a `.keras` file, logging per-epoch curves with DVCLive.

Two regimes, chosen by `train.early_stopping_patience`:
- 0, the notebook's: a fixed number of epochs, the test split passed as `validation_data` for the
  curves only; nothing is selected on it.
- >0: a validation split is carved from the training rows (`validation_fraction`, seeded); training
  stops when its RMSE stops improving and keeps the best epoch. With `refit`, a fresh model is then
  trained on all training rows for that many epochs. The test split is never read.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from movierec.atomic import atomic_path, write_json
from movierec.environment import environment_record
from movierec.params import EvaluateParams, Params, TrainParams
from movierec.prepare import Prepared, Split
from movierec.quiet import import_tensorflow
from movierec.scoring import evaluation_lists, pair_scorer


def seed_everything(seed: int) -> None:
    """Bitwise-reproducible CPU training for a fixed seed (same machine and TF version)."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def carve_validation(train: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    from sklearn.model_selection import train_test_split

    fit_rows, val_rows = train_test_split(np.arange(len(train)), test_size=fraction, random_state=seed)
    pick = lambda rows: Split(train.user[rows], train.movie[rows], train.rating[rows])  # noqa: E731
    return pick(fit_rows), pick(val_rows)


VALIDATION_BATCH = 4096  # evaluation has no updates: a large batch gives the same loss in fewer steps


def batches(rows: Split, batch_size: int, seed: int | None = None):
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


def compile_model(model, t: TrainParams):
    """MSE loss and the configured optimizer; RMSE as a metric only when early stopping watches it
    (at batch 32 every extra per-step op costs throughput)."""
    import keras

    from movierec.optim import make_optimizer

    early = t.early_stopping_patience > 0
    model.compile(
        loss="mse",
        optimizer=make_optimizer(t.optimizer, t.learning_rate),
        metrics=[keras.metrics.RootMeanSquaredError(name="rmse")] if early else None,
        steps_per_execution=t.steps_per_execution,
    )
    return model


def fit(build, prepared: Prepared, t: TrainParams, live_dir: Path, tensorboard_dir: Path | None = None):
    """Train a model made by `build(global_mean)`; return it and a summary (epochs, best epoch, seconds)."""
    import keras
    from dvclive import Live
    from dvclive.keras import DVCLiveCallback

    def compiled(rows: Split):
        seed_everything(t.seed)
        return compile_model(build(float(np.mean(rows.rating))), t)

    early = t.early_stopping_patience > 0
    fit_rows, val_rows = carve_validation(prepared.train, t.validation_fraction, t.seed) if early else (prepared.train, prepared.test)
    callbacks = []
    if early:
        callbacks.append(keras.callbacks.EarlyStopping("val_rmse", patience=t.early_stopping_patience, restore_best_weights=True))
    if tensorboard_dir is not None:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(tensorboard_dir), histogram_freq=1))
    start = time.perf_counter()
    model = compiled(fit_rows)
    with atomic_path(live_dir, directory=True) as tmp_live:
        with Live(str(tmp_live), dvcyaml=False, save_dvc_exp=False, report=None) as live:
            history = model.fit(
                batches(fit_rows, t.batch_size, seed=t.seed),
                validation_data=batches(val_rows, VALIDATION_BATCH),
                epochs=t.epochs,
                shuffle=False,  # `batches` reshuffles every epoch itself
                callbacks=[*callbacks, DVCLiveCallback(live=live)],
                verbose=2,
            )
            epochs_run = len(history.history["loss"])
            best_epoch = int(np.argmin(history.history["val_rmse"])) + 1 if early else epochs_run
            live.summary["best_epoch"] = best_epoch
    if early and t.refit:
        print(f"Refitting on all {len(prepared.train)} training rows for {best_epoch} epochs")
        model = compiled(prepared.train)
        model.fit(batches(prepared.train, t.batch_size, seed=t.seed), epochs=best_epoch, shuffle=False, verbose=2)
    summary = {"epochs_run": epochs_run, "best_epoch": best_epoch, "train_seconds": round(time.perf_counter() - start, 2)}
    return model, summary


def save_model(model, path: Path) -> None:
    """Save with a stock optimizer, so the file reloads with `keras.saving.load_model` alone."""
    from movierec.optim import to_stock_adam

    with atomic_path(path) as tmp:
        to_stock_adam(model).save(tmp)


def keras_predictor(model, batch_size: int = 65536):
    """Wrap a two-input Keras model as predict(users, movies) -> ratings, the interface every scorer uses.

    It calls the model on fixed-size chunks rather than using `model.predict`, whose multi-step loop
    gave run-to-run differences of up to 5e-7 on mf_content's content projection here (and was slower
    on the notebook models): the same model and pairs must give the same bits, hence the same metrics.
    """

    def predict(users, movies):
        users = np.asarray(users, dtype=np.int32).reshape(-1, 1)
        movies = np.asarray(movies, dtype=np.int32).reshape(-1, 1)
        chunks = [
            np.asarray(model([users[i : i + batch_size], movies[i : i + batch_size]], training=False)).reshape(-1)
            for i in range(0, len(users), batch_size)
        ]
        return np.concatenate(chunks) if chunks else np.empty(0, dtype=np.float32)

    return predict


def export_predictions(model, prepared: Prepared, e: EvaluateParams, path: Path) -> None:
    """Save what the later stages and commands need from the model, computed while TensorFlow is loaded.

    Evaluation, exploration, `recommend` and `similar` read this file instead of the `.keras` model,
    so none of them pays TensorFlow's start-up (about 3 s a process here). It holds predictions for the
    test pairs, each ranked user's top `evaluate.top_n` list (scored in chunks of users against every
    movie: users x top_n, never users x movies), the movie vectors, and for matrix factorisation the
    tables that score any user on demand. The keys are documented in `evaluate.load_predictions`.
    """
    from movierec.models import factor_tables, movie_vectors

    predict = keras_predictor(model)
    n_users, n_movies = len(prepared.user_ids), len(prepared.movie_ids)
    users, top_movies, top_scores = evaluation_lists(
        pair_scorer(predict, n_movies), prepared.train, prepared.test, n_users, n_movies,
        n=e.top_n, relevance_threshold=e.relevance_threshold, max_users=e.max_users, seed=e.seed,
    )
    arrays = {
        "test_predictions": predict(prepared.test.user, prepared.test.movie).astype(np.float32),
        "top_users": users.astype(np.int32),
        "top_movies": top_movies,
        "top_scores": top_scores,
        "movie_vectors": movie_vectors(model),
        "n_params": np.int64(model.count_params()),
        **factor_tables(model),
    }
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def run(
    params: Params, name: str, prepared: Prepared, content_path: Path, model_path: Path, predictions_path: Path,
    live_dir: Path, timing_path: Path, environment_path: Path,
):
    """The train stage: build, fit, save the model and its predictions, and record the wall time and
    the environment (versions, BLAS, CPU) that produced them: git-tracked, kept out of the metrics
    since neither is a result, read by `movierec check-drift`."""
    variant = params.variant(name)
    import_tensorflow(threads=variant.train.threads)
    from movierec import models

    content = np.load(content_path, allow_pickle=False) if models.uses_content(variant) else None

    def build(global_mean: float):
        return models.build(
            variant,
            params.model,
            n_users=len(prepared.user_ids),
            n_movies=len(prepared.movie_ids),
            rating_range=(params.data.min_rating, params.data.max_rating),
            content=content,
            global_mean=global_mean,
        )

    tensorboard_dir = Path("logs") / name if variant.train.tensorboard else None
    model, summary = fit(build, prepared, variant.train, live_dir, tensorboard_dir)
    save_model(model, model_path)
    export_predictions(model, prepared, params.evaluate, predictions_path)
    write_json(timing_path, summary)
    write_json(environment_path, environment_record(tf_threads=variant.train.threads))
    return model
