"""Test-split metrics for a trained model: the only place that reads the test ratings' values."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from movierec.errors import MovierecError


def load_model(path: Path):
    """Load a `.keras` file with Keras safe_mode on, so a shared file cannot run hidden code."""
    import keras

    path = Path(path)
    if not path.is_file():
        raise MovierecError(f"{path}: model not found; run `dvc repro` first (or `dvc pull` if a remote is set up)")
    return keras.saving.load_model(path, safe_mode=True)


def predict(model, user: np.ndarray, movie: np.ndarray, batch_size: int = 65536) -> np.ndarray:
    return np.asarray(model.predict([user, movie], batch_size=batch_size, verbose=0)).reshape(-1)


def rating_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    err = np.asarray(y_pred, dtype=np.float64) - np.asarray(y_true, dtype=np.float64)
    return {"rmse": float(np.sqrt(np.mean(err**2))), "mae": float(np.mean(np.abs(err)))}
