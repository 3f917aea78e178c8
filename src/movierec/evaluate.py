"""Test-split metrics for a trained model: the only place that reads the test ratings' values."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from movierec.errors import MovierecError
from movierec.prepare import Prepared


PREDICTION_KEYS = ("ratings", "movie_vectors", "n_params")


def load_predictions(path: Path, *keys: str) -> dict[str, np.ndarray]:
    """The `keys` (default: all) of a train stage's predictions file (see `train.export_predictions`),
    read without TensorFlow. Only the arrays asked for are read: the rating matrix is the large one.

    `ratings`: the predicted rating of every (user, movie) pair in encoder order; `movie_vectors`: the
    model's learned movie representation; `n_params`: the model's parameter count.
    """
    path = Path(path)
    if not path.is_file():
        raise MovierecError(f"{path}: not found; run `dvc repro` first (or `dvc pull` if a remote is set up)")
    with np.load(path, allow_pickle=False) as archive:
        return {key: archive[key] for key in keys or PREDICTION_KEYS}


def matrix_predictor(ratings: np.ndarray):
    """predict(users, movies) -> ratings, looked up in a (n_users, n_movies) matrix of predictions."""
    return lambda users, movies: ratings[np.asarray(users), np.asarray(movies)]


def rating_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    err = np.asarray(y_pred, dtype=np.float64) - np.asarray(y_true, dtype=np.float64)
    return {"rmse": float(np.sqrt(np.mean(err**2))), "mae": float(np.mean(np.abs(err)))}


MOVIE_BUCKETS = (0, 1, 5, 20, 100)  # the movie's training ratings: 0 is cold start
USER_BUCKETS = (0, 20, 50, 100, 250)


def evaluate_predictor(predict_fn, prepared: Prepared, *, k: int, relevance_threshold: float, ratings: bool = True, ranking: bool = True):
    """All test metrics of one model, and a sample of (actual, predicted) test pairs for the scatter plot.

    `ratings=False` is for most-popular, whose scores are not ratings; `ranking=False` for the global
    mean, whose ranking is one big tie.
    """
    from movierec.ranking import evaluate_ranking

    train, test = prepared.train, prepared.test
    metrics, sample = {}, None
    if ratings:
        pred = np.asarray(predict_fn(test.user, test.movie), dtype=np.float64).reshape(-1)
        metrics.update(rating_metrics(test.rating, pred))
        for name, index, n, edges in (
            ("movie", test.movie, len(prepared.movie_ids), MOVIE_BUCKETS),
            ("user", test.user, len(prepared.user_ids), USER_BUCKETS),
        ):
            counts = np.bincount(getattr(train, name), minlength=n)[index]
            buckets = rmse_by_bucket(test.rating, pred, counts, edges)
            metrics[f"rmse_by_{name}_ratings"] = {label: b["rmse"] for label, b in buckets.items()}
        n_sample = min(PREDICTION_SAMPLE, len(test))
        sample = {"actual": test.rating[:n_sample], "predicted": pred[:n_sample]}
    if ranking:
        metrics.update(evaluate_ranking(predict_fn, prepared, k=k, relevance_threshold=relevance_threshold))
    return metrics, sample


PREDICTION_SAMPLE = 2000  # test rows (already shuffled by the split) kept for the predicted-vs-actual plot


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
