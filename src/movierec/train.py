"""Fit one variant and save it as a `.keras` file, logging per-epoch curves with DVCLive.

Two regimes, chosen by `train.early_stopping_patience`:
- 0, the notebook's: a fixed number of epochs, the test split passed as `validation_data` for the
  curves only; nothing is selected on it.
- >0: a validation split is carved from the training rows (`validation_fraction`, seeded); training
  stops when its RMSE stops improving and keeps the best epoch. With `refit`, a fresh model is then
  trained on all training rows for that many epochs. The test split is never read.

Both run under the `train.distribute` strategy (`movierec.distribute`): `model.fit` for none and
mirrored, `distributed_epochs` for multi_worker, where only the chief writes outputs.

The history ranker (`multdae`) trains on batches of users instead of rating rows (`fit_history_model`),
in one process, with the same two regimes; its loss is the softmax likelihood of the history, not MSE.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from movierec.atomic import atomic_path, write_json
from movierec.environment import environment_record
from movierec.errors import MovierecError
from movierec.params import DAEVariant, EvaluateParams, Params, TrainParams, ranking_weight_grid
from movierec.prepare import Prepared, Split
from movierec.ranking import measure_lists
from movierec.quiet import import_tensorflow
from movierec.scoring import (
    PAD, BlockScorer, Catalogue, RatedIndex, evaluation_lists, pair_scorer, popularity_prior, ranking_users, top_k_with_offsets,
    user_histories, with_prior,
)


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


def fit(build, prepared: Prepared, t: TrainParams, live_dir: Path, tensorboard_dir: Path | None = None, on_carve=None):
    """Train a model made by `build(global_mean)`; return it and a summary (epochs, best epoch, seconds,
    and what `on_carve` chose: see `fit_with_regime`).

    The model is built and compiled in the scope of the `train.distribute` strategy. Under
    `multi_worker` the epochs run in `distributed_epochs` (Keras 3's `fit` fails there), with the same
    callbacks; only the chief's curves reach `live_dir`.
    """
    import tensorflow as tf

    from movierec import distribute

    strategy = distribute.make_strategy(t.distribute, t.threads)
    custom_loop = t.distribute == "multi_worker"

    def compiled(rows: Split):
        seed_everything(t.seed)
        with strategy.scope() if strategy else contextlib.nullcontext():
            model = compile_model(build(float(np.mean(rows.rating))), t)
            if custom_loop:  # its variables must be created here, in the strategy's scope
                model.optimizer.build(model.trainable_variables)
            return model

    def train(model, rows: Split, val: Split | None, epochs: int, callbacks: list) -> dict:
        if custom_loop:
            try:
                return distributed_epochs(model, strategy, rows, val, t, epochs, callbacks)
            except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.AbortedError, tf.errors.CancelledError) as exc:
                # a peer died or stopped answering: this worker's collective failed
                raise MovierecError(
                    f"multi_worker training stopped: another worker failed or stopped answering "
                    f"({type(exc).__name__}); this run wrote no outputs; see the other workers' logs"
                ) from None
        validation = batches(val, VALIDATION_BATCH) if val is not None else None
        return model.fit(
            batches(rows, t.batch_size, seed=t.seed),
            validation_data=validation,
            epochs=epochs,
            shuffle=False,  # `batches` reshuffles every epoch itself
            callbacks=callbacks,
            verbose=2,
        ).history

    return fit_with_regime(prepared, t, compiled, train, "val_rmse", live_dir, tensorboard_dir, distribute.is_chief(t.distribute), on_carve)


def _unit_rows(x):
    """Rows scaled to unit L2 norm, as tf.math.l2_normalize does (the model expects this input)."""
    return x / np.sqrt(np.maximum(np.sum(x * x, axis=1, keepdims=True), 1e-12))


def history_batches(inputs, targets, batch_size: int, with_user: bool, seed: int | None = None):
    """tf.data batches of the users with a target row: ((L2-normalised input history[, user]), target
    history), each batch made dense (batch x movies) only when it is drawn; users shuffled anew on every
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

    x_table = ragged(inputs)
    y_table = x_table if targets is inputs else ragged(targets)

    def batch(users):
        x = tf.math.l2_normalize(dense(x_table, users), axis=1)
        return ((x, tf.cast(users, tf.int32)) if with_user else x), dense(y_table, users)

    users = np.flatnonzero(np.diff(targets.indptr) > 0).astype(np.int64)
    dataset = tf.data.Dataset.from_tensor_slices(users)
    if seed is not None:
        dataset = dataset.shuffle(len(users), seed=seed, reshuffle_each_iteration=True)
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.batch(batch_size).map(batch).prefetch(2).with_options(options)


def history_scorer(model, histories, catalogue: Catalogue) -> BlockScorer:
    """A block scorer for a history model: each chunk's histories (CSR rows), normalised as in training,
    scored over every movie (NaN outside its `catalogue`)."""
    with_user = len(model.inputs) == 2

    def score(users: np.ndarray) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        x = _unit_rows(histories[users].toarray().astype(np.float32))
        return catalogue.scatter(np.asarray(model([x, users.astype(np.int32)] if with_user else x, training=False)))

    return score


def fit_history_model(build, prepared: Prepared, variant: DAEVariant, live_dir: Path, tensorboard_dir: Path | None = None):
    """Train a history model (`multdae`) on batches of users; return it and a summary like `fit`'s.

    Input and target are the user's weighted training history (`user_histories`). The eval curve: with
    early_stopping_patience 0, the test histories' loss given the training ones (curves only, as `fit`
    does with the test split); above 0, the same on a validation carve of the training rows, watched by
    early stopping (then `refit` retrains on all training rows for the best epoch count).
    """
    import keras

    from movierec.optim import make_optimizer

    t = variant.train
    n_users = len(prepared.user_ids)
    catalogue = history_catalogue(prepared, variant)
    histories = lambda rows: user_histories(rows, n_users, catalogue, variant.positive_threshold, variant.low_weight)  # noqa: E731

    def compiled(_rows: Split):  # a softmax over movies: no global mean to take from the rows
        seed_everything(t.seed)
        model = build(0.0, n_movies=len(catalogue.movies))
        model.compile(
            loss=keras.losses.CategoricalCrossentropy(from_logits=True),
            optimizer=make_optimizer(t.optimizer, t.learning_rate),
            steps_per_execution=t.steps_per_execution,
        )
        return model

    def train(model, rows: Split, held: Split | None, epochs: int, callbacks: list) -> dict:
        inputs = histories(rows)
        validation = history_batches(inputs, histories(held), t.batch_size, variant.user_vector) if held is not None else None
        data = history_batches(inputs, inputs, t.batch_size, variant.user_vector, seed=t.seed)
        return model.fit(data, validation_data=validation, epochs=epochs, shuffle=False, callbacks=callbacks, verbose=2).history

    model, summary = fit_with_regime(prepared, t, compiled, train, "val_loss", live_dir, tensorboard_dir, chief=True)
    counts = np.bincount(prepared.train.movie, minlength=catalogue.n_movies)
    fold_popularity_prior(model, counts[catalogue.movies], variant.popularity_prior)
    return model, summary


def history_catalogue(prepared: Prepared, variant: DAEVariant) -> Catalogue:
    """The movies `variant` scores: its `max_movies` most-rated in training, or all."""
    return Catalogue.most_rated_in(prepared.train, len(prepared.movie_ids), variant.max_movies)


def fold_popularity_prior(model, ratings_per_movie: np.ndarray, weight: float) -> None:
    """Add `weight * log(1 + a movie's training ratings)` to its output bias, so the saved model, and so
    every scorer of it, ranks with the prior: a small lift for movies many people rated, chosen on
    validation (README, "The ranking variant: dae"). Training never sees it."""
    if weight == 0:
        return
    layer = model.get_layer("logits")
    kernel, bias = layer.get_weights()
    layer.set_weights([kernel, (bias + popularity_prior(ratings_per_movie, weight)).astype(bias.dtype)])


def choose_popularity_prior(score: BlockScorer, carve: Prepared, grid: list[float], e: EvaluateParams) -> dict:
    """The value of `grid` whose lists rank the validation carve best (NDCG@k, ties to the first):
    `score` is the model trained on `carve.train` only, `carve.test` the training rows held out from it,
    ranked as `evaluate` ranks the test split. Why here: how much popularity should count depends on
    the data (on synthetic data whose exposure ignores taste it is several times latest-small's)."""
    n_users, n_movies = len(carve.user_ids), len(carve.movie_ids)
    counts = np.bincount(carve.train.movie, minlength=n_movies)
    users, _ = ranking_users(carve.test.user, carve.test.rating, e.relevance_threshold, e.max_users, e.seed)
    rated = RatedIndex.from_pairs(carve.train.user, carve.train.movie, n_users)
    priors = [popularity_prior(counts, weight).astype(np.float32) for weight in grid]
    ndcg = []
    for weight, lists in zip(grid, top_k_with_offsets(score, users, n_movies, rated, e.k, priors)):
        metrics = measure_lists(lists, users, len(users), carve.test, k=e.k, relevance_threshold=e.relevance_threshold, n_movies=n_movies)
        ndcg.append(metrics[f"ndcg_at_{e.k}"])
        print(f"popularity_prior {weight:g}: validation NDCG@{e.k} {ndcg[-1]:.4f}", flush=True)
    return {"popularity_prior": float(grid[int(np.argmax(ndcg))]), f"popularity_prior_validation_ndcg_at_{e.k}": ndcg}


def fit_with_regime(prepared: Prepared, t: TrainParams, compiled, train, monitor: str, live_dir: Path,
                    tensorboard_dir: Path | None, chief: bool, on_carve=None):
    """The regime both fits share. With early stopping: train on a validation carve of the training
    rows watching `monitor`, then (`refit`) retrain on all of them for the best epoch count. Without:
    train on all training rows, the test split as the curves' eval set only. `compiled(rows)` makes a
    fresh seeded model; `train(model, rows, held, epochs, callbacks)` runs the epochs and returns
    Keras' history dict. Only the `chief` writes the curves. With early stopping, `on_carve(model,
    fit_rows, held)` may choose more settings on the carve before the refit: its dict joins the
    summary and the curves' metrics."""
    import keras
    from dvclive import Live
    from dvclive.keras import DVCLiveCallback

    early = t.early_stopping_patience > 0
    fit_rows, held = carve_validation(prepared.train, t.validation_fraction, t.seed) if early else (prepared.train, prepared.test)
    callbacks = []
    if early:
        callbacks.append(keras.callbacks.EarlyStopping(monitor, mode="min", patience=t.early_stopping_patience, restore_best_weights=True))
    if tensorboard_dir is not None:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(tensorboard_dir), histogram_freq=1))
    start = time.perf_counter()
    model = compiled(fit_rows)
    with _curves_folder(live_dir, chief) as tmp_live:
        with Live(str(tmp_live), dvcyaml=False, save_dvc_exp=False, report=None) as live:
            history = train(model, fit_rows, held, t.epochs, [*callbacks, DVCLiveCallback(live=live)])
            epochs_run = len(history["loss"])
            best_epoch = int(np.argmin(history[monitor])) + 1 if early else epochs_run
            live.summary["best_epoch"] = best_epoch
            chosen = on_carve(model, fit_rows, held) if early and on_carve is not None else {}
            live.summary.update(chosen)
    if early and t.refit:
        if chief:
            print(f"Refitting on all {len(prepared.train)} training rows for {best_epoch} epochs")
        model = compiled(prepared.train)
        train(model, prepared.train, None, best_epoch, [])
    summary = {"epochs_run": epochs_run, "best_epoch": best_epoch, **chosen, "train_seconds": round(time.perf_counter() - start, 2)}
    return model, summary


@contextlib.contextmanager
def _curves_folder(live_dir: Path, chief: bool):
    """The chief writes the curves atomically into `live_dir`; other workers into a throwaway folder."""
    if chief:
        with atomic_path(live_dir, directory=True) as tmp:
            yield tmp
    else:
        with tempfile.TemporaryDirectory(prefix="movierec-worker-") as tmp:
            yield Path(tmp)


def distributed_epochs(model, strategy, rows: Split, val: Split | None, t: TrainParams, epochs: int, callbacks: list) -> dict:
    """`model.fit` for `MultiWorkerMirroredStrategy`: the same batches, loss, logs and callbacks.

    Every worker walks the same seeded global batches (`batches`) and trains on its slice of each
    (`distribute.this_workers_share`). A replica's loss is its share of the global-batch loss:
    sum of its squared errors / global batch + (its rows / global batch) * the model's regularisation
    losses, so the all-reduced (summed) gradients equal one worker's on the whole batch. Per-epoch sums
    (loss, squared error, rows) accumulate in a replica-local variable, all-reduced once per epoch.
    """
    import keras
    import tensorflow as tf

    from movierec import distribute

    watch_rmse = t.early_stopping_patience > 0
    with strategy.scope():
        totals = tf.Variable(
            tf.zeros(3), trainable=False,
            synchronization=tf.VariableSynchronization.ON_READ, aggregation=tf.VariableAggregation.SUM,
        )
    variables = model.trainable_variables

    def replica_loss(user, movie, rating, global_n, training):
        predicted = model([user, movie], training=training)
        squared = tf.reduce_sum(tf.square(rating - predicted))
        share = tf.cast(tf.shape(rating)[0], tf.float32) / global_n
        extra = tf.add_n(model.losses) if model.losses else 0.0
        return squared / global_n + share * extra, squared

    def train_step(inputs, rating, global_n):
        with tf.GradientTape() as tape:
            loss, squared = replica_loss(*inputs, rating, global_n, training=True)
        model.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        totals.assign_add(tf.stack([loss * global_n, squared, tf.cast(tf.shape(rating)[0], tf.float32)]))

    def eval_step(inputs, rating, global_n):
        loss, squared = replica_loss(*inputs, rating, global_n, training=False)
        totals.assign_add(tf.stack([loss * global_n, squared, tf.cast(tf.shape(rating)[0], tf.float32)]))

    def runner(step):
        @tf.function
        def run(iterator, steps):
            for _ in tf.range(steps):
                strategy.run(step, args=next(iterator))
        return run

    def epoch_logs(rows_in_pass: int, batch_size: int, dataset, run_whole, run_short, chunk: int) -> dict:
        """One pass; the shorter last batch goes through its own traced function: a collective keeps
        the shapes it first ran with, so its sparse-gradient gather cannot change size mid-loop."""
        totals.assign(tf.zeros(3))
        whole, rest = divmod(rows_in_pass, batch_size)
        iterator = iter(dataset)
        for done in range(0, whole, chunk):
            run_whole(iterator, tf.constant(min(chunk, whole - done)))
        if rest:
            run_short(iterator, tf.constant(1))
        loss_sum, squared, n = (float(x) for x in totals.read_value().numpy())  # the one all-reduce
        return {"loss": loss_sum / n, **({"rmse": (squared / n) ** 0.5} if watch_rmse else {})}

    run_train, run_train_last, run_eval = runner(train_step), runner(train_step), runner(eval_step)
    train_data = distribute.this_workers_share(batches(rows, t.batch_size, seed=t.seed))
    val_data = distribute.this_workers_share(batches(val, VALIDATION_BATCH)) if val is not None else None
    chief = distribute.is_chief(t.distribute)
    history: dict[str, list] = {}
    hooks = keras.callbacks.CallbackList(callbacks, model=model)
    model.stop_training = False
    hooks.on_train_begin()
    for epoch in range(epochs):
        began = time.perf_counter()
        hooks.on_epoch_begin(epoch)
        logs = epoch_logs(len(rows), t.batch_size, train_data, run_train, run_train_last, t.steps_per_execution)
        if val_data is not None:
            val_logs = epoch_logs(len(val), VALIDATION_BATCH, val_data, run_eval, run_eval, 1 << 30)
            logs.update({f"val_{k}": v for k, v in val_logs.items()})
        if chief:
            shown = " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())
            print(f"Epoch {epoch + 1}/{epochs}\n{time.perf_counter() - began:.1f}s - {shown}", flush=True)
        hooks.on_epoch_end(epoch, logs)
        for k, v in logs.items():
            history.setdefault(k, []).append(v)
        if model.stop_training:
            break
    hooks.on_train_end()
    return history


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


def export_predictions(model, prepared: Prepared, e: EvaluateParams, path: Path, variant=None, prior_weight: float = 0.0) -> None:
    """Save what the later stages and commands need from the model, computed while TensorFlow is loaded.

    Evaluation, exploration, `recommend` and `similar` read this file instead of the `.keras` model,
    so none of them pays TensorFlow's start-up (about 3 s a process here). It holds predictions for the
    test pairs, each ranked user's top `evaluate.top_n` list (scored in chunks of users against every
    movie: users x top_n, never users x movies), the movie vectors, and for matrix factorisation the
    tables that score any user on demand. A rating model ranks by its predicted rating plus
    `prior_weight` x log(1 + training ratings) (stored as `ranking_prior` when not zero); its lists
    keep the predicted ratings.
    A history ranker (`variant` of architecture multdae) predicts no ratings: no test predictions, and
    its scoring-time history weighting instead (and its catalogue, if capped), to score any user on demand.
    The keys are documented in `evaluate.load_predictions`.
    """
    from movierec.models import factor_tables, movie_vectors

    n_users, n_movies = len(prepared.user_ids), len(prepared.movie_ids)
    prior = None
    if isinstance(variant, DAEVariant):
        catalogue = history_catalogue(prepared, variant)
        histories = user_histories(prepared.train, n_users, catalogue, variant.positive_threshold, variant.score_low_weight)
        score = history_scorer(model, histories, catalogue)
        weighting = np.array([variant.positive_threshold, variant.score_low_weight], dtype=np.float32)
        test_pairs, on_demand = {}, {"history_weighting": weighting, **catalogue.stored()}
        learned = movie_vectors(model)
        vectors = np.zeros((n_movies, learned.shape[1]), dtype=np.float32)  # outside the catalogue: no vector
        vectors[catalogue.movies] = learned
    else:
        predict = keras_predictor(model)
        score = pair_scorer(predict, n_movies)
        test_pairs = {"test_predictions": predict(prepared.test.user, prepared.test.movie).astype(np.float32)}
        on_demand = factor_tables(model)
        vectors = movie_vectors(model)
        if prior_weight:
            prior = popularity_prior(np.bincount(prepared.train.movie, minlength=n_movies), prior_weight).astype(np.float32)
            score = with_prior(score, prior)
            on_demand["ranking_prior"] = prior
    users, top_movies, top_scores = evaluation_lists(
        score, prepared.train, prepared.test, n_users, n_movies,
        n=e.top_n, relevance_threshold=e.relevance_threshold, max_users=e.max_users, seed=e.seed,
    )
    if prior is not None:  # the lists keep the model's own predicted ratings, not the ranking scores
        listed = top_movies != PAD
        top_scores[listed] = predict(np.broadcast_to(users[:, None], top_movies.shape)[listed], top_movies[listed])
    arrays = {
        **test_pairs,
        "top_users": users.astype(np.int32),
        "top_movies": top_movies,
        "top_scores": top_scores,
        "movie_vectors": vectors,
        "n_params": np.int64(model.count_params()),
        **on_demand,
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
    from movierec import distribute

    variant = params.variant(name)
    t = variant.train
    distribute.make_strategy(t.distribute, t.threads)  # first: a strategy must start TF's runtime itself
    import_tensorflow(threads=t.threads)
    from movierec import models

    content = np.load(content_path, allow_pickle=False) if models.uses_content(variant) else None

    def build(global_mean: float, n_movies: int = len(prepared.movie_ids)):
        return models.build(
            variant,
            params.model,
            n_users=len(prepared.user_ids),
            n_movies=n_movies,
            rating_range=(params.data.min_rating, params.data.max_rating),
            content=content,
            global_mean=global_mean,
        )

    tensorboard_dir = Path("logs") / name if variant.train.tensorboard else None
    if isinstance(variant, DAEVariant):
        model, summary = fit_history_model(build, prepared, variant, live_dir, tensorboard_dir)
        prior_weight = 0.0  # folded into the model's output bias
    else:
        grid = ranking_weight_grid(variant)

        def on_carve(carve_model, fit_rows: Split, held: Split) -> dict:
            carve = Prepared(prepared.user_ids, prepared.movie_ids, fit_rows, held)
            return choose_popularity_prior(pair_scorer(keras_predictor(carve_model), len(prepared.movie_ids)), carve, grid, params.evaluate)

        model, summary = fit(build, prepared, variant.train, live_dir, tensorboard_dir, on_carve if len(grid) > 1 else None)
        prior_weight = summary.get("popularity_prior", grid[0])
    if not distribute.is_chief(variant.train.distribute):
        return model  # every worker holds the same model; the chief writes it and everything else
    save_model(model, model_path)
    export_predictions(model, prepared, params.evaluate, predictions_path, variant, prior_weight)
    write_json(timing_path, summary)
    write_json(environment_path, environment_record(tf_threads=variant.train.threads))
    return model
