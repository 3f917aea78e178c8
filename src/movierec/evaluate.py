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


def rmse_by_bucket(y_true: np.ndarray, y_pred: np.ndarray, counts: np.ndarray, edges=(0, 1, 5, 20, 100)) -> dict[str, dict]:
    """RMSE per bucket of each row's training-rating count (of its movie or its user), with the row count.

    One overall RMSE hides that cold and rare movies are where models differ most. Buckets are
    [edges[i], edges[i+1]) plus a last open one, labelled "0", "1-4", ..., "100+"; empty buckets are
    omitted. For movies: `counts = np.bincount(train.movie, minlength=n_movies)[test.movie]`.
    """
    edges = np.asarray(edges)
    counts = np.asarray(counts)
    if len(edges) < 1 or np.any(np.diff(edges) <= 0):
        raise ValueError(f"edges must be strictly increasing; got {edges.tolist()}")
    if counts.size and counts.min() < edges[0]:
        raise ValueError(f"counts below the first edge {edges[0]}: {counts.min()}")
    sq = (np.asarray(y_pred, dtype=np.float64) - np.asarray(y_true, dtype=np.float64)) ** 2
    bucket = np.searchsorted(edges, counts, side="right") - 1
    n = np.bincount(bucket, minlength=len(edges))
    sums = np.bincount(bucket, weights=sq, minlength=len(edges))
    out = {}
    for i, lo in enumerate(edges.tolist()):
        if n[i]:
            hi = edges[i + 1] - 1 if i + 1 < len(edges) else None
            label = f"{lo}+" if hi is None else (str(lo) if hi == lo else f"{lo}-{hi}")
            out[label] = {"rmse": float(np.sqrt(sums[i] / n[i])), "n": int(n[i])}
    return out
