"""Fit one variant and save it as a `.keras` file, logging per-epoch curves with DVCLive.

The default reproduces the notebook: the test split is passed as `validation_data` for the curves
only, and nothing is selected on it.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from movierec.atomic import atomic_path, write_json
from movierec.params import Params
from movierec.prepare import Prepared


def seed_everything(seed: int) -> None:
    """Bitwise-reproducible CPU training for a fixed seed (same machine and TF version)."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def build_variant(params: Params, name: str, prepared: Prepared, content: np.ndarray | None):
    from movierec import models

    return models.build(
        params.variant(name),
        params.model,
        n_users=len(prepared.user_ids),
        n_movies=len(prepared.movie_ids),
        rating_range=(params.data.min_rating, params.data.max_rating),
        content=content,
    )


def fit(model, prepared: Prepared, params: Params, live_dir: Path, tensorboard_dir: Path | None = None) -> dict:
    """Compile and fit `model`; return cost figures. Curves go to `live_dir` through DVCLive."""
    import keras
    from dvclive import Live
    from dvclive.keras import DVCLiveCallback

    t = params.train
    model.compile(loss="mse", optimizer=keras.optimizers.Adam(learning_rate=t.learning_rate))
    callbacks = []
    if tensorboard_dir is not None:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(tensorboard_dir), histogram_freq=1))
    start = time.perf_counter()
    with atomic_path(live_dir, directory=True) as tmp_live:
        with Live(str(tmp_live), dvcyaml=False, save_dvc_exp=False, report=None) as live:
            model.fit(
                x=prepared.train.inputs(),
                y=prepared.train.rating,
                validation_data=(prepared.test.inputs(), prepared.test.rating),
                batch_size=t.batch_size,
                epochs=t.epochs,
                callbacks=[*callbacks, DVCLiveCallback(live=live)],
                verbose=2,
            )
    return {"train_seconds": round(time.perf_counter() - start, 2)}


def save_model(model, path: Path) -> None:
    with atomic_path(path) as tmp:
        model.save(tmp)


def run(params: Params, name: str, prepared: Prepared, content_path: Path, model_path: Path, live_dir: Path, timing_path: Path):
    """The train stage: build, fit, save, and record the wall time (kept out of the metrics: it is not reproducible)."""
    variant = params.variant(name)
    seed_everything(params.train.seed)
    content = None
    if variant.architecture == "hybrid":
        content = np.load(content_path, allow_pickle=False)
    model = build_variant(params, name, prepared, content)
    tensorboard_dir = Path("logs") / name if params.train.tensorboard else None
    cost = fit(model, prepared, params, live_dir, tensorboard_dir)
    save_model(model, model_path)
    write_json(timing_path, cost)
    return model
