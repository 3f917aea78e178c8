"""Fit one model: the training regime every architecture shares, rating pairs and user histories alike.

Two regimes, chosen by `train.early_stopping_patience`:
- 0, the notebook's: a fixed number of epochs, the test split passed as the curves' eval set only;
  nothing is selected on it.
- >0: a validation split is carved from the training rows (`validation_fraction`, seeded); training
  stops when its loss (RMSE for rating models) stops improving and keeps the best epoch. With `refit`,
  a fresh model is then trained on all training rows for that many epochs. The test split is never read.

The carve model and its held-out rows are returned too: the rank stage chooses ranking settings on
them, with a model that never trained on the carve. Fits run under the `train.distribute` strategy
(`movierec.distribute`): `model.fit` for none and mirrored, `multi_worker.epochs` for multi_worker,
where only the chief writes the curves.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from movierec import distribute
from movierec.atomic import atomic_path
from movierec.errors import MovierecError
from movierec.params.time_terms import TimeTerms
from movierec.params.train import TrainParams
from movierec.prepare import Prepared, Split
from movierec.scoring import clip_ratings
from movierec.time_bias import TimeBias, fit_residual_terms, held_out_terms
from movierec.examples import ModelInputs


@dataclass(frozen=True)
class Fitted:
    model: object  # the keras.Model to keep
    carve_model: object | None  # with early stopping and refit: the model fitted on the carve only
    held_rows: np.ndarray | None  # with early stopping: the training rows held out from the carve model
    summary: dict  # epochs run, best epoch, seconds
    time_terms: TimeBias | None = None  # with the variant's `time_terms`: fitted on the model's training residuals


def seed_everything(seed: int) -> None:
    """Bitwise-reproducible CPU training for a fixed seed (same machine and TF version)."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def carve_rows(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows fitted on, rows held out) of `n` training rows: the validation carve."""
    from sklearn.model_selection import train_test_split

    return train_test_split(np.arange(n), test_size=fraction, random_state=seed)


def fit(architecture, settings, shared, t: TrainParams, prepared: Prepared, content, rating_range,
        live_dir: Path, tensorboard_dir: Path | None = None, callbacks: tuple = (), time_terms: TimeTerms | None = None) -> Fitted:
    """Train `architecture`'s model (a module of `movierec.architectures`) with the regime above.
    `callbacks`: more Keras callbacks for the first fit (`movierec tune` prunes trials with one).
    `time_terms`: then fit those on what the model leaves of the rows it trained on, if the validation
    carve says they help (`time_terms_on_carve`; without early stopping there is no carve: always)."""
    import keras
    from dvclive import Live
    from dvclive.keras import DVCLiveCallback

    examples = architecture.examples(settings, prepared)
    strategy = distribute.make_strategy(t.distribute, t.threads)
    chief = distribute.is_chief(t.distribute)
    early = t.early_stopping_patience > 0
    if early:
        fit_idx, held_idx = carve_rows(len(prepared.train), t.validation_fraction, t.seed)
        fit_rows, held = prepared.train.take(fit_idx), prepared.train.take(held_idx)
    else:
        held_idx, fit_rows, held = None, prepared.train, prepared.test

    def new_model(rows: Split):
        inputs = ModelInputs(len(prepared.user_ids), examples.n_movies, rating_range, content, examples.global_mean(rows))
        return compiled_model(architecture, settings, shared, inputs, examples, t, strategy)

    callbacks = list(callbacks)
    if early:
        callbacks.append(keras.callbacks.EarlyStopping(examples.monitor, mode="min", patience=t.early_stopping_patience, restore_best_weights=True))
    if tensorboard_dir is not None:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(tensorboard_dir), histogram_freq=1))
    start = time.perf_counter()
    model = new_model(fit_rows)
    with _curves_folder(live_dir, chief) as tmp_live:
        with Live(str(tmp_live), dvcyaml=False, save_dvc_exp=False, report=None) as live:
            history = run_epochs(model, examples, fit_rows, held, t, t.epochs, [*callbacks, DVCLiveCallback(live=live)], strategy)
            epochs_run = len(history["loss"])
            best_epoch = int(np.argmin(history[examples.monitor])) + 1 if early else epochs_run
            live.summary["best_epoch"] = best_epoch
    carve_model = None
    if early and t.refit:
        if chief:
            print(f"Refitting on all {len(prepared.train)} training rows for {best_epoch} epochs")
        carve_model, model = model, new_model(prepared.train)
        run_epochs(model, examples, prepared.train, None, t, best_epoch, [], strategy)
    summary = {"epochs_run": epochs_run, "best_epoch": best_epoch}
    terms = None
    if time_terms is not None:
        if early:
            summary.update(time_terms_on_carve(architecture.predictor(model if carve_model is None else carve_model), fit_rows, held, prepared, time_terms, rating_range))
        if summary.get("time_terms_kept", True):
            rows = fit_rows if early and not t.refit else prepared.train  # the rows the kept model trained on
            predicted = architecture.predictor(model)(rows.user, rows.movie)
            terms = fit_residual_terms(rows, predicted, len(prepared.user_ids), len(prepared.movie_ids), time_terms)
    summary["train_seconds"] = round(time.perf_counter() - start, 2)
    return Fitted(model, carve_model, held_idx, summary, terms)


def time_terms_on_carve(predict, fit_rows: Split, held: Split, prepared: Prepared, terms: TimeTerms, rating_range) -> dict:
    """Do the time terms earn their place on this data? The carve model's RMSE on its held-out rows
    without and with them (fitted on what it leaves of its own rows): kept only if they lower it. On
    data whose days say nothing (benchmarks/other_generator.py), a user's drift and a bias per (user,
    day) fit noise: there they cost mf_content 0.012 of test RMSE."""
    base = np.asarray(predict(held.user, held.movie), dtype=np.float64)
    with_terms = base + held_out_terms(predict, fit_rows, held, len(prepared.user_ids), len(prepared.movie_ids), terms)
    rating = np.asarray(held.rating, dtype=np.float64)
    rmse = [float(np.sqrt(np.mean((clip_ratings(p, rating_range) - rating) ** 2))) for p in (base, with_terms)]
    return {"time_terms_kept": rmse[1] < rmse[0], "time_terms_validation_rmse": {"without": round(rmse[0], 6), "with": round(rmse[1], 6)}}


def compiled_model(architecture, settings, shared, inputs: ModelInputs, examples, t: TrainParams, strategy):
    """A fresh seeded model, built and compiled in the strategy's scope."""
    from movierec.optim import make_optimizer

    seed_everything(t.seed)
    with strategy.scope() if strategy else contextlib.nullcontext():
        model = architecture.build(settings, shared, inputs)
        model.compile(
            loss=examples.loss(),
            optimizer=make_optimizer(t.optimizer, t.learning_rate),
            metrics=examples.metrics(t.early_stopping_patience > 0),
            steps_per_execution=t.steps_per_execution,
        )
        if t.distribute == "multi_worker":  # its variables must be created here, in the strategy's scope
            model.optimizer.build(model.trainable_variables)
    return model


def run_epochs(model, examples, rows: Split, held: Split | None, t: TrainParams, epochs: int, callbacks: list, strategy) -> dict:
    """Train `model` for up to `epochs` on `rows` (eval set `held`); Keras' history dict."""
    if t.distribute == "multi_worker":
        import tensorflow as tf

        from movierec.training import multi_worker

        try:
            return multi_worker.fit_epochs(model, strategy, rows, held, t, epochs, callbacks)
        except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.AbortedError, tf.errors.CancelledError) as exc:
            # a peer died or stopped answering: this worker's collective failed
            raise MovierecError(
                f"multi_worker training stopped: another worker failed or stopped answering "
                f"({type(exc).__name__}); this run wrote no outputs; see the other workers' logs"
            ) from None
    validation = examples.held_out(rows, held, t.batch_size) if held is not None else None
    return model.fit(
        examples.batches(rows, t.batch_size, seed=t.seed),
        validation_data=validation,
        epochs=epochs,
        shuffle=False,  # the batches reshuffle every epoch themselves
        callbacks=callbacks,
        verbose=2,
    ).history


@contextlib.contextmanager
def _curves_folder(live_dir: Path, chief: bool):
    """The chief writes the curves atomically into `live_dir`; other workers into a throwaway folder."""
    if chief:
        with atomic_path(live_dir, directory=True) as tmp:
            yield tmp
    else:
        with tempfile.TemporaryDirectory(prefix="movierec-worker-") as tmp:
            yield Path(tmp)
