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
from movierec.params import Params, TrainParams
from movierec.prepare import Prepared, Split
from movierec.quiet import import_tensorflow


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
                x=fit_rows.inputs(),
                y=fit_rows.rating,
                validation_data=(val_rows.inputs(), val_rows.rating),
                batch_size=t.batch_size,
                epochs=t.epochs,
                callbacks=[*callbacks, DVCLiveCallback(live=live)],
                verbose=2,
            )
            epochs_run = len(history.history["loss"])
            best_epoch = int(np.argmin(history.history["val_rmse"])) + 1 if early else epochs_run
            live.summary["best_epoch"] = best_epoch
    if early and t.refit:
        print(f"Refitting on all {len(prepared.train)} training rows for {best_epoch} epochs")
        model = compiled(prepared.train)
        model.fit(prepared.train.inputs(), prepared.train.rating, batch_size=t.batch_size, epochs=best_epoch, verbose=2)
    summary = {"epochs_run": epochs_run, "best_epoch": best_epoch, "train_seconds": round(time.perf_counter() - start, 2)}
    return model, summary


def save_model(model, path: Path) -> None:
    """Save with a stock optimizer, so the file reloads with `keras.saving.load_model` alone."""
    from movierec.optim import to_stock_adam

    with atomic_path(path) as tmp:
        to_stock_adam(model).save(tmp)


def run(params: Params, name: str, prepared: Prepared, content_path: Path, model_path: Path, live_dir: Path, timing_path: Path):
    """The train stage: build, fit, save, and record the wall time (kept out of the metrics: it is not reproducible)."""
    import_tensorflow()
    from movierec import models

    variant = params.variant(name)
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
    write_json(timing_path, summary)
    return model
